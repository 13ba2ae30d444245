"""Noticing SIGTERM early enough to wind streams down instead of cutting them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

logger = logging.getLogger("agentflow.runtime")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

SHUTDOWN_MARGIN_S = 5
"""How long Uvicorn waits for open requests beyond the runs' grace period: the time for stopped
runs to send their last events before it cancels what is still open."""


def on_termination(callback: Callable[[], Any]) -> Callable[[], None]:
    """Call ``callback`` on the running event loop when SIGTERM or SIGINT arrives, then hand
    the signal to the handler that was there before (Uvicorn's, which stops accepting and
    waits for open requests). Returns a function that restores the previous handlers.

    Uvicorn runs the lifespan only once every open request has finished, so this is where a
    server learns in time that it should ask its runs to finish.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals can only be handled on the main thread
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        prior = previous[signal.Signals(signum)]
        if callable(prior):
            prior(signum, frame)

    for sig in _SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, prior in previous.items():
            signal.signal(sig, prior)

    return restore


def exit_without_waiting(what: str) -> NoReturn:
    """End the process now, its runs stopped and its streams ended, though ``what`` (threads
    running sync nodes, which nothing can interrupt) is still going: Python would otherwise
    wait for them at exit, for as long as a node blocks, past the pod's grace period."""
    logger.warning("shut down; %s: exiting without waiting for them", what)
    logging.shutdown()
    os._exit(0)
