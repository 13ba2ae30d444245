"""A process-local checkpoint store for development, tests and single-worker servers."""

from __future__ import annotations

import time
from typing import Any

from agentflow.checkpoint.base import (
    Checkpoint,
    Checkpointer,
    ConcurrentUpdateError,
    JsonSerializer,
    Serializer,
    ThreadInfo,
)


class InMemoryCheckpointer(Checkpointer):
    """Keeps every checkpoint serialised (JSON by default) in this process.

    Storing bytes, not live objects, means a node that later mutates a list it returned cannot
    rewrite history, and non-JSON state fails here exactly as it would in Postgres. State is
    lost when the process exits and is invisible to other workers.
    """

    def __init__(self, max_history: int = 100, serializer: Serializer | None = None) -> None:
        self.max_history = max_history
        self.serializer = serializer or JsonSerializer()
        self._checkpoints: dict[str, list[bytes]] = {}
        self._threads: dict[str, ThreadInfo] = {}
        self._latest_step: dict[str, int] = {}
        self._writes: dict[str, dict[int, dict[str, bytes]]] = {}  # thread -> step -> node

    async def get(self, thread_id: str) -> Checkpoint | None:
        stored = self._checkpoints.get(thread_id)
        return self.serializer.loads(stored[-1]) if stored else None

    async def put(
        self, checkpoint: Checkpoint, thread_metadata: dict[str, Any] | None = None
    ) -> None:
        raw = self.serializer.dumps(checkpoint)
        expected = self._latest_step.get(checkpoint.thread_id, -1) + 1
        if checkpoint.step != expected:
            raise ConcurrentUpdateError(
                f"thread '{checkpoint.thread_id}' moved on: step {checkpoint.step} was written "
                f"on top of step {expected - 1}"
            )
        self._latest_step[checkpoint.thread_id] = checkpoint.step
        writes = self._writes.get(checkpoint.thread_id, {})
        for step in [s for s in writes if s <= checkpoint.step]:
            del writes[step]
        now = time.time()
        thread = self._threads.get(checkpoint.thread_id)
        if thread is None:
            self._threads[checkpoint.thread_id] = ThreadInfo(
                checkpoint.thread_id, now, now, dict(thread_metadata or {})
            )
            self._checkpoints[checkpoint.thread_id] = [raw]
            return
        thread.updated_at = now
        stored = self._checkpoints[checkpoint.thread_id]
        stored.append(raw)
        if len(stored) > self.max_history:
            del stored[: len(stored) - self.max_history]

    async def history(self, thread_id: str, limit: int = 20) -> list[Checkpoint]:
        stored = self._checkpoints.get(thread_id, [])
        return [self.serializer.loads(raw) for raw in reversed(stored[-limit:])]

    async def put_writes(
        self, thread_id: str, step: int, node: str, update: dict[str, Any]
    ) -> None:
        raw = self.serializer.dumps_update(thread_id, update)
        self._writes.setdefault(thread_id, {}).setdefault(step, {})[node] = raw

    async def pending_writes(self, thread_id: str, step: int) -> dict[str, dict[str, Any]]:
        kept = self._writes.get(thread_id, {}).get(step, {})
        return {node: self.serializer.loads_update(raw) for node, raw in kept.items()}

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return self._threads.get(thread_id)

    async def list_threads(
        self,
        limit: int = 100,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        search: str | None = None,
    ) -> list[ThreadInfo]:
        wanted = (metadata or {}).items()
        needle = (search or "").lower()
        matching = [
            t
            for t in self._threads.values()
            if all(t.metadata.get(k) == v for k, v in wanted) and needle in t.thread_id.lower()
        ]
        matching.sort(key=lambda t: t.updated_at, reverse=True)
        return matching[offset : offset + limit]

    async def delete_thread(self, thread_id: str) -> bool:
        self._checkpoints.pop(thread_id, None)
        self._latest_step.pop(thread_id, None)
        self._writes.pop(thread_id, None)
        return self._threads.pop(thread_id, None) is not None
