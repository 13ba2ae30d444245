"""Background runs: submit one (``POST /v1/graph/runs``), read it, list a thread's, wait for
one to end. Joining a run's stream and stopping it are the routes every run has."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from agentflow.runtime.auth import subject_of
from agentflow.runtime.background import BackgroundRuns
from agentflow.runtime.json_body import StrictJSONRoute
from agentflow.runtime.responses import JSONResponse, ok
from agentflow.runtime.routes.graph import run_options
from agentflow.runtime.schemas import (
    ERROR_RESPONSES,
    BackgroundRunBody,
    Envelope,
    RunId,
    RunInfo,
    RunList,
    ThreadId,
    run_info,
)

router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)

ThreadIdPath = Annotated[ThreadId, Path(description="The thread's id.")]
RunIdPath = Annotated[RunId, Path(description="The run's id, as its submission answered.")]
WAIT_MAX_S = 300


def background_of(request: Request) -> BackgroundRuns:
    background: BackgroundRuns = request.app.state.background
    return background


@router.post("/v1/graph/runs", response_model=Envelope[RunInfo], status_code=202)
async def submit(body: BackgroundRunBody, request: Request) -> JSONResponse:
    """Queue a run and answer at once (202): any worker of any replica executes it, and
    resumes it from its last checkpoint should its worker stop. Read it with
    ``GET /v1/threads/{thread_id}/runs/{run_id}``, wait for it with ``.../wait``, join its
    stream once it runs, stop it with ``POST /v1/graph/stop``."""
    run = await background_of(request).submit(run_options(body, request), body.webhook)
    return ok(request, run_info(run), status_code=202)


@router.get("/v1/threads/{thread_id}/runs", response_model=Envelope[RunList])
async def list_runs(
    thread_id: ThreadIdPath,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JSONResponse:
    """The caller's background runs on the thread, newest first."""
    runs = await background_of(request).list_runs(thread_id, subject_of(request), limit, offset)
    return ok(request, {"runs": [run_info(run) for run in runs]})


@router.get("/v1/threads/{thread_id}/runs/{run_id}", response_model=Envelope[RunInfo])
async def get_run(thread_id: ThreadIdPath, run_id: RunIdPath, request: Request) -> JSONResponse:
    run = await background_of(request).get(thread_id, run_id, subject_of(request))
    return ok(request, run_info(run))


@router.get("/v1/threads/{thread_id}/runs/{run_id}/wait", response_model=Envelope[RunInfo])
async def wait_for_run(
    thread_id: ThreadIdPath,
    run_id: RunIdPath,
    request: Request,
    timeout: Annotated[  # noqa: ASYNC109 - the query parameter: how long to wait
        float, Query(gt=0, le=WAIT_MAX_S, description="Seconds to wait at most.")
    ] = 60,
) -> JSONResponse:
    """The run once it ended; after ``timeout`` seconds, the run as it is (its status says
    whether it ended)."""
    background = background_of(request)
    run = await background.wait(thread_id, run_id, subject_of(request), timeout)
    return ok(request, run_info(run))
