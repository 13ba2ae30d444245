"""The line of graphs waiting to be reconciled, as controller-runtime's rate-limited work queue.

Every event that may concern a graph (the graph itself, an object it owns, a Secret it reads, the
periodic resync) only adds the graph's key. The queue then guarantees what reconciliation needs:

* a key is in line at most once, however many events named it meanwhile;
* never two workers on one key: a key added while it is being worked on runs again after;
* a failed key comes back after an exponential backoff (``base * 2**failures``, capped), and
  its failure count resets once it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger("agentflow_operator")

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    def __init__(
        self,
        work: Callable[[Key], Awaitable[bool]],
        workers: int,
        retry_base_s: float,
        retry_max_s: float,
    ) -> None:
        """``work`` reconciles one key and says whether it succeeded."""
        self.work = work
        self.workers = workers
        self.retry_base_s, self.retry_max_s = retry_base_s, retry_max_s
        self._line: asyncio.Queue[Key] = asyncio.Queue()
        self._waiting: set[Key] = set()  # in the line
        self._active: set[Key] = set()  # a worker has it
        self._again: set[Key] = set()  # added while active: back in line when done
        self._failures: dict[Key, int] = {}
        self._retries: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._waiting:
            self._waiting.add(key)
            self._line.put_nowait(key)

    def forget(self, key: Key) -> None:
        """The key is gone for good (its graph was deleted): no retry, no backoff left."""
        self._failures.pop(key, None)
        timer = self._retries.pop(key, None)
        if timer is not None:
            timer.cancel()

    def backoff(self, key: Key) -> float:
        """How long the key waits after its latest failure."""
        failures = self._failures.get(key, 0)
        return float(min(self.retry_base_s * 2 ** max(failures - 1, 0), self.retry_max_s))

    def __len__(self) -> int:
        return len(self._waiting) + len(self._active)

    async def run(self) -> None:
        """Work until cancelled."""
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self._line.get()
            self._waiting.discard(key)
            self._active.add(key)
            try:
                succeeded = await self.work(key)
            except Exception:  # a bug, not a refusal: log it and treat it as a failure
                logger.exception("reconciling %s failed", key)
                succeeded = False
            finally:
                self._active.discard(key)
            if succeeded:
                self.forget(key)
            else:
                self._failures[key] = self._failures.get(key, 0) + 1
                self._schedule(key, self.backoff(key))
            if key in self._again:
                self._again.discard(key)
                self.add(key)

    def _schedule(self, key: Key, delay: float) -> None:
        previous = self._retries.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._retries[key] = loop.call_later(delay, self._retry, key)

    def _retry(self, key: Key) -> None:
        self._retries.pop(key, None)
        self.add(key)
