"""Thread operations: read, list, correct and delete threads, with the ownership rule.

A state change or a deletion holds the thread's lease, like a run, so it never interleaves with
one. Who owns a thread is in its metadata; another subject's thread does not exist, as far as a
caller can tell.
"""

from __future__ import annotations

from typing import Any

from agentflow.checkpoint.base import Checkpoint, Checkpointer, ThreadInfo
from agentflow.graph import CompiledGraph
from agentflow.ids import new_id
from agentflow.leases import Holder, ThreadLease, ThreadLeases, ThreadLockedError
from agentflow.runtime.errors import ThreadNotFoundError


def ownership(owner: str | None) -> dict[str, Any] | None:
    """The thread metadata recording who owns a thread (nothing when auth is off)."""
    return None if owner is None else {"owner": owner}


def not_found(thread_id: str) -> ThreadNotFoundError:
    return ThreadNotFoundError(f"thread '{thread_id}' does not exist")


class Threads:
    def __init__(self, graph: CompiledGraph, store: Checkpointer, leases: ThreadLeases) -> None:
        self.graph = graph
        self.store = store
        self.leases = leases

    async def check_owner(self, thread_id: str, owner: str | None) -> None:
        """Another subject's thread does not exist, as far as this caller can tell (404, the
        same answer as for an unknown thread): never a 403 that would confirm it exists."""
        if owner is None:
            return
        thread = await self.store.get_thread(thread_id)
        if thread is not None and thread.metadata.get("owner") != owner:
            raise not_found(thread_id)

    async def hold(self, thread_id: str, holder: Holder, owner: str | None) -> ThreadLease:
        """Take the thread for ``holder``. Busy (409) is an answer for the thread's owner only:
        to anyone else, another subject's busy thread is not found, like an idle one."""
        try:
            return await self.leases.acquire(thread_id, holder)
        except ThreadLockedError:
            await self.check_owner(thread_id, owner)
            raise

    async def get_state(self, thread_id: str, owner: str | None = None) -> Checkpoint:
        await self.check_owner(thread_id, owner)
        checkpoint = await self.store.get(thread_id)
        if checkpoint is None:
            raise not_found(thread_id)
        return checkpoint

    async def history(
        self, thread_id: str, limit: int, owner: str | None = None
    ) -> list[Checkpoint]:
        await self.check_owner(thread_id, owner)
        checkpoints = await self.store.history(thread_id, limit)
        if not checkpoints:
            raise not_found(thread_id)
        return checkpoints

    async def list_threads(
        self, limit: int, offset: int, owner: str | None = None
    ) -> list[ThreadInfo]:
        return await self.store.list_threads(limit, offset, ownership(owner))

    async def update_state(
        self, thread_id: str, values: dict[str, Any], owner: str | None = None
    ) -> Checkpoint:
        """Set keys of a thread's state (the engine's rules), holding the thread meanwhile."""
        update_id = f"update-{new_id()}"
        lease = await self.hold(thread_id, Holder("update", update_id), owner)
        try:
            await self.check_owner(thread_id, owner)
            return await self.graph.update_state(
                thread_id, values, update_id=update_id, thread_metadata=ownership(owner)
            )
        finally:
            await lease.release()

    async def delete_thread(self, thread_id: str, owner: str | None = None) -> None:
        lease = await self.hold(thread_id, Holder("deletion", new_id()), owner)
        try:
            await self.check_owner(thread_id, owner)
            if not await self.store.delete_thread(thread_id):
                raise not_found(thread_id)
        finally:
            await lease.release()
