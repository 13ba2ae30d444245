"""Waiting for a condition, bounded in time: the one way tests (and benchmarks) poll.

Prefer a barrier (an event the code under test sets) where one exists; poll only what another
process or a real server decides, such as a Deployment becoming ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class NotReached(AssertionError):
    """The condition did not hold within the time allowed."""


def eventually(
    check: Callable[[], T],
    within_s: float = 30,
    what: str = "the condition",
    *,
    every_s: float = 0.1,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``check`` until it returns something truthy, and return that. Exceptions in
    ``ignoring`` count as not yet (a server still starting refuses connections); any other
    exception ends the wait at once (a process that died should not be waited for)."""
    deadline = time.monotonic() + within_s
    value: T | None = None
    while True:
        try:
            value = check()
        except ignoring:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise NotReached(f"{what} was not reached within {within_s:g}s (last: {value!r})")
        time.sleep(every_s)


async def eventually_async(
    check: Callable[[], Awaitable[T]],
    within_s: float = 10,
    what: str = "the condition",
    *,
    every_s: float = 0.05,
) -> T:
    """:func:`eventually` for a check that must be awaited."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise NotReached(f"{what} was not reached within {within_s:g}s (last: {value!r})")
        await asyncio.sleep(every_s)
