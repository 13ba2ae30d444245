"""Identifiers.

``new_id()`` is for ids that only need to be unique (checkpoints, messages, requests): a
random per-process prefix and a counter, no system call per id. ``secret_id()`` is for ids
handed to clients that must not be guessable (threads, runs): 128 bits from the OS, read
in blocks of 4 KiB: ``os.urandom`` releases the GIL, and getting it back on the event loop
while the thread pool runs sync nodes can take milliseconds, so it is called once per 256 ids.
"""

from __future__ import annotations

import itertools
import os
import threading

_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count()
_RANDOM = bytearray()
_RANDOM_BLOCK = 4096
_RANDOM_LOCK = threading.Lock()


def new_id() -> str:
    """Unique across processes (a 64-bit random prefix per process), cheap to make."""
    return f"{_PREFIX}{next(_COUNTER):016x}"


def secret_id() -> str:
    """Unique and unguessable: 128 random bits from the OS, as 32 hex digits."""
    with _RANDOM_LOCK:
        if not _RANDOM:
            _RANDOM.extend(os.urandom(_RANDOM_BLOCK))
        raw = _RANDOM[-16:]
        del _RANDOM[-16:]
    return raw.hex()


def _reset_after_fork() -> None:
    global _PREFIX, _COUNTER, _RANDOM_LOCK
    _PREFIX, _COUNTER = os.urandom(8).hex(), itertools.count()
    _RANDOM.clear()  # the parent's unused random bytes must not become the child's ids too
    _RANDOM_LOCK = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_after_fork)
