"""Plain data types shared by the engine, the checkpointers and the server."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from agentflow.jsonbytes import dumps_to_keep

START = "__start__"
END = "__end__"

EventType = Literal["message", "state", "updates", "custom", "interrupt", "error", "end", "gap"]


@dataclass(slots=True)
class StreamChunk:
    """One event of a run's stream, in agentflow's StreamChunk shape.

    ``timestamp`` is taken when the chunk is made (not once at import, a defect of the server we
    replace), so clients can measure latency between events.
    """

    event: EventType
    thread_id: str
    run_id: str
    message: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    data: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)
    # Not on the wire: False for chunks that are no event of the run's log (a gap, how a
    # joined stream broke off), which therefore have no position (no SSE id).
    positioned: bool = field(default=True, repr=False, compare=False)

    @staticmethod
    def gap(thread_id: str, run_id: str, missed: int) -> StreamChunk:
        """Stands for ``missed`` chunks that were dropped (a bounded buffer or log was full):
        the reader knows it did not see everything, and how much it did not see."""
        return StreamChunk("gap", thread_id, run_id, data={"missed": missed}, positioned=False)

    def json(self) -> bytes:
        """The chunk as JSON, made once: the stream it goes to and the logs it is kept in
        share it. A chunk is not changed once published."""
        if self._json is None:
            self._json = dumps_to_keep(self.to_dict())  # kept in buffers and logs
        return self._json

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "message": self.message,
            "state": self.state,
            "data": self.data,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "metadata": self.metadata,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A question a node asked with :func:`agentflow.graph.interrupt`, waiting for ``resume``."""

    id: str
    node: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "node": self.node, "value": self.value}


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What a node may know about the run it is part of (pass a second parameter to get it)."""

    thread_id: str
    run_id: str
    node: str
    step: int
    recursion_limit: int
    metadata: dict[str, Any]
