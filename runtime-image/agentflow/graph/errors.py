"""Errors raised by the graph engine.

Every message reads as a sentence that names the node, key or limit involved, because these
messages travel as-is into HTTP error bodies and operator logs.
"""

from __future__ import annotations

from agentflow.errors import AgentflowError


class GraphError(AgentflowError):
    """Base class of every error the engine raises on purpose."""


class GraphDefinitionError(GraphError):
    """The graph was built wrongly (unknown node, duplicate name, no entry point...)."""

    code = "invalid_graph"


class InvalidUpdateError(GraphError):
    """A node, router or request tried to write something the state schema does not allow."""

    status, code = 422, "invalid_input"


class GraphRecursionError(GraphError):
    """A run needed more steps than its recursion limit allows."""

    code = "recursion_limit_reached"


class NodeError(GraphError):
    """A node (or the router after it) raised; the original exception is ``__cause__``."""

    code = "node_failed"

    def __init__(self, node: str, error: BaseException, *, in_router: bool = False) -> None:
        self.node = node
        where = f"the router after node '{node}'" if in_router else f"node '{node}'"
        super().__init__(f"{where} failed: {type(error).__name__}: {error}")


class InterruptPendingError(GraphError):
    """A run without ``resume`` was started on a thread that is waiting for one."""

    status, code = 409, "interrupt_pending"


class NothingToResumeError(GraphError):
    """``resume`` was given for a thread that has no pending interrupt."""

    status, code = 409, "nothing_to_resume"


class RoutingError(GraphError):
    """A router returned something that is not a node of the graph (or a key of its mapping)."""

    code = "routing_failed"
