"""Thread leases: one run (or state change) at a time per thread, across every process that
shares the threads. Kept apart from the checkpoint stores, which only store."""

from agentflow.leases.base import Holder, ThreadLease, ThreadLeases, ThreadLockedError
from agentflow.leases.memory import InMemoryLeases

__all__ = ["Holder", "InMemoryLeases", "ThreadLease", "ThreadLeases", "ThreadLockedError"]
