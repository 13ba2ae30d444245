"""A three-step graph that records every node it starts and finishes, so tests can tell which
nodes ran, how often, and on which worker:

    START -> first -> slow (waits ``sleep_s``) -> last -> END

Each node appends ``<run id> <node> <started|done> <pid>`` to the file ``AGENTFLOW_TEST_TRACE``
names (one write per line, in append mode: lines from several processes never interleave).
"""

import asyncio
import os
from typing import Annotated, Any, TypedDict

from agentflow.graph import END, START, RunConfig, StateGraph


def _keep(items: list[str], more: list[str]) -> list[str]:
    return [*items, *more]


class State(TypedDict, total=False):
    sleep_s: float
    trail: Annotated[list[str], _keep]


def _trace(config: RunConfig, what: str) -> None:
    path = os.environ.get("AGENTFLOW_TEST_TRACE")
    if path:
        line = f"{config.run_id} {config.node} {what} {os.getpid()}\n"
        with open(path, "a") as trace:
            trace.write(line)


def first(state: State, config: RunConfig) -> dict[str, Any]:
    _trace(config, "done")
    return {"trail": ["first"]}


async def slow(state: State, config: RunConfig) -> dict[str, Any]:
    _trace(config, "started")
    await asyncio.sleep(state.get("sleep_s", 0))
    _trace(config, "done")
    return {"trail": ["slow"]}


def last(state: State, config: RunConfig) -> dict[str, Any]:
    _trace(config, "done")
    return {"trail": ["last"]}


builder = StateGraph(State)
builder.add_node("first", first).add_node("slow", slow).add_node("last", last)
builder.add_edge(START, "first").add_edge("first", "slow").add_edge("slow", "last")
builder.add_edge("last", END)
app = builder.compile()
