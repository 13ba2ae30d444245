"""What a running node can call: :func:`emit` for custom stream events and :func:`interrupt` to
ask a human. Both find the node they are called from through a context variable, so helpers
deep inside a node can use them without threading a config argument through every call."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from agentflow.graph.types import Interrupt, RunConfig, StreamChunk
from agentflow.ids import new_id

Publish = Callable[[StreamChunk], None]


@dataclass(slots=True)
class NodeContext:
    config: RunConfig
    # Thread-safe publisher of the run's stream, or None when nobody listens (plain invoke).
    publish: Publish | None
    # Answers already given to this node's interrupts, in the order it asks them.
    resumes: list[Any]
    asked: int = 0


class GraphInterrupt(BaseException):
    """Raised by :func:`interrupt` to park the run. A BaseException, so that a node's own
    ``except Exception`` cannot swallow it by accident."""

    def __init__(self, interrupt: Interrupt) -> None:
        super().__init__(interrupt.value)
        self.interrupt = interrupt


current_node: ContextVar[NodeContext] = ContextVar("agentflow_current_node")


def _context(caller: str) -> NodeContext:
    try:
        return current_node.get()
    except LookupError:
        raise RuntimeError(
            f"{caller}() can only be called from a node while the graph runs"
        ) from None


def emit(data: Any) -> None:
    """Send ``data`` (JSON-serialisable) to the run's stream as a ``custom`` event, e.g. one
    token of an LLM answer. Works in sync and async nodes; a no-op when nobody streams."""
    context = _context("emit")
    if context.publish is not None:
        config = context.config
        context.publish(
            StreamChunk(
                "custom", config.thread_id, config.run_id, data=data, metadata={"node": config.node}
            )
        )


def interrupt(value: Any) -> Any:
    """Stop the run and park the thread, asking ``value`` (JSON-serialisable) of a human.

    A later request with ``resume`` runs this node again from its start; this call then
    returns the resume value instead of stopping. A node may ask several questions in turn:
    each resume answers the next one.
    """
    context = _context("interrupt")
    index = context.asked
    context.asked += 1
    if index < len(context.resumes):
        return context.resumes[index]
    raise GraphInterrupt(Interrupt(new_id(), context.config.node, value))
