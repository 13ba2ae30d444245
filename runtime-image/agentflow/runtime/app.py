"""The FastAPI application: built once per process around one compiled graph."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from agentflow import __version__
from agentflow.errors import AgentflowError
from agentflow.runtime.auth import Authenticator, AuthMiddleware, StreamTokens
from agentflow.runtime.backends import (
    build_broker,
    build_checkpointer,
    build_leases,
    build_run_store,
    graph_id_of,
)
from agentflow.runtime.background import BackgroundRuns, QueueSettings
from agentflow.runtime.collector import tune_for_serving
from agentflow.runtime.errors import ErrorInfo, report
from agentflow.runtime.loader import build_graph, find_graph_ref, import_target
from agentflow.runtime.metrics import (
    MeteredCheckpointer,
    MeteredLeases,
    MeteredThreadPool,
    Metrics,
)
from agentflow.runtime.middleware import (
    ExchangeMiddleware,
    JSONRefusalCORSMiddleware,
    RequestSizeLimitMiddleware,
)
from agentflow.runtime.responses import JSONResponse, error_response
from agentflow.runtime.routes import graph, health, runs, threads
from agentflow.runtime.runs import Runs
from agentflow.runtime.settings import Settings, load_settings
from agentflow.runtime.shutdown import exit_without_waiting, on_termination
from agentflow.runtime.threads import Threads
from agentflow.runtime.webhooks import Deliverer

logger = logging.getLogger("agentflow.runtime")


def create_app(settings: Settings | None = None, *, owns_process: bool = False) -> FastAPI:
    """Build the app. The graph module is imported now, so a bad ``AGENTFLOW_GRAPH`` fails
    here; a graph factory is called in the lifespan, where it may await. ``owns_process``
    (the server of ``agentflow api``): at shutdown, the process may exit without waiting for
    sync nodes whose runs were stopped."""
    settings = settings or load_settings()
    ref = find_graph_ref(settings)
    target = import_target(ref)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.is_production:
            for warning in settings.unsafe_defaults():
                logger.warning("unsafe for production: %s", warning)
        # Sync nodes run on the loop's default executor: make it ours, bounded and metered.
        pool = MeteredThreadPool(settings.thread_pool_size, metrics.pool_queue_depth)
        asyncio.get_running_loop().set_default_executor(pool)
        compiled = await build_graph(ref, target)
        graph_id = graph_id_of(settings, ref)
        checkpointer = compiled.checkpointer or build_checkpointer(settings, graph_id)
        broker = build_broker(settings, graph_id, checkpointer)
        await checkpointer.setup()
        store = MeteredCheckpointer(checkpointer, metrics)
        graph = compiled.with_checkpointer(store)
        run_store = build_run_store(checkpointer)
        threads = Threads(
            graph, store, MeteredLeases(build_leases(settings, checkpointer), metrics), run_store
        )
        runs = Runs(
            graph,
            threads,
            broker,
            production=settings.is_production,
            enqueue_timeout_s=settings.enqueue_timeout_s,
            stream_buffer=settings.stream_max_events,
            metrics=metrics,
        )
        await runs.start()
        background = BackgroundRuns(
            runs,
            run_store,
            _queue_settings(settings),
            deliverer=_deliverer(settings, metrics),
            metrics=metrics,
            production=settings.is_production,
        )
        await background.start()
        app.state.runs, app.state.threads, app.state.background = runs, threads, background
        app.state.store, app.state.broker = store, broker
        tune_for_serving()
        draining: set[asyncio.Task[None]] = set()

        def begin_shutdown() -> None:
            if not draining:
                draining.add(asyncio.ensure_future(background.drain(settings.shutdown_grace_s)))

        restore_signals = on_termination(begin_shutdown)
        logger.info(
            "serving graph %s (id %s) with %s and %s",
            ref,
            graph_id,
            type(checkpointer).__name__,
            type(broker).__name__,
        )
        try:
            yield
        finally:
            restore_signals()
            await background.aclose()
            await runs.aclose()
            await checkpointer.close()
            pool.shutdown(wait=False, cancel_futures=True)
            if owns_process and pool.busy:
                exit_without_waiting(f"{pool.busy} sync node(s) of stopped runs still running")

    docs = settings.serve_docs
    app = FastAPI(
        title="agentflow runtime",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    # Added innermost first: a request meets the exchange (id, metrics, headers), CORS, the
    # size limits, then authentication of /v1, then the routes.
    app.state.stream_tokens = StreamTokens(settings) if settings.auth_enabled else None
    if settings.auth_enabled:
        app.add_middleware(
            AuthMiddleware,
            authenticator=Authenticator(settings),
            prefix="/v1",
            stream_tokens=app.state.stream_tokens,
        )
    app.add_middleware(
        RequestSizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.add_middleware(
        JSONRefusalCORSMiddleware,
        allow_origins=settings.origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID"],
        expose_headers=["X-Request-ID", "WWW-Authenticate"],
        max_age=600,
    )
    app.add_middleware(ExchangeMiddleware, metrics=metrics, production=settings.is_production)
    _install_error_handlers(app, production=settings.is_production)
    # Routes are matched in this order: the busiest first.
    app.include_router(graph.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(health.router)
    return app


def _queue_settings(settings: Settings) -> QueueSettings:
    return QueueSettings(
        max_running=settings.max_runs_per_worker,
        max_pending=settings.max_pending_runs,
        poll_s=settings.run_poll_s,
        max_attempts=settings.run_max_attempts,
        retain_s=settings.run_retain_s,
        webhook_prefixes=tuple(settings.webhook_allowed_urls),
    )


def _deliverer(settings: Settings, metrics: Metrics) -> Deliverer | None:
    if settings.webhook_secret is None:
        return None  # no webhook can be accepted without it (Settings)
    return Deliverer(
        settings.webhook_secret.get_secret_value().encode(),
        timeout_s=settings.webhook_timeout_s,
        max_attempts=settings.webhook_max_attempts,
        max_in_flight=settings.webhook_max_in_flight,
        metrics=metrics,
    )


def create_app_from_env() -> FastAPI:
    """The factory each Uvicorn worker process calls (``agentflow api --workers N``)."""
    return create_app(owns_process=True)


_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _install_error_handlers(app: FastAPI, *, production: bool) -> None:
    async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return error_response(request, _validation_info(error))

    async def on_http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = _STATUS_CODES.get(error.status_code, "http_error")
        return error_response(
            request, ErrorInfo(error.status_code, code, str(error.detail)), error.headers
        )

    async def on_error(request: Request, error: Exception) -> JSONResponse:
        headers = getattr(error, "headers", None)  # AuthError: WWW-Authenticate
        return error_response(request, report(error, production=production), headers)

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(AgentflowError, on_error)
    # Anything else is a bug: ExchangeMiddleware answers it as a bare 500 and logs its
    # traceback, once (never sent).


def _validation_info(error: RequestValidationError) -> ErrorInfo:
    problems: list[dict[str, Any]] = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            reason = item.get("ctx", {}).get("error", item["msg"])
            position = item["loc"][-1] if isinstance(item["loc"][-1], int) else "?"
            message = f"the request body is not valid JSON: {reason} at character {position}"
            return ErrorInfo(400, "invalid_json", message)
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        field = ".".join(location) or "body"
        message = str(item.get("msg", "")).removeprefix("Value error, ")
        # agentflow's shape (loc, msg, type), with the field as one dotted name beside.
        problems.append(
            {
                "loc": list(item.get("loc", ())),
                "msg": message,
                "type": item.get("type", ""),
                "field": field,
            }
        )
    summary = "; ".join(f"{p['field']}: {p['msg']}" for p in problems)
    return ErrorInfo(422, "invalid_request", summary or "the request is invalid", problems)
