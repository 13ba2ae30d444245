"""Operations endpoints, never behind auth: ``/ping`` (agentflow's), ``/healthz`` (liveness),
``/readyz`` (readiness) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from starlette.responses import Response

from agentflow.runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.schemas import Envelope, Health

router = APIRouter(tags=["health"])

READY_CHECK_TIMEOUT_S = 2.0


@router.get("/ping", response_model=Envelope[str])
async def ping(request: Request) -> JSONResponse:
    return ok(request, "pong")


@router.get("/healthz", response_model=Health)
async def healthz() -> JSONResponse:
    """The process and its event loop are alive (cheap: no I/O)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request) -> JSONResponse:
    """Ready once the graph is loaded. The checkpointer (Postgres) and the broker (Redis) are
    checked and reported (``status: degraded``), but they do not decide readiness: every
    replica shares them, so failing readiness when Postgres blinks would take every replica out
    of its Service at once, and turn clear 503 answers (``checkpointer_unavailable``) into
    connection errors at the load balancer.
    """
    state = request.app.state
    if getattr(state, "runs", None) is None:
        return JSONResponse({"status": "not_ready", "checks": {"graph": "not loaded"}}, 503)
    checkpointer, broker = await asyncio.gather(
        _check(state.store.ping()), _check(state.broker.ping())
    )
    checks = {"graph": "ok", "checkpointer": checkpointer, "broker": broker}
    healthy = checkpointer == "ok" and broker == "ok"
    return JSONResponse({"status": "ready" if healthy else "degraded", "checks": checks})


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_CHECK_TIMEOUT_S:g}s"
    except Exception as error:  # noqa: BLE001 - any failure of the check is its answer
        return f"unavailable: {error}"
    return "ok"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=METRICS_CONTENT_TYPE)
