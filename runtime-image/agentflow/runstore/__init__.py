"""Run stores: where background runs wait for a worker, and what became of them."""

from agentflow.runstore.base import (
    FINAL_STATUSES,
    Delivery,
    QueueFullError,
    RunRecord,
    RunRequest,
    RunStatus,
    RunStore,
)
from agentflow.runstore.memory import InMemoryRunStore

__all__ = [
    "FINAL_STATUSES",
    "Delivery",
    "InMemoryRunStore",
    "QueueFullError",
    "RunRecord",
    "RunRequest",
    "RunStatus",
    "RunStore",
]
