"""The graph under load: a sync node and an async node, each waiting BENCH_SLEEP_MS (the
stand-ins for a tool call and a model call), as the bare reference app does."""

import asyncio
import os
import time
from typing import Any

from agentflow.graph import END, START, MessagesState, StateGraph

SLEEP_S = float(os.environ.get("BENCH_SLEEP_MS", "10")) / 1000


def tool(state: MessagesState) -> dict[str, Any]:
    time.sleep(SLEEP_S)
    return {}


async def model(state: MessagesState) -> dict[str, Any]:
    await asyncio.sleep(SLEEP_S)
    return {"messages": [{"role": "assistant", "content": "ok"}]}


builder = StateGraph(MessagesState)
builder.add_node("tool", tool)
builder.add_node("model", model)
builder.add_edge(START, "tool").add_edge("tool", "model").add_edge("model", END)
two_nodes = builder.compile()
