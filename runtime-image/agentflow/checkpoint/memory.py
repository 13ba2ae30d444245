"""A process-local checkpointer for development, tests and single-worker servers."""

from __future__ import annotations

import time
from typing import Any

from agentflow.checkpoint.base import Checkpoint, Checkpointer, ThreadInfo


class InMemoryCheckpointer(Checkpointer):
    """Keeps every checkpoint as JSON bytes in this process.

    Storing serialised bytes, not live objects, means a node that later mutates a list it
    returned cannot rewrite history, and non-JSON state fails here exactly as it would in
    Postgres. State is lost when the process exits and is invisible to other workers.
    """

    def __init__(self, max_history: int = 100) -> None:
        self.max_history = max_history
        self._checkpoints: dict[str, list[bytes]] = {}
        self._threads: dict[str, ThreadInfo] = {}

    async def get(self, thread_id: str) -> Checkpoint | None:
        stored = self._checkpoints.get(thread_id)
        return Checkpoint.from_json(stored[-1]) if stored else None

    async def put(
        self, checkpoint: Checkpoint, thread_metadata: dict[str, Any] | None = None
    ) -> None:
        raw = checkpoint.to_json()
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
        return [Checkpoint.from_json(raw) for raw in reversed(stored[-limit:])]

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return self._threads.get(thread_id)

    async def list_threads(
        self, limit: int = 100, offset: int = 0, metadata: dict[str, Any] | None = None
    ) -> list[ThreadInfo]:
        wanted = (metadata or {}).items()
        matching = [
            t for t in self._threads.values() if all(t.metadata.get(k) == v for k, v in wanted)
        ]
        matching.sort(key=lambda t: t.updated_at, reverse=True)
        return matching[offset : offset + limit]

    async def delete_thread(self, thread_id: str) -> bool:
        self._checkpoints.pop(thread_id, None)
        return self._threads.pop(thread_id, None) is not None
