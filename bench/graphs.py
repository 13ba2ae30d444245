"""The graphs under load.

* ``two_nodes``: a sync node and an async node, each waiting BENCH_SLEEP_MS (the stand-ins for
  a tool call and a model call), as the bare reference app does.
* ``tool_and_model``: the same waits, each node adding a message (a tool result, then the
  model's answer), as an agent's turn does.
* ``emitter``: one async node emitting BENCH_EVENTS custom events, yielding to the event loop
  between them as a node relaying an LLM's tokens does.
* ``waiter``: one async node waiting BENCH_IDLE_S in silence, to hold streams open.
"""

import asyncio
import os
import time
from typing import Any

from agentflow.graph import END, START, MessagesState, StateGraph, emit

SLEEP_S = float(os.environ.get("BENCH_SLEEP_MS", "10")) / 1000
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "120"))


def tool(state: MessagesState) -> dict[str, Any]:
    time.sleep(SLEEP_S)
    return {}


async def model(state: MessagesState) -> dict[str, Any]:
    await asyncio.sleep(SLEEP_S)
    return {"messages": [{"role": "assistant", "content": "ok"}]}


def tool_call(state: MessagesState) -> dict[str, Any]:
    time.sleep(SLEEP_S)
    return {"messages": [{"role": "tool", "content": "order 1002: shipped"}]}


async def answer(state: MessagesState) -> dict[str, Any]:
    await asyncio.sleep(SLEEP_S)
    return {"messages": [{"role": "assistant", "content": "Your order has shipped."}]}


async def tokens(state: MessagesState) -> dict[str, Any]:
    for index in range(EVENTS):
        emit({"token": index})
        await asyncio.sleep(0)
    return {}


async def wait(state: MessagesState) -> dict[str, Any]:
    await asyncio.sleep(IDLE_S)
    return {}


def _chain(*nodes: Any) -> Any:
    builder = StateGraph(MessagesState)
    previous = START
    for node in nodes:
        builder.add_node(node.__name__, node)
        builder.add_edge(previous, node.__name__)
        previous = node.__name__
    builder.add_edge(previous, END)
    return builder.compile()


two_nodes = _chain(tool, model)
tool_and_model = _chain(tool_call, answer)
emitter = _chain(tokens)
waiter = _chain(wait)
