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

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)

from agentflow.checkpoint.base import Checkpoint, ThreadInfo
from agentflow.graph.engine import DEFAULT_RECURSION_LIMIT
from agentflow.graph.errors import InvalidUpdateError
from agentflow.graph.messages import normalize_messages
from agentflow.runstore import RunRecord

_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
THREAD_ID_RULE = (
    "a thread_id is 1 to 128 characters: letters, digits, '.', '_', ':', '@' or '-', "
    "starting with a letter or digit"
)


def check_thread_id(value: str) -> str:
    if not _THREAD_ID.fullmatch(value):
        raise ValueError(THREAD_ID_RULE)
    return value


def _integer_as_text(value: Any) -> Any:
    """agentflow accepts integer thread ids (its client types some as numbers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ThreadId = Annotated[str, BeforeValidator(_integer_as_text), AfterValidator(check_thread_id)]
RunId = Annotated[str, AfterValidator(check_thread_id)]  # run ids follow the same rule


def _agentflow_messages(value: Any) -> Any:
    """Messages as agentflow's model has them; malformed ones are refused here, with a 422."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"messages must be a list, not {type(value).__name__}")
    try:
        return normalize_messages(value)
    except InvalidUpdateError as error:
        raise ValueError(str(error)) from None


# Plain strings are accepted too, on the way in (normalised before the type is checked).
Messages = Annotated[list[dict[str, Any]] | None, BeforeValidator(_agentflow_messages)]


Granularity = Literal["low", "partial", "full"]


class RunConfigBody(BaseModel):
    """``config``: the thread to run on; any other keys reach nodes as ``config.metadata``."""

    model_config = ConfigDict(extra="allow")

    thread_id: ThreadId | None = None


class RunBody(BaseModel):
    # Unknown fields are ignored, as agentflow's server ignores them.
    model_config = ConfigDict(extra="ignore")

    messages: Messages = Field(
        None,
        description="Messages appended to the thread's messages before the run: agentflow "
        "message objects, or plain strings (user messages).",
    )
    initial_state: dict[str, Any] | None = Field(
        None, description="State keys applied through the reducers before the run."
    )
    config: RunConfigBody = Field(default_factory=RunConfigBody)
    recursion_limit: StrictInt = Field(DEFAULT_RECURSION_LIMIT, ge=1, le=100)
    resume: Any = Field(
        None, description="The answer to the thread's pending interrupt (only when present)."
    )
    response_granularity: Granularity = Field(
        "low",
        description="What comes back beside the run's messages. low: nothing; partial: the "
        "state without messages, and the thread's messages as context; full: the whole state "
        "and context. On streams: low sends no state events, partial sends them without "
        "messages.",
    )
    on_disconnect: Literal["cancel", "continue"] = Field(
        "cancel", description="Streams only: what happens to the run if the client goes away."
    )
    multitask_strategy: Literal["reject", "enqueue"] = Field(
        "reject",
        description="When the thread is busy: reject (409) or enqueue (wait for it, bounded by "
        "AGENTFLOW_ENQUEUE_TIMEOUT_S).",
    )

    @model_validator(mode="after")
    def _asks_something(self) -> RunBody:
        if not self.messages and not self.initial_state and "resume" not in self.model_fields_set:
            raise ValueError(
                "the request gives the run nothing to do: send at least one message "
                "(or initial_state, or resume)"
            )
        return self


class BackgroundRunBody(RunBody):
    webhook: str | None = Field(
        None,
        max_length=2048,
        description="Where the run's outcome is POSTed when it ends (signed; must start with a "
        "prefix of the server's AGENTFLOW_WEBHOOK_ALLOWED_URLS).",
    )


class StopBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    thread_id: ThreadId | None = None
    config: RunConfigBody = Field(default_factory=RunConfigBody)


class StateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: dict[str, Any] = Field(description="Keys to set; other keys keep their values.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Accepted as agentflow's client sends it; unused."
    )


class MessagesBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: Annotated[Messages, Field(min_length=1)] = Field(
        description="Messages appended to the thread's messages, through its reducer."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Accepted; unused.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Accepted; unused.")


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


class WebhookInfo(_Answer):
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    delivered_at: str | None


class RunOutcome(_Answer):
    values: dict[str, Any] = Field(description="The thread's state when the run ended.")
    messages: list[dict[str, Any]] = Field(description="The messages the run added.")
    interrupts: list[InterruptInfo]
    next: list[str]
    steps: int = Field(description="Steps run (by the last worker, when it was resumed).")


class RunInfo(_Answer):
    """A background run: its status, and its outcome once it ended."""

    run_id: str
    thread_id: str
    status: Literal["pending", "running", "interrupted", "success", "error", "stopped"]
    attempts: int = Field(description="Workers that claimed it (more than one: it was resumed).")
    created_at: str
    started_at: str | None
    ended_at: str | None
    result: RunOutcome | None
    error: ErrorBody | None
    webhook: WebhookInfo | None


class RunList(_Answer):
    runs: list[RunInfo]


class InvokeResult(_Answer):
    messages: list[dict[str, Any]] = Field(
        description="The run's messages: the caller's, then the nodes' (the thread's are in "
        "context)."
    )
    state: dict[str, Any] | None = Field(
        description="The state, per response_granularity (null for low; without messages for "
        "partial)."
    )
    context: list[dict[str, Any]] | None = Field(
        description="agentflow's context: the thread's messages (partial and full)."
    )
    summary: None = Field(description="agentflow's context summary: none is kept.")
    interrupts: list[InterruptInfo]
    next: list[str] = Field(description="The nodes waiting to run (after an interrupt).")
    meta: RunMeta


class GraphInfo(_Answer):
    node_count: int
    edge_count: int
    checkpointer: bool
    checkpointer_type: str | None
    state_type: str
    state_fields: list[str]


class GraphNode(_Answer):
    id: str
    name: str


class GraphEdge(_Answer):
    id: str
    source: str
    target: str | None = Field(description="null: a router whose targets are not declared.")
    conditional: bool


class GraphDescription(_Answer):
    info: GraphInfo
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    state_keys: list[str]


class StopResult(_Answer):
    """Stopping is idempotent: a thread with no run of the caller's in progress answers 200
    too, with ``stopped: false``."""

    ok: Literal[True]
    success: Literal[True]
    running: Literal[False] = Field(description="No run is in progress on the thread now.")
    stopped: bool = Field(description="Whether this request stopped a run.")
    thread_id: str
    run_id: str | None
    message: str
    stopped_at: str | None


class ThreadSummary(_Answer):
    thread_id: str
    thread_name: str | None
    user_id: str | None = Field(description="The owner's subject when auth is on.")
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    run_id: None


class ThreadList(_Answer):
    threads: list[ThreadSummary]


class ThreadData(_Answer):
    thread: ThreadSummary


class ThreadDetails(_Answer):
    thread_data: ThreadData


class StateSnapshot(_Answer):
    """A thread's state after one step (``state`` is agentflow's; the rest is ours)."""

    state: dict[str, Any]
    thread_id: str
    checkpoint_id: str
    parent_id: str | None
    run_id: str
    step: int
    source: str = Field(description="loop (a step of a run) or update (a change over HTTP).")
    nodes: list[str] = Field(description="The nodes that ran in this step.")
    next: list[str]
    interrupts: list[InterruptInfo]
    created_at: float


class NoState(_Answer):
    """An unknown thread's state, as agentflow answers it."""

    state: None


class History(_Answer):
    history: list[StateSnapshot] = Field(description="Newest first.")


class MessageList(_Answer):
    messages: list[dict[str, Any]]


class StreamToken(_Answer):
    token: str | None = Field(description="null when auth is off (the stream needs none).")
    expires_in: float | None = Field(description="Seconds the token is valid.")
    url: str = Field(description="The path to give EventSource, token included.")


class Done(_Answer):
    """agentflow's answer to a change: ``{success, message, data}``."""

    success: Literal[True]
    message: str
    data: Any


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
        "timestamp": iso_time(time.time()),
    }


def snapshot(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint as the thread endpoints show it."""
    return {
        "state": checkpoint.values,
        "thread_id": checkpoint.thread_id,
        "checkpoint_id": checkpoint.checkpoint_id,
        "parent_id": checkpoint.parent_id,
        "run_id": checkpoint.run_id,
        "step": checkpoint.step,
        "source": checkpoint.source,
        "nodes": checkpoint.nodes,
        "next": checkpoint.next,
        "interrupts": checkpoint.interrupts,
        "created_at": checkpoint.created_at,
    }


def thread_summary(thread: ThreadInfo) -> dict[str, Any]:
    """A thread as agentflow lists it (dates in ISO 8601, which JavaScript's Date reads)."""
    return {
        "thread_id": thread.thread_id,
        "thread_name": thread.metadata.get("thread_name"),
        "user_id": thread.metadata.get("owner"),
        "metadata": thread.metadata,
        "created_at": iso_time(thread.created_at),
        "updated_at": iso_time(thread.updated_at),
        "run_id": None,
    }


def run_info(run: RunRecord) -> dict[str, Any]:
    """A background run as its endpoints show it, and as its webhook receives it."""
    hook = run.webhook
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "status": run.status,
        "attempts": run.attempts,
        "created_at": iso_time(run.created_at),
        "started_at": _iso_or_none(run.started_at),
        "ended_at": _iso_or_none(run.ended_at),
        "result": run.result,
        "error": run.error,
        "webhook": None
        if hook is None
        else {
            "url": hook.url,
            "status": hook.status,
            "attempts": hook.attempts,
            "last_error": hook.last_error,
            "delivered_at": _iso_or_none(hook.delivered_at),
        },
    }


def _iso_or_none(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else iso_time(epoch_s)


def done(message: str, data: Any) -> dict[str, Any]:
    return {"success": True, "message": message, "data": data}


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()
