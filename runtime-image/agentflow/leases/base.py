"""The lease interface: who holds a thread, and taking and giving it back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from agentflow.errors import AgentflowError

HolderKind = Literal["run", "update", "deletion"]


@dataclass(frozen=True, slots=True)
class Holder:
    """What holds a thread: a run (its id is the run's), a state update, or a deletion."""

    kind: HolderKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @staticmethod
    def parse(text: str) -> Holder:
        """The holder a lease store kept as ``str(holder)``."""
        kind, _, holder_id = text.partition(" ")
        if kind not in ("run", "update", "deletion") or not holder_id:
            raise ValueError(f"{text!r} is not a lease holder")
        return Holder(kind, holder_id)  # type: ignore[arg-type]


class ThreadLockedError(AgentflowError):
    """Another run (or state change) holds the thread."""

    status, code = 409, "thread_busy"

    def __init__(self, thread_id: str, holder: Holder | None) -> None:
        self.thread_id = thread_id
        self.holder = holder
        super().__init__(
            f"thread '{thread_id}' is busy with {holder or 'another run'}; wait for it to "
            "finish or stop it, then retry"
        )


class ThreadLease(ABC):
    """A held thread. Keep it for the whole run; :meth:`release` it when done."""

    def __init__(self, thread_id: str, holder: Holder) -> None:
        self.thread_id = thread_id
        self.holder = holder

    @abstractmethod
    async def release(self) -> None:
        """Give the thread back (a no-op once released)."""


class ThreadLeases(ABC):
    """Leases of threads. All methods are async and safe to call concurrently."""

    @abstractmethod
    async def acquire(self, thread_id: str, holder: Holder) -> ThreadLease:
        """Take the thread, for every process sharing these leases.

        Raise :class:`ThreadLockedError` at once if another holder has it. A holder whose
        process dies must not keep the thread for more than the lease time.
        """

    @abstractmethod
    async def holder(self, thread_id: str) -> Holder | None:
        """Who holds the thread now, or None."""
