"""Graph factories and broken targets, for the loader tests."""

from agentflow.graph import END, START, MessagesState, StateGraph


def _builder() -> StateGraph:
    builder = StateGraph(MessagesState)
    builder.add_node("reply", lambda s: {"messages": [{"role": "assistant", "content": "hi"}]})
    builder.add_edge(START, "reply").add_edge("reply", END)
    return builder


def make_graph():
    return _builder().compile()


async def make_graph_async():
    return _builder().compile()


def make_nothing():
    return 42


uncompiled = _builder()
not_a_graph = "just a string"


def _own_checkpointer():
    from agentflow.checkpoint import InMemoryCheckpointer

    return InMemoryCheckpointer()


with_own_checkpointer = _builder().compile(checkpointer=_own_checkpointer())
