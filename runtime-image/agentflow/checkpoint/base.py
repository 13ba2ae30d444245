"""The checkpointer interface: where a thread's state lives between steps and between requests.

The engine writes one :class:`Checkpoint` after every step. Implementations must make each
``put`` atomic (a reader never sees half a checkpoint) and keep history newest first.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from agentflow.errors import AgentflowError
from agentflow.ids import new_id


class CheckpointerError(AgentflowError):
    """The checkpointer's backing store cannot be reached or refused an operation."""

    status, code = 503, "checkpointer_unavailable"


class StateNotSerializableError(AgentflowError):
    """A state value cannot be stored as JSON, so the step could not be checkpointed."""

    code = "state_not_serializable"


class ConcurrentUpdateError(AgentflowError):
    """Another writer stored a checkpoint of this thread first: this one would have lost it."""

    status, code = 409, "concurrent_update"


class ThreadLockedError(AgentflowError):
    """Another run (or state change) holds the thread."""

    status, code = 409, "thread_busy"

    def __init__(self, thread_id: str, holder: str) -> None:
        self.thread_id = thread_id
        self.holder = holder
        super().__init__(
            f"thread '{thread_id}' is busy with {holder}; wait for it to finish or stop it, "
            "then retry"
        )


class ThreadLease(ABC):
    """A held thread lock. Keep it for the whole run; :meth:`release` it when done."""

    def __init__(self, thread_id: str, holder: str) -> None:
        self.thread_id = thread_id
        self.holder = holder

    @abstractmethod
    async def release(self) -> None:
        """Give the thread back (a no-op once released)."""


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

    def to_json(self) -> bytes:
        try:  # orjson reads dataclasses directly: no copy of the state on the way
            return orjson.dumps(self)
        except TypeError as error:
            raise StateNotSerializableError(
                f"the state of thread '{self.thread_id}' cannot be stored as JSON: {error}"
            ) from error

    @classmethod
    def from_json(cls, raw: bytes | str) -> Checkpoint:
        return cls(**orjson.loads(raw))


@dataclass(slots=True)
class ThreadInfo:
    thread_id: str
    created_at: float
    updated_at: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Checkpointer(ABC):
    """Stores checkpoints per thread. All methods are async and safe to call concurrently."""

    async def setup(self) -> None:
        """Prepare the store (connect, create the schema). Called once at server start-up."""

    async def close(self) -> None:
        """Release connections. Called once at shutdown."""

    async def ping(self) -> None:
        """Raise :class:`CheckpointerError` if the store cannot be reached right now."""

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
        self, limit: int = 100, offset: int = 0, metadata: dict[str, Any] | None = None
    ) -> list[ThreadInfo]:
        """Threads, most recently updated first, whose metadata contains ``metadata``."""

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """Delete a thread and all its checkpoints; False if it did not exist."""

    @abstractmethod
    async def lock_thread(self, thread_id: str, holder: str) -> ThreadLease:
        """Take the thread for one run or state change, for every process sharing this store.

        Raise :class:`ThreadLockedError` at once if another holder has it. A holder whose
        process dies must not keep the thread for more than the lease time.
        """

    @abstractmethod
    async def thread_holder(self, thread_id: str) -> str | None:
        """Who holds the thread now (as given to :meth:`lock_thread`), or None."""
