"""Checkpointers: where threads' states are kept."""

from agentflow.checkpoint.base import (
    Checkpoint,
    Checkpointer,
    CheckpointerError,
    ConcurrentUpdateError,
    StateNotSerializableError,
    ThreadInfo,
    ThreadLease,
    ThreadLockedError,
)
from agentflow.checkpoint.memory import InMemoryCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "CheckpointerError",
    "ConcurrentUpdateError",
    "InMemoryCheckpointer",
    "StateNotSerializableError",
    "ThreadInfo",
    "ThreadLease",
    "ThreadLockedError",
]
