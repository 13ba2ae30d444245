"""``/v1/threads``: list threads, read, set and delete a thread's state, read its history."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response

from agentflow.graph import message_text
from agentflow.runtime.auth import StreamTokens, subject_of
from agentflow.runtime.broker import NothingAfterTheEnd
from agentflow.runtime.errors import InvalidRequestError, MessageNotFoundError
from agentflow.runtime.json_body import StrictJSONRoute
from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.routes import runs_of, threads_of
from agentflow.runtime.schemas import (
    ERROR_RESPONSES,
    Done,
    Envelope,
    History,
    MessageList,
    MessagesBody,
    NoState,
    RunId,
    StateBody,
    StateSnapshot,
    StreamToken,
    ThreadDetails,
    ThreadId,
    ThreadList,
    done,
    snapshot,
    thread_summary,
)
from agentflow.runtime.streaming import StreamResponse, stream_response

router = APIRouter(
    prefix="/v1/threads", tags=["threads"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute
)

ThreadIdPath = Annotated[ThreadId, Path(description="The thread's id.")]
RunIdPath = Annotated[RunId, Path(description="The run's id, from its events or meta.")]
MessageIdPath = Annotated[str, Path(max_length=128, description="The message's message_id.")]
# An event's position: ASCII digits (str.isdigit also takes '²'), within 64 bits.
_EVENT_ID = re.compile(r"[0-9]{1,18}")
# Offsets past any real list, refused before they reach the database's integer types.
MAX_OFFSET = 1_000_000


@router.get("", response_model=Envelope[ThreadList])
async def list_threads(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    search: Annotated[str | None, Query(max_length=128, description="Part of the id.")] = None,
) -> JSONResponse:
    threads = await threads_of(request).list_threads(limit, offset, subject_of(request), search)
    return ok(request, {"threads": [thread_summary(t) for t in threads]})


@router.get("/{thread_id}", response_model=Envelope[ThreadDetails])
async def get_thread(thread_id: ThreadIdPath, request: Request) -> JSONResponse:
    thread = await threads_of(request).get_thread(thread_id, subject_of(request))
    return ok(request, {"thread_data": {"thread": thread_summary(thread)}})


@router.delete("/{thread_id}", response_model=Envelope[Done])
async def delete_thread(thread_id: ThreadIdPath, request: Request) -> JSONResponse:
    """Delete the thread, its checkpoints and messages (agentflow's client sends a body with
    ``config``: it is not needed)."""
    await threads_of(request).delete_thread(thread_id, subject_of(request))
    return ok(request, done(f"thread '{thread_id}' deleted", True))


@router.get("/{thread_id}/state", response_model=Envelope[StateSnapshot | NoState])
async def get_state(thread_id: ThreadIdPath, request: Request) -> JSONResponse:
    """The thread's state; ``{"state": null}`` for a thread that does not exist (yet)."""
    checkpoint = await threads_of(request).get_state(thread_id, subject_of(request))
    return ok(request, {"state": None} if checkpoint is None else snapshot(checkpoint))


@router.put("/{thread_id}/state", response_model=Envelope[StateSnapshot])
async def put_state(thread_id: ThreadIdPath, body: StateBody, request: Request) -> JSONResponse:
    threads, subject = threads_of(request), subject_of(request)
    return ok(request, snapshot(await threads.update_state(thread_id, body.state, subject)))


@router.delete("/{thread_id}/state", response_model=Envelope[Done])
async def delete_state(thread_id: ThreadIdPath, request: Request) -> JSONResponse:
    await threads_of(request).delete_thread(thread_id, subject_of(request))
    return ok(request, done(f"the state of thread '{thread_id}' was cleared", True))


