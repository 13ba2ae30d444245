"""``/v1/threads``: list threads, read, set and delete a thread's state, read its history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.routes import Service
from agentflow.runtime.schemas import StateBody, ThreadId, snapshot

router = APIRouter(prefix="/v1/threads", tags=["threads"])

ThreadIdPath = Annotated[ThreadId, Path(description="The thread's id.")]


@router.get("")
async def list_threads(
    request: Request,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    threads = await service.list_threads(limit, offset)
    return ok(request, {"threads": [t.to_dict() for t in threads]})


@router.get("/{thread_id}/state")
async def get_state(thread_id: ThreadIdPath, request: Request, service: Service) -> JSONResponse:
    return ok(request, snapshot(await service.get_state(thread_id)))


@router.put("/{thread_id}/state")
async def put_state(
    thread_id: ThreadIdPath, body: StateBody, request: Request, service: Service
) -> JSONResponse:
    return ok(request, snapshot(await service.update_state(thread_id, body.state)))


@router.delete("/{thread_id}/state")
async def delete_state(thread_id: ThreadIdPath, request: Request, service: Service) -> JSONResponse:
    await service.delete_thread(thread_id)
    return ok(request, {"thread_id": thread_id, "deleted": True})


@router.get("/{thread_id}/history")
async def history(
    thread_id: ThreadIdPath,
    request: Request,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> JSONResponse:
    checkpoints = await service.history(thread_id, limit)
    return ok(request, {"history": [snapshot(c) for c in checkpoints]})
