"""``/v1/threads``: list threads, read, set and delete a thread's state, read its history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from agentflow.runtime.auth import subject_of
from agentflow.runtime.errors import InvalidRequestError
from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.routes import runs_of, threads_of
from agentflow.runtime.schemas import (
    ERROR_RESPONSES,
    Deleted,
    Envelope,
    History,
    RunId,
    StateBody,
    StateSnapshot,
    ThreadId,
    ThreadList,
    snapshot,
)
from agentflow.runtime.streaming import StreamResponse, stream_response

router = APIRouter(prefix="/v1/threads", tags=["threads"], responses=ERROR_RESPONSES)

ThreadIdPath = Annotated[ThreadId, Path(description="The thread's id.")]


@router.get("", response_model=Envelope[ThreadList])
async def list_threads(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    threads = await threads_of(request).list_threads(limit, offset, subject_of(request))
    return ok(request, {"threads": [t.to_dict() for t in threads]})


@router.get("/{thread_id}/state", response_model=Envelope[StateSnapshot])
async def get_state(thread_id: ThreadIdPath, request: Request) -> JSONResponse:
    checkpoint = await threads_of(request).get_state(thread_id, subject_of(request))
    return ok(request, snapshot(checkpoint))


@router.put("/{thread_id}/state", response_model=Envelope[StateSnapshot])
async def put_state(thread_id: ThreadIdPath, body: StateBody, request: Request) -> JSONResponse:
    threads, subject = threads_of(request), subject_of(request)
    return ok(request, snapshot(await threads.update_state(thread_id, body.state, subject)))


@router.delete("/{thread_id}/state", response_model=Envelope[Deleted])
async def delete_state(thread_id: ThreadIdPath, request: Request) -> JSONResponse:
    await threads_of(request).delete_thread(thread_id, subject_of(request))
    return ok(request, {"thread_id": thread_id, "deleted": True})


@router.get("/{thread_id}/history", response_model=Envelope[History])
async def history(
    thread_id: ThreadIdPath,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> JSONResponse:
    checkpoints = await threads_of(request).history(thread_id, limit, subject_of(request))
    return ok(request, {"history": [snapshot(c) for c in checkpoints]})


@router.get(
    "/{thread_id}/runs/{run_id}/stream",
    response_model=None,
    response_class=StreamResponse,
    status_code=200,
    responses={
        200: {"description": "The run's StreamChunks.", "content": {"text/event-stream": {}}}
    },
)
async def join_run_stream(
    thread_id: ThreadIdPath,
    run_id: Annotated[RunId, Path(description="The run's id, from its events or meta.")],
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamResponse:
    """Join a run's stream from any worker: the events after ``Last-Event-ID`` (all of them
    without it), then the live ones, to the end."""
    after = -1
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidRequestError("Last-Event-ID must be the number of an event of this run")
        after = int(last_event_id)
    chunks = await runs_of(request).join(thread_id, run_id, after, subject_of(request))
    return stream_response(request, chunks, first_index=after + 1)
