"""Probes: ``/ping`` (agentflow's), ``/healthz`` (liveness) and ``/readyz`` (readiness)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from agentflow.runtime.responses import JSONResponse, ok

router = APIRouter(tags=["health"])

READY_CHECK_TIMEOUT_S = 2.0


@router.get("/ping")
async def ping(request: Request) -> JSONResponse:
    return ok(request, "pong")


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process and its event loop are alive (cheap: no I/O)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The graph is loaded and the checkpointer answers within a couple of seconds."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        return JSONResponse({"status": "not_ready", "checks": {"graph": "not loaded"}}, 503)
    try:
        await asyncio.wait_for(service.checkpointer.ping(), READY_CHECK_TIMEOUT_S)
    except Exception as error:
        detail = "timed out" if isinstance(error, TimeoutError) else str(error)
        checks = {"graph": "ok", "checkpointer": detail}
        return JSONResponse({"status": "not_ready", "checks": checks}, 503)
    return JSONResponse({"status": "ready", "checks": {"graph": "ok", "checkpointer": "ok"}})
