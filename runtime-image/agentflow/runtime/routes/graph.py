"""``/v1/graph``: run the graph (invoke, stream), describe it, stop a run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from agentflow.graph import MISSING, RunResult
from agentflow.ids import secret_id
from agentflow.runtime.auth import subject_of
from agentflow.runtime.errors import InvalidRequestError
from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.routes import runs_of
from agentflow.runtime.runs import RunOptions
from agentflow.runtime.schemas import (
    ERROR_RESPONSES,
    Envelope,
    GraphDescription,
    InvokeResult,
    RunBody,
    StopBody,
    Stopped,
)
from agentflow.runtime.streaming import StreamResponse, stream_response

router = APIRouter(prefix="/v1/graph", tags=["graph"], responses=ERROR_RESPONSES)


@router.post("/invoke", response_model=Envelope[InvokeResult])
async def invoke(body: RunBody, request: Request) -> JSONResponse:
    result = await runs_of(request).invoke(_options(body, request), secret_id())
    return ok(request, _present(result, body.response_granularity))


@router.post(
    "/stream",
    response_model=None,
    response_class=StreamResponse,
    status_code=200,
    responses={
        200: {
            "description": "The run's StreamChunks as they happen.",
            "content": {"text/event-stream": {}, "application/x-ndjson": {}},
        }
    },
)
async def stream(body: RunBody, request: Request) -> StreamResponse:
    """Server-Sent Events by default; ``Accept: application/x-ndjson`` gets one StreamChunk
    JSON per line instead."""
    chunks = await runs_of(request).stream(
        _options(body, request),
        secret_id(),
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )
    return stream_response(request, chunks)


@router.get("", response_model=Envelope[GraphDescription])
async def describe(request: Request) -> JSONResponse:
    return ok(request, runs_of(request).graph.describe())


@router.post("/stop", response_model=Envelope[Stopped])
async def stop(body: StopBody, request: Request) -> JSONResponse:
    thread_id = body.thread_id or body.config.thread_id
    if thread_id is None:
        raise InvalidRequestError("stop needs a thread_id, at the top level or in config")
    run_id = await runs_of(request).stop(thread_id, subject_of(request))
    return ok(request, {"thread_id": thread_id, "run_id": run_id, "stopped": True})


def _options(body: RunBody, request: Request) -> RunOptions:
    run_input: dict[str, Any] = dict(body.initial_state or {})
    if body.messages:
        run_input["messages"] = body.messages
    return RunOptions(
        input=run_input,
        thread_id=body.config.thread_id or secret_id(),
        recursion_limit=body.recursion_limit,
        resume=body.resume if "resume" in body.model_fields_set else MISSING,
        metadata=dict(body.config.model_extra or {}),
        enqueue=body.multitask_strategy == "enqueue",
        owner=subject_of(request),
    )


def _present(result: RunResult, granularity: str) -> dict[str, Any]:
    values = result.values
    if granularity == "full":
        messages, state = values.get("messages", []), values
    elif granularity == "partial":
        messages = result.new_messages
        state = {key: value for key, value in values.items() if key != "messages"}
    else:
        messages, state = result.new_messages, None
    return {
        "state": state,
        "messages": messages,
        "interrupts": [i.to_dict() for i in result.interrupts],
        "next": result.next,
        "meta": {
            "thread_id": result.thread_id,
            "run_id": result.run_id,
            "is_new_thread": result.is_new_thread,
            "status": result.status,
            "steps": result.steps,
        },
    }
