"""Checkpointers: where threads' states are kept."""

from agentflow.checkpoint.base import (
    Checkpoint,
    Checkpointer,
    CheckpointerError,
    StateNotSerializableError,
    ThreadInfo,
)
from agentflow.checkpoint.memory import InMemoryCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "CheckpointerError",
    "InMemoryCheckpointer",
    "StateNotSerializableError",
    "ThreadInfo",
]
