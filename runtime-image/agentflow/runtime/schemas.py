"""The shapes of the HTTP API: request bodies (compatible with agentflow's GraphInputSchema),
the envelope every answer is wrapped in, and the answers themselves.

Routes build their answers as plain dicts (the hot path serialises with orjson, never through
pydantic) and declare the response models below, so ``/openapi.json`` documents them; a test
checks every real answer against its declared model, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

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


# ---------------------------------------------------------------------- responses

T = TypeVar("T")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(_Answer):
    request_id: str = Field(description="The X-Request-ID of the exchange.")
    timestamp: str = Field(description="When the answer was made (ISO 8601, UTC).")


class OkMetadata(Metadata):
    message: Literal["OK"]


class Envelope(_Answer, Generic[T]):
    """Every successful answer: ``{"data": ..., "metadata": ...}``, as agentflow's server."""

    data: T
    metadata: OkMetadata


class ErrorBody(_Answer):
    code: str = Field(description="A stable, machine-readable name of the problem.")
    message: str = Field(description="What went wrong, as a sentence.")
    details: Any = Field(None, description="Per-field problems of an invalid request.")


class ErrorEnvelope(_Answer):
    """Every error: ``{"error": {"code", "message"}, "metadata": ...}``."""

    error: ErrorBody
    metadata: Metadata


class InterruptInfo(_Answer):
    id: str
    node: str
    value: Any


class RunMeta(_Answer):
    thread_id: str
    run_id: str
    is_new_thread: bool
    status: Literal["success", "interrupted"]
    steps: int


class InvokeResult(_Answer):
    state: dict[str, Any] | None = Field(
        description="The state, per response_granularity (null for low)."
    )
    messages: list[dict[str, Any]]
    interrupts: list[InterruptInfo]
    next: list[str] = Field(description="The nodes waiting to run (after an interrupt).")
    meta: RunMeta


class GraphNode(_Answer):
    id: str


class GraphEdge(_Answer):
    source: str
    target: str | None = Field(description="null: a router whose targets are not declared.")
    conditional: bool


class GraphDescription(_Answer):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    state_keys: list[str]


class Stopped(_Answer):
    thread_id: str
    run_id: str
    stopped: Literal[True]


class ThreadSummary(_Answer):
    thread_id: str
    created_at: float
    updated_at: float
    metadata: dict[str, Any]


class ThreadList(_Answer):
    threads: list[ThreadSummary]


class StateSnapshot(_Answer):
    """A thread's state after one step."""

    thread_id: str
    checkpoint_id: str
    parent_id: str | None
    run_id: str
    step: int
    source: str = Field(description="loop (a step of a run) or update (a PUT of the state).")
    nodes: list[str] = Field(description="The nodes that ran in this step.")
    values: dict[str, Any]
    next: list[str]
    interrupts: list[InterruptInfo]
    created_at: float


class History(_Answer):
    history: list[StateSnapshot] = Field(description="Newest first.")


class Deleted(_Answer):
    thread_id: str
    deleted: Literal[True]


class Health(_Answer):
    status: Literal["ok", "ready", "degraded", "not_ready"]
    checks: dict[str, str] = Field(
        default_factory=dict, description="Each dependency: ok, or what is wrong with it."
    )


# The errors any /v1 route may answer, documented once for every route.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "The request is malformed (invalid JSON, a bad header).",
        401: "Authentication is on and the bearer token is missing or invalid.",
        403: "The token is valid but may not do this.",
        404: "No such thread or run (or it belongs to someone else).",
        409: "The thread is busy, or waits for a resume.",
        413: "The request is too large.",
        422: "The request body or a parameter is invalid; details name each field.",
        503: "The checkpointer or the broker is unavailable, or the server is shutting down.",
    }.items()
}


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
