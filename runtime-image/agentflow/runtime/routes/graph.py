"""``/v1/graph``: run the graph (invoke, stream), describe it, stop a run."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from agentflow.graph import MISSING, RunResult, StreamChunk
from agentflow.ids import secret_id
from agentflow.runtime.auth import subject_of
from agentflow.runtime.errors import InvalidRequestError
from agentflow.runtime.json_body import StrictJSONRoute
from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.routes import runs_of
from agentflow.runtime.runs import RunOptions
from agentflow.runtime.schemas import (
    ERROR_RESPONSES,
    Envelope,
    Granularity,
    GraphDescription,
    InvokeResult,
    RunBody,
    StopBody,
    StopResult,
    iso_time,
)
from agentflow.runtime.streaming import StreamResponse, stream_response

router = APIRouter(
    prefix="/v1/graph", tags=["graph"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute
)


@router.post("/invoke", response_model=Envelope[InvokeResult])
async def invoke(body: RunBody, request: Request) -> JSONResponse:
    result = await runs_of(request).invoke(run_options(body, request), secret_id())
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
    """Server-Sent Events by default; ``Accept: application/x-ndjson`` (as agentflow's client
    sends) gets one StreamChunk JSON per line instead."""
    chunks = await runs_of(request).stream(
        run_options(body, request),
        secret_id(),
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )
    return stream_response(request, _granular(chunks, body.response_granularity))


@router.get("", response_model=Envelope[GraphDescription])
async def describe(request: Request) -> JSONResponse:
    return ok(request, runs_of(request).graph.describe())


@router.get(":StateSchema", response_model=Envelope[dict[str, Any]])
async def state_schema(request: Request) -> JSONResponse:
    """The state as JSON Schema (agentflow's path, colon included)."""
    return ok(request, runs_of(request).graph.schema.json_schema)


@router.post("/stop", response_model=Envelope[StopResult])
async def stop(body: StopBody, request: Request) -> JSONResponse:
    thread_id = body.thread_id or body.config.thread_id
    if thread_id is None:
        raise InvalidRequestError("stop needs a thread_id, at the top level or in config")
    run_id = await runs_of(request).stop(thread_id, subject_of(request))
    message = f"run {run_id} was stopped" if run_id else "no run is in progress on the thread"
    return ok(
        request,
        {
            "ok": True,
            "success": True,
            "running": False,
            "stopped": run_id is not None,
            "thread_id": thread_id,
            "run_id": run_id,
            "message": message,
            "stopped_at": iso_time(time.time()) if run_id else None,
        },
    )


def run_options(body: RunBody, request: Request) -> RunOptions:
    """What a run body asks, for :class:`Runs` (and background runs)."""
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


def _present(result: RunResult, granularity: Granularity) -> dict[str, Any]:
    """agentflow's invoke answer (messages, state, context, summary, meta) with ours beside."""
    values = result.values
    # Always this run's messages: agentflow's client runs every remote tool call it finds in
    # them, so the thread's earlier calls must not come back (they would loop forever).
    state: dict[str, Any] | None = None
    context: list[dict[str, Any]] | None = None
    if granularity == "full":
        state, context = values, values.get("messages", [])
    elif granularity == "partial":
        context = values.get("messages", [])
        state = {key: value for key, value in values.items() if key != "messages"}
    return {
        "messages": result.new_messages,
        "state": state,
        "context": context,
        "summary": None,
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


async def _granular(
    batches: AsyncIterator[list[StreamChunk]], granularity: Granularity
) -> AsyncIterator[list[StreamChunk]]:
    """A stream at the request's granularity: ``full`` sends every chunk; ``partial`` sends
    ``state`` chunks without the messages (the message chunks carry them); ``low`` sends no
    ``state`` chunks."""
    async for batch in batches:
        if granularity == "low":
            batch = [chunk for chunk in batch if chunk.event != "state"]
        elif granularity == "partial":
            batch = [_without_messages(chunk) for chunk in batch]
        if batch:
            yield batch


def _without_messages(chunk: StreamChunk) -> StreamChunk:
    if chunk.event != "state" or not chunk.state:
        return chunk
    state = {key: value for key, value in chunk.state.items() if key != "messages"}
    return dataclasses.replace(chunk, state=state)
