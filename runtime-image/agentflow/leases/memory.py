"""Leases of one process: for the in-memory store, and for tests."""

from __future__ import annotations

from agentflow.leases.base import Holder, ThreadLease, ThreadLeases, ThreadLockedError


class InMemoryLeases(ThreadLeases):
    def __init__(self) -> None:
        self._holders: dict[str, Holder] = {}

    async def acquire(self, thread_id: str, holder: Holder) -> ThreadLease:
        current = self._holders.get(thread_id)
        if current is not None:
            raise ThreadLockedError(thread_id, current)
        self._holders[thread_id] = holder
        return _MemoryLease(self, thread_id, holder)

    async def holder(self, thread_id: str) -> Holder | None:
        return self._holders.get(thread_id)

    def give_back(self, thread_id: str, holder: Holder) -> None:
        """Free the thread if ``holder`` still holds it."""
        if self._holders.get(thread_id) == holder:
            del self._holders[thread_id]


class _MemoryLease(ThreadLease):
    def __init__(self, leases: InMemoryLeases, thread_id: str, holder: Holder) -> None:
        super().__init__(thread_id, holder)
        self._leases = leases

    async def release(self) -> None:
        self._leases.give_back(self.thread_id, self.holder)
