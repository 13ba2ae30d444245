"""A graph whose behaviour the request chooses through its initial_state, so one server
process covers every server scenario:

    START -> work (sync) -> [loop: work | ask: approve -> talk | talk] -> END
"""

import asyncio
import operator
import time
from typing import Annotated, Any, TypedDict

from agentflow.graph import END, START, StateGraph, add_messages, emit, interrupt


class State(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    count: Annotated[int, operator.add]
    sleep_s: float  # blocking sleep in the sync node
    async_sleep_s: float  # awaited between custom events in the async node
    events: int  # custom events the async node emits
    fail: bool
    ask: bool
    loop: bool
    approved: Any


def work(state: State) -> dict[str, Any]:
    time.sleep(state.get("sleep_s", 0))
    if state.get("fail"):
        raise RuntimeError("the tool broke: secret-internal-detail")
    return {"count": 1}


def approve(state: State) -> dict[str, Any]:
    return {"approved": interrupt({"question": "approve?"})}


async def talk(state: State) -> dict[str, Any]:
    for index in range(state.get("events", 0)):
        emit({"index": index})
        await asyncio.sleep(state.get("async_sleep_s", 0))
    return {"messages": [{"role": "assistant", "content": f"count={state['count']}"}]}


def after_work(state: State) -> str:
    if state.get("loop"):
        return "work"
    return "approve" if state.get("ask") else "talk"


builder = StateGraph(State)
builder.add_node("work", work)
builder.add_node("approve", approve)
builder.add_node("talk", talk)
builder.add_edge(START, "work")
builder.add_conditional_edges("work", after_work, ["work", "approve", "talk"])
builder.add_edge("approve", "talk")
builder.add_edge("talk", END)
app = builder.compile()
