"""Request bodies of the HTTP API (compatible with agentflow's GraphInputSchema) and the
envelope every response is wrapped in."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentflow.checkpoint.base import Checkpoint
from agentflow.graph.engine import DEFAULT_RECURSION_LIMIT

_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
THREAD_ID_RULE = (
    "a thread_id is 1 to 128 characters: letters, digits, '.', '_', ':', '@' or '-', "
    "starting with a letter or digit"
)


def check_thread_id(value: str) -> str:
    if not _THREAD_ID.fullmatch(value):
        raise ValueError(THREAD_ID_RULE)
    return value


ThreadId = Annotated[str, AfterValidator(check_thread_id)]
RunId = Annotated[str, AfterValidator(check_thread_id)]  # run ids follow the same rule


class RunConfigBody(BaseModel):
    """``config``: the thread to run on; any other keys reach nodes as ``config.metadata``."""

    model_config = ConfigDict(extra="allow")

    thread_id: ThreadId | None = None


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[str | dict[str, Any]] | None = Field(
        None, description="Messages appended to the thread's messages before the run."
    )
    initial_state: dict[str, Any] | None = Field(
        None, description="State keys applied through the reducers before the run."
    )
    config: RunConfigBody = Field(default_factory=RunConfigBody)
    recursion_limit: int = Field(DEFAULT_RECURSION_LIMIT, ge=1, le=100)
    resume: Any = Field(
        None, description="The answer to the thread's pending interrupt (only when present)."
    )
    response_granularity: Literal["low", "partial", "full"] = Field(
        "low",
        description="low: this run's new messages; partial: plus the state without messages; "
        "full: all messages and the whole state.",
    )
    on_disconnect: Literal["cancel", "continue"] = Field(
        "cancel", description="Streams only: what happens to the run if the client goes away."
    )
    multitask_strategy: Literal["reject", "enqueue"] = Field(
        "reject",
        description="When the thread is busy: reject (409) or enqueue (wait for it, bounded by "
        "AGENTFLOW_ENQUEUE_TIMEOUT_S).",
    )


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thread_id: ThreadId | None = None
    config: RunConfigBody = Field(default_factory=RunConfigBody)


class StateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: dict[str, Any] = Field(description="Keys to set; other keys keep their values.")


def envelope(data: Any, request_id: str) -> dict[str, Any]:
    return {"data": data, "metadata": {**response_metadata(request_id), "message": "OK"}}


def response_metadata(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "timestamp": datetime.fromtimestamp(time.time(), UTC).isoformat(),
    }


def snapshot(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint as the thread endpoints show it."""
    return {
        "thread_id": checkpoint.thread_id,
        "checkpoint_id": checkpoint.checkpoint_id,
        "parent_id": checkpoint.parent_id,
        "run_id": checkpoint.run_id,
        "step": checkpoint.step,
        "source": checkpoint.source,
        "nodes": checkpoint.nodes,
        "values": checkpoint.values,
        "next": checkpoint.next,
        "interrupts": checkpoint.interrupts,
        "created_at": checkpoint.created_at,
    }
