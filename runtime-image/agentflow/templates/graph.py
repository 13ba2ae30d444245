"""A starter agent graph: replace the nodes with calls to your model and tools.

Serve it with ``agentflow api`` and try:
    curl -s localhost:8000/v1/graph/invoke -H 'content-type: application/json' \
        -d '{"messages": ["what time is it?"]}'
"""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from agentflow.graph import END, START, MessagesState, StateGraph, emit, message_text


def route(state: MessagesState) -> str:
    """Choose the next node from the last user message."""
    question = message_text(state["messages"][-1]).lower()
    return "clock" if "time" in question else "answer"


def clock(state: MessagesState) -> dict[str, Any]:
    """A sync tool: it may block (here it sleeps); it runs in the server's thread pool."""
    time.sleep(0.05)
    now = datetime.now(UTC).strftime("%H:%M UTC")
    return {"messages": [{"role": "tool", "content": f"The time is {now}."}]}


async def answer(state: MessagesState) -> dict[str, Any]:
    """An async node that streams its answer token by token as custom events."""
    last = message_text(state["messages"][-1])
    words = f"You said: {last}".split()
    for word in words:
        emit({"token": word + " "})
        await asyncio.sleep(0.01)
    return {"messages": [{"role": "assistant", "content": " ".join(words)}]}


builder = StateGraph(MessagesState)
builder.add_node("clock", clock)
builder.add_node("answer", answer)
builder.add_conditional_edges(START, route, ["clock", "answer"])
builder.add_edge("clock", "answer")
builder.add_edge("answer", END)
app = builder.compile()
