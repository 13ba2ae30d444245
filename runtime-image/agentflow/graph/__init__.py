"""The graph engine: build a :class:`StateGraph`, ``compile()`` it, run it.

Example::

    from typing import Annotated, TypedDict
    from agentflow.graph import END, START, StateGraph, add_messages

    class State(TypedDict):
        messages: Annotated[list, add_messages]

    def hello(state: State) -> dict:
        return {"messages": [{"role": "assistant", "content": "hello"}]}

    graph = StateGraph(State).add_node("hello", hello)
    graph.add_edge(START, "hello").add_edge("hello", END)
    app = graph.compile()
    app.invoke({"messages": ["hi"]})
"""

from agentflow.graph.builder import StateGraph
from agentflow.graph.context import emit, interrupt
from agentflow.graph.engine import MISSING, CompiledGraph, RunResult
from agentflow.graph.errors import (
    GraphDefinitionError,
    GraphError,
    GraphRecursionError,
    InterruptPendingError,
    InvalidUpdateError,
    NodeError,
    NothingToResumeError,
    RoutingError,
)
from agentflow.graph.messages import add_messages, message_text, remove_message
from agentflow.graph.publisher import IteratorPublisher
from agentflow.graph.state import MessagesState
from agentflow.graph.types import END, START, Interrupt, RunConfig, StreamChunk

__all__ = [
    "END",
    "MISSING",
    "START",
    "CompiledGraph",
    "GraphDefinitionError",
    "GraphError",
    "GraphRecursionError",
    "Interrupt",
    "InterruptPendingError",
    "InvalidUpdateError",
    "IteratorPublisher",
    "MessagesState",
    "NodeError",
    "NothingToResumeError",
    "RoutingError",
    "RunConfig",
    "RunResult",
    "StateGraph",
    "StreamChunk",
    "add_messages",
    "emit",
    "interrupt",
    "message_text",
    "remove_message",
]
