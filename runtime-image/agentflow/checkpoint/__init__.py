"""Checkpoint stores: where threads' states are kept."""

from agentflow.checkpoint.base import (
    Checkpoint,
    Checkpointer,
    CheckpointerError,
    ConcurrentUpdateError,
    JsonSerializer,
    Serializer,
    StateNotSerializableError,
    ThreadInfo,
)
from agentflow.checkpoint.memory import InMemoryCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "CheckpointerError",
    "ConcurrentUpdateError",
    "InMemoryCheckpointer",
    "JsonSerializer",
    "Serializer",
    "StateNotSerializableError",
    "ThreadInfo",
]
