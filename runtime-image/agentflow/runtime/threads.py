"""Thread operations: read, list, correct and delete threads, with the ownership rule.

A state change or a deletion holds the thread's lease, like a run, so it never interleaves with
one. Who owns a thread is in its metadata; another subject's thread does not exist, as far as a
caller can tell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentflow.checkpoint.base import Checkpoint, Checkpointer, ThreadInfo
from agentflow.graph import CompiledGraph
from agentflow.graph.messages import Message, add_messages, remove_message
from agentflow.ids import new_id
from agentflow.leases import Holder, ThreadLease, ThreadLeases, ThreadLockedError
from agentflow.runstore import RunStore
from agentflow.runtime.errors import InvalidRequestError, MessageNotFoundError, ThreadNotFoundError


def ownership(owner: str | None) -> dict[str, Any] | None:
    """The thread metadata recording who owns a thread (nothing when auth is off)."""
    return None if owner is None else {"owner": owner}


def not_found(thread_id: str) -> ThreadNotFoundError:
    return ThreadNotFoundError(f"thread '{thread_id}' does not exist")


class Threads:
    def __init__(
        self,
        graph: CompiledGraph,
        store: Checkpointer,
        leases: ThreadLeases,
        run_store: RunStore | None = None,
    ) -> None:
        self.graph = graph
        self.store = store
        self.leases = leases
        self.run_store = run_store  # the thread's background runs go with it

    async def check_owner(self, thread_id: str, owner: str | None) -> None:
        """Another subject's thread does not exist, as far as this caller can tell (404, the
        same answer as for an unknown thread): never a 403 that would confirm it exists."""
        if not await self.owns(thread_id, owner):
            raise not_found(thread_id)

    async def hold(self, thread_id: str, holder: Holder, owner: str | None) -> ThreadLease:
        """Take the thread for ``holder``. Busy (409) is an answer for the thread's owner only:
        to anyone else, another subject's busy thread is not found, like an idle one."""
        try:
            return await self.leases.acquire(thread_id, holder)
        except ThreadLockedError:
            await self.check_owner(thread_id, owner)
            raise

    async def get_state(self, thread_id: str, owner: str | None = None) -> Checkpoint | None:
        """The thread's latest checkpoint; None for an unknown thread (and for another
        subject's), as agentflow answers ``state: null``."""
        checkpoint = await self.store.get(thread_id)
        if checkpoint is None or not await self.owns(thread_id, owner):
            return None
        return checkpoint

    async def get_thread(self, thread_id: str, owner: str | None = None) -> ThreadInfo:
        thread = await self.store.get_thread(thread_id)
        if thread is None or (owner is not None and thread.metadata.get("owner") != owner):
            raise not_found(thread_id)
        return thread

    async def history(
        self, thread_id: str, limit: int, owner: str | None = None
    ) -> list[Checkpoint]:
        await self.check_owner(thread_id, owner)
        checkpoints = await self.store.history(thread_id, limit)
        if not checkpoints:
            raise not_found(thread_id)
        return checkpoints

    async def list_threads(
        self, limit: int, offset: int, owner: str | None = None, search: str | None = None
    ) -> list[ThreadInfo]:
        return await self.store.list_threads(limit, offset, ownership(owner), search)

    async def messages(self, thread_id: str, owner: str | None = None) -> list[Message]:
        """The thread's messages (none for an unknown thread, as its state is null)."""
        checkpoint = await self.get_state(thread_id, owner)
        return list(checkpoint.values.get("messages", [])) if checkpoint is not None else []

    async def update_state(
        self, thread_id: str, values: dict[str, Any], owner: str | None = None
    ) -> Checkpoint:
        """Set keys of a thread's state (the engine's rules), holding the thread meanwhile."""
        return await self._change(thread_id, owner, lambda current: values)

    async def add_messages(
        self, thread_id: str, messages: list[Message], owner: str | None = None
    ) -> Checkpoint:
        """Append messages to the thread's, through the ``messages`` reducer."""
        self._need_messages()
        return await self._change(
            thread_id,
            owner,
            lambda current: {"messages": add_messages(current.get("messages"), messages)},
        )

    async def delete_message(
        self, thread_id: str, message_id: str, owner: str | None = None
    ) -> Checkpoint:
        self._need_messages()

        def without(current: dict[str, Any]) -> dict[str, Any]:
            kept = add_messages(current.get("messages"), [remove_message(message_id)])
            if len(kept) == len(current.get("messages") or ()):
                raise MessageNotFoundError(
                    f"thread '{thread_id}' has no message with id '{message_id}'"
                )
            return {"messages": kept}

        return await self._change(thread_id, owner, without)

    async def delete_thread(self, thread_id: str, owner: str | None = None) -> None:
        """Delete the thread's checkpoints and the caller's background runs on it (pending ones
        never run; ended ones, with their inputs and results, are gone)."""
        lease = await self.hold(thread_id, Holder("deletion", new_id()), owner)
        try:
            await self.check_owner(thread_id, owner)
            runs = await self.run_store.delete_runs(thread_id, owner) if self.run_store else 0
            if not await self.store.delete_thread(thread_id) and not runs:
                raise not_found(thread_id)
        finally:
            await lease.release()

    async def _change(
        self,
        thread_id: str,
        owner: str | None,
        change: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Checkpoint:
        """Write ``change(current values)`` as a state update, holding the thread meanwhile so
        the values it was computed from are still the latest when it is stored."""
        update_id = f"update-{new_id()}"
        lease = await self.hold(thread_id, Holder("update", update_id), owner)
        try:
            await self.check_owner(thread_id, owner)
            latest = await self.store.get(thread_id)
            current = latest.values if latest is not None else {}
            return await self.graph.update_state(
                thread_id, change(current), update_id=update_id, thread_metadata=ownership(owner)
            )
        finally:
            await lease.release()

    async def owns(self, thread_id: str, owner: str | None) -> bool:
        """Whether ``owner`` may see the thread: theirs, or nobody's yet."""
        if owner is None:
            return True
        thread = await self.store.get_thread(thread_id)
        return thread is None or thread.metadata.get("owner") == owner

    def _need_messages(self) -> None:
        if not self.graph.normalizes_messages:
            raise InvalidRequestError(
                "this graph's state keeps no messages (its 'messages' key has another reducer)"
            )
