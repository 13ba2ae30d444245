"""The checkpoint store interface: where a thread's state lives between steps and between
requests. A store only stores: thread leases (agentflow.leases), runs and streams
(agentflow.runtime) live elsewhere.

The engine writes one :class:`Checkpoint` after every step, and while a step of several nodes
runs, each finished node's update as a *pending write*, so a run continued after a crash re-runs
only the nodes that did not finish. Implementations must make each ``put`` atomic (a reader
never sees half a checkpoint) and keep history newest first; how checkpoints become bytes is
their :class:`Serializer` (JSON by default).
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

from agentflow.errors import AgentflowError
from agentflow.ids import new_id
from agentflow.jsonbytes import dumps_to_keep


class CheckpointerError(AgentflowError):
    """The checkpointer's backing store cannot be reached or refused an operation."""

    status, code = 503, "checkpointer_unavailable"


class StateNotSerializableError(AgentflowError):
    """A state value cannot be stored as JSON, so the step could not be checkpointed."""

    code = "state_not_serializable"


class ConcurrentUpdateError(AgentflowError):
    """Another writer stored a checkpoint of this thread first: this one would have lost it."""

    status, code = 409, "concurrent_update"


@dataclass(slots=True)
class Checkpoint:
    """A thread's state after one step of a run.

    ``next`` lists the nodes the next step will run (empty when the run ended). When a step was
    interrupted, ``interrupts`` holds the pending questions, ``resumes`` the answers already given
    to each node, and ``pending_writes`` the updates of the step's nodes that did finish, so a
    resume re-runs only the interrupted nodes.
    """

    thread_id: str
    run_id: str
    step: int
    values: dict[str, Any]
    next: list[str] = field(default_factory=list)
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    resumes: dict[str, list[Any]] = field(default_factory=dict)
    pending_writes: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "loop"
    nodes: list[str] = field(default_factory=list)
    parent_id: str | None = None
    checkpoint_id: str = field(default_factory=new_id)
    created_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class ThreadInfo:
    thread_id: str
    created_at: float
    updated_at: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Serializer(Protocol):
    """How a store turns checkpoints (and pending writes) into bytes and back."""

    def dumps(self, checkpoint: Checkpoint) -> bytes: ...

    def loads(self, raw: bytes | str) -> Checkpoint: ...

    def dumps_update(self, thread_id: str, update: dict[str, Any]) -> bytes: ...

    def loads_update(self, raw: bytes | str) -> dict[str, Any]: ...


class JsonSerializer:
    """JSON (orjson): readable in the database, and what every store accepts."""

    def dumps(self, checkpoint: Checkpoint) -> bytes:
        try:  # orjson reads dataclasses directly: no copy of the state on the way
            return _storable(dumps_to_keep(checkpoint), checkpoint.thread_id)
        except TypeError as error:
            raise _not_serializable(checkpoint.thread_id, error) from error

    def loads(self, raw: bytes | str) -> Checkpoint:
        return Checkpoint(**orjson.loads(raw))

    def dumps_update(self, thread_id: str, update: dict[str, Any]) -> bytes:
        try:
            return _storable(dumps_to_keep(update), thread_id)
        except TypeError as error:
            raise _not_serializable(thread_id, error) from error

    def loads_update(self, raw: bytes | str) -> dict[str, Any]:
        update: dict[str, Any] = orjson.loads(raw)
        return update


# A NUL character, as JSON writes it: an escape whose backslash is not itself escaped.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _storable(raw: bytes, thread_id: str) -> bytes:
    """JSON every store keeps: Postgres refuses NUL in text, so every store refuses it."""
    if b"\\u0000" in raw and _NUL.search(raw):
        raise _not_serializable(thread_id, "strings may not contain NUL (\\u0000)")
    return raw


def _not_serializable(thread_id: str, error: Exception | str) -> StateNotSerializableError:
    return StateNotSerializableError(
        f"the state of thread '{thread_id}' cannot be stored as JSON: {error}"
    )


class Checkpointer(ABC):
    """Stores checkpoints per thread. All methods are async and safe to call concurrently."""

    async def setup(self) -> None:
        """Prepare the store (connect, create the schema). Called once at server start-up."""

    async def close(self) -> None:
        """Release connections. Called once at shutdown."""

    async def ping(self) -> None:
        """Raise :class:`CheckpointerError` if the store cannot be reached right now."""

    @property
    def kind(self) -> str:
        """What store this is, for people (``GET /v1/graph`` reports it)."""
        return type(self).__name__

    @abstractmethod
    async def get(self, thread_id: str) -> Checkpoint | None:
        """The latest checkpoint of a thread, or None for an unknown thread."""

    @abstractmethod
    async def put(
        self, checkpoint: Checkpoint, thread_metadata: dict[str, Any] | None = None
    ) -> None:
        """Store a checkpoint atomically, creating the thread (with ``thread_metadata``) if new.

        ``checkpoint.step`` must be the latest step plus one (0 for a new thread): if another
        writer got there first, raise :class:`ConcurrentUpdateError` and store nothing, so no
        update is ever silently lost.
        """

    @abstractmethod
    async def history(self, thread_id: str, limit: int = 20) -> list[Checkpoint]:
        """Up to ``limit`` checkpoints of a thread, newest first."""

    @abstractmethod
    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        """A thread's bookkeeping, or None for an unknown thread."""

    @abstractmethod
    async def list_threads(
        self,
        limit: int = 100,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        search: str | None = None,
    ) -> list[ThreadInfo]:
        """Threads, most recently updated first, whose metadata contains ``metadata`` and
        whose id contains ``search`` (ignoring case)."""

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """Delete a thread and all its checkpoints; False if it did not exist."""

    @abstractmethod
    async def put_writes(
        self, thread_id: str, step: int, node: str, update: dict[str, Any]
    ) -> None:
        """Keep what ``node`` wrote in ``step``, a step not checkpointed yet (storing that
        step's checkpoint drops them)."""

    @abstractmethod
    async def pending_writes(self, thread_id: str, step: int) -> dict[str, dict[str, Any]]:
        """The writes kept for ``step``: node -> its update."""
