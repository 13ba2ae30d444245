"""A graph whose checkpointer fails with an error nobody planned for: a bug, as the server
sees it (answered 500 ``internal_error``, its traceback logged once)."""

from typing import Any

from agentflow.checkpoint import Checkpoint, InMemoryCheckpointer
from agentflow.graph import END, START, MessagesState, StateGraph


class BrokenStore(InMemoryCheckpointer):
    async def get(self, thread_id: str) -> Checkpoint | None:
        raise RuntimeError("the disk is on fire")


def noop(state: MessagesState) -> dict[str, Any]:
    return {}


builder = StateGraph(MessagesState)
builder.add_node("noop", noop)
builder.add_edge(START, "noop").add_edge("noop", END)
app = builder.compile(checkpointer=BrokenStore())
