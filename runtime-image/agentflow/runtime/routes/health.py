"""Operations endpoints, never behind auth: ``/ping`` (agentflow's), ``/healthz`` (liveness),
``/readyz`` (readiness) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from starlette.responses import Response

from agentflow.runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
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
    """Ready once the graph is loaded. The checkpointer (Postgres) and the broker (Redis) are
    checked and reported (``status: degraded``), but they do not decide readiness: every
    replica shares them, so failing readiness when Postgres blinks would take every replica out
    of its Service at once, and turn clear 503 answers (``checkpointer_unavailable``) into
    connection errors at the load balancer.
    """
    service = getattr(request.app.state, "service", None)
    if service is None:
        return JSONResponse({"status": "not_ready", "checks": {"graph": "not loaded"}}, 503)
    checkpointer, broker = await asyncio.gather(
        _check(service.checkpointer.ping()), _check(service.broker.ping())
    )
    checks = {"graph": "ok", "checkpointer": checkpointer, "broker": broker}
    healthy = checkpointer == "ok" and broker == "ok"
    return JSONResponse({"status": "ready" if healthy else "degraded", "checks": checks})


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_CHECK_TIMEOUT_S:g}s"
    except Exception as error:
        return f"unavailable: {error}"
    return "ok"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=METRICS_CONTENT_TYPE)
