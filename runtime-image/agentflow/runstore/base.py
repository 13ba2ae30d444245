"""The run store interface: background runs waiting for a worker, and what became of them.

A store only stores and hands out work: a run is *claimed* by one worker at a time, and a run
whose worker died is claimed again (its attempts counted) until it ends or runs out of
attempts. Executing runs, their leases, streams and webhooks live elsewhere
(agentflow.runtime.background).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agentflow.errors import AgentflowError

RunStatus = Literal["pending", "running", "interrupted", "success", "error", "stopped"]
FINAL_STATUSES: frozenset[str] = frozenset({"interrupted", "success", "error", "stopped"})
DeliveryStatus = Literal["pending", "delivered", "failed"]


class QueueFullError(AgentflowError):
    """The store holds as many pending runs as it may: the caller should retry later."""

    status, code = 503, "queue_full"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


@dataclass(slots=True)
class RunRequest:
    """What the run was asked to do, as its invoke body said it."""

    input: dict[str, Any]
    recursion_limit: int
    metadata: dict[str, Any] = field(default_factory=dict)
    has_resume: bool = False
    resume: Any = None


@dataclass(slots=True)
class Delivery:
    """The run's webhook: where its result goes, and how delivering it went."""

    url: str
    status: DeliveryStatus = "pending"
    attempts: int = 0
    last_error: str | None = None
    delivered_at: float | None = None


@dataclass(slots=True)
class RunRecord:
    """A background run as the store keeps it."""

    run_id: str
    thread_id: str
    owner: str | None
    request: RunRequest
    status: RunStatus = "pending"
    attempts: int = 0  # times a worker claimed it (more than one: it was resumed)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    result: dict[str, Any] | None = None  # values, next, interrupts, steps, messages
    error: dict[str, Any] | None = None  # code, message
    webhook: Delivery | None = None

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES


class RunStore(ABC):
    """Background runs of one graph, shared by every worker that may execute them.

    All methods are async and safe to call concurrently. "This worker" is the process the
    store belongs to: a claim is this worker's until it finishes or hands the run back, or
    this worker dies (then another worker may claim it again).
    """

    @abstractmethod
    async def setup(self) -> None: ...

    @abstractmethod
    async def submit(self, run: RunRecord, max_pending: int) -> None:
        """Keep a new pending run; :class:`QueueFullError` when ``max_pending`` runs of the
        graph are pending already."""

    @abstractmethod
    async def claim(self, limit: int, max_attempts: int) -> list[RunRecord]:
        """Up to ``limit`` runs for this worker, oldest first: pending runs, and runs whose
        worker died, unless an earlier run of the same thread is pending or running (runs on
        one thread execute in order). A dead worker's run that was claimed ``max_attempts``
        times already ends with the error ``run_abandoned`` instead."""

    @abstractmethod
    async def finish(self, run: RunRecord) -> bool:
        """Keep how a claimed run ended (its status, result or error, ``ended_at``); False
        when this worker no longer holds the claim (another worker took the run over)."""

    @abstractmethod
    async def hand_back(self, run: RunRecord) -> None:
        """Make a claimed run pending again, its claim not counted (a worker shutting down,
        or the thread was busy with a foreground run)."""

    @abstractmethod
    async def get(self, thread_id: str, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def list_runs(
        self, thread_id: str, owner: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        """The runs ``owner`` submitted on a thread, newest first."""

    @abstractmethod
    async def delete_runs(self, thread_id: str, owner: str | None) -> int:
        """Forget the runs ``owner`` submitted on a thread (its deletion); how many. The caller
        holds the thread, so none of them is executing."""

    @abstractmethod
    async def claim_deliveries(self, limit: int) -> list[RunRecord]:
        """Ended runs whose webhook is still to be delivered and whose worker died (this
        worker delivers the webhooks of the runs it finished itself); they become this
        worker's."""

    @abstractmethod
    async def record_delivery(self, run: RunRecord) -> None:
        """Keep the state of ``run.webhook``."""

    @abstractmethod
    async def counts(self) -> dict[str, int]:
        """How many runs are ``pending`` and ``running``."""

    @abstractmethod
    async def prune(self, retain_s: float) -> int:
        """Forget runs that ended more than ``retain_s`` ago (and whose webhook is settled);
        how many were forgotten."""