@router.get("/{thread_id}/history", response_model=Envelope[History])
async def history(
    thread_id: ThreadIdPath,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> JSONResponse:
    checkpoints = await threads_of(request).history(thread_id, limit, subject_of(request))
    return ok(request, {"history": [snapshot(c) for c in checkpoints]})


@router.get("/{thread_id}/messages", response_model=Envelope[MessageList])
async def list_messages(
    thread_id: ThreadIdPath,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    search: Annotated[str | None, Query(max_length=256, description="Part of the text.")] = None,
) -> JSONResponse:
    """The thread's messages, oldest first (none for a thread that does not exist)."""
    messages = await threads_of(request).messages(thread_id, subject_of(request))
    if search:
        needle = search.lower()
        messages = [m for m in messages if needle in message_text(m).lower()]
    return ok(request, {"messages": messages[offset : offset + limit]})


@router.post("/{thread_id}/messages", response_model=Envelope[Done])
async def add_messages(
    thread_id: ThreadIdPath, body: MessagesBody, request: Request
) -> JSONResponse:
    """Append messages to the thread's, without running the graph."""
    messages = body.messages or []
    await threads_of(request).add_messages(thread_id, messages, subject_of(request))
    ids = [m["message_id"] for m in messages]
    return ok(request, done(f"{len(ids)} message(s) added", {"message_ids": ids}))


@router.get("/{thread_id}/messages/{message_id}", response_model=Envelope[dict[str, Any]])
async def get_message(
    thread_id: ThreadIdPath, message_id: MessageIdPath, request: Request
) -> JSONResponse:
    messages = await threads_of(request).messages(thread_id, subject_of(request))
    found = next((m for m in messages if m["message_id"] == message_id), None)
    if found is None:
        raise MessageNotFoundError(f"thread '{thread_id}' has no message with id '{message_id}'")
    return ok(request, found)


@router.delete("/{thread_id}/messages/{message_id}", response_model=Envelope[Done])
async def delete_message(
    thread_id: ThreadIdPath, message_id: MessageIdPath, request: Request
) -> JSONResponse:
    await threads_of(request).delete_message(thread_id, message_id, subject_of(request))
    return ok(request, done(f"message '{message_id}' deleted", {"message_id": message_id}))


@router.get(
    "/{thread_id}/runs/{run_id}/stream",
    response_model=None,
    response_class=StreamResponse,
    status_code=200,
    responses={
        200: {"description": "The run's StreamChunks.", "content": {"text/event-stream": {}}},
        204: {"description": "The run ended and nothing is left after Last-Event-ID."},
    },
)
async def join_run_stream(
    thread_id: ThreadIdPath,
    run_id: RunIdPath,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Join a run's stream from any worker: the events after ``Last-Event-ID`` (all of them
    without it), then the live ones, to the end. A reconnect after the end gets 204, on which
    ``EventSource`` stops reconnecting. Browsers authenticate with ``?stream_token=`` (see
    the stream-token route), since ``EventSource`` cannot send ``Authorization``."""
    after = -1
    if last_event_id is not None:
        if not _EVENT_ID.fullmatch(last_event_id.strip()):
            raise InvalidRequestError("Last-Event-ID must be the number of an event of this run")
        after = int(last_event_id)
    try:
        chunks = await runs_of(request).join(thread_id, run_id, after, subject_of(request))
    except NothingAfterTheEnd:
        return Response(status_code=204)
    return stream_response(request, chunks, first_index=after + 1)


@router.post("/{thread_id}/runs/{run_id}/stream-token", response_model=Envelope[StreamToken])
async def stream_token(
    thread_id: ThreadIdPath, run_id: RunIdPath, request: Request
) -> JSONResponse:
    """A token that lets a browser's ``EventSource`` join this run's stream (it cannot send
    ``Authorization``): ``GET {url}``. Valid for this run only, for
    ``AGENTFLOW_STREAM_TOKEN_TTL_S``; a bearer token is needed to get one."""
    threads, subject = threads_of(request), subject_of(request)
    await threads.check_owner(thread_id, subject)
    url = f"/v1/threads/{thread_id}/runs/{run_id}/stream"
    tokens: StreamTokens | None = request.app.state.stream_tokens
    if tokens is None or subject is None:  # auth is off: the stream needs no token
        return ok(request, {"token": None, "expires_in": None, "url": url})
    token = tokens.mint(subject, thread_id, run_id)
    return ok(
        request,
        {"token": token, "expires_in": tokens.ttl_s, "url": f"{url}?stream_token={token}"},
    )
