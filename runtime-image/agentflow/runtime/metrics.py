"""Prometheus metrics: what ``GET /metrics`` shows.

One :class:`Metrics` per app (its own registry, no globals). With several Uvicorn workers,
``agentflow api`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder and every worker's
figures are summed at scrape time, so one scrape of the pod sees all of its workers.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from agentflow.checkpoint.base import Checkpoint, Checkpointer, ThreadInfo
from agentflow.leases import Holder, ThreadLease, ThreadLeases

T = TypeVar("T")
M = TypeVar("M", Counter, Histogram)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Labeled(Generic[M]):
    """A labelled metric whose children are looked up once per combination of label values:
    prometheus-client's own ``labels()`` takes a lock and converts the values on every call,
    several times per request. The combinations are bounded (route templates, event types)."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:  # two threads racing here both get prometheus-client's one child
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values live in files; the registry only serves this process.
        self.registry = CollectorRegistry()
        registry = None if self.multiprocess else self.registry
        self.requests = Labeled(
            Counter(
                "agentflow_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
                ["method", "route", "status"],
                registry=registry,
            )
        )
        self.request_seconds = Labeled(
            Histogram(
                "agentflow_http_request_duration_seconds",
                "Time from request to the end of the response (whole stream for streams).",
                ["method", "route"],
                registry=registry,
            )
        )
        self.runs_in_flight = Gauge(
            "agentflow_runs_in_flight",
            "Graph runs executing now (the autoscaling signal: agents mostly wait on models).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.run_seconds = Labeled(
            Histogram(
                "agentflow_run_duration_seconds",
                "Duration of graph runs, by how they ended.",
                ["status"],
                registry=registry,
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            )
        )
        self.stream_events = Labeled(
            Counter(
                "agentflow_stream_events_total",
                "Stream events sent to clients, by event type.",
                ["event"],
                registry=registry,
            )
        )
        self.runs_queued = Gauge(
            "agentflow_background_runs",
            "Background runs of the graph in the shared queue, by status (pending, running): "
            "every worker reports the same figures, so aggregate with max, not sum.",
            ["status"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.run_claim_seconds = Histogram(
            "agentflow_background_run_claim_seconds",
            "Time from a background run's submission to its first claim by a worker.",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.runs_resumed = Counter(
            "agentflow_background_runs_resumed_total",
            "Background runs claimed again after their worker stopped (resumed from their last "
            "checkpoint).",
            registry=registry,
        )
        self.webhook_deliveries = Labeled(
            Counter(
                "agentflow_webhook_deliveries_total",
                "Webhook delivery attempts, by outcome (delivered, retried, failed).",
                ["outcome"],
                registry=registry,
            )
        )
        self.pool_queue_depth = Gauge(
            "agentflow_thread_pool_queue_depth",
            "Sync node calls waiting for a free thread of the pool.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.checkpointer_seconds = Labeled(
            Histogram(
                "agentflow_checkpointer_duration_seconds",
                "Latency of checkpointer operations.",
                ["operation"],
                registry=registry,
                buckets=_FAST_BUCKETS,
            )
        )

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        _forget_dead_workers(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of worker processes that died (Uvicorn restarts a killed worker
    under a new pid, and nothing else tells prometheus-client): a killed worker's runs in
    flight would otherwise count forever."""
    pids = {int(m[1]) for name in os.listdir(directory) if (m := _LIVE_GAUGE_FILE.fullmatch(name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's: not ours to judge
            continue


class MeteredCheckpointer(Checkpointer):
    """Times every operation of another checkpointer."""

    def __init__(self, inner: Checkpointer, metrics: Metrics) -> None:
        self.inner = inner
        self._seconds = metrics.checkpointer_seconds

    @property
    def kind(self) -> str:
        return self.inner.kind

    async def _timed(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            return await call()
        finally:
            self._seconds.labels(operation).observe(time.perf_counter() - started)

    async def setup(self) -> None:
        await self.inner.setup()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping)

    async def get(self, thread_id: str) -> Checkpoint | None:
        return await self._timed("get", lambda: self.inner.get(thread_id))

    async def put(
        self, checkpoint: Checkpoint, thread_metadata: dict[str, Any] | None = None
    ) -> None:
        await self._timed("put", lambda: self.inner.put(checkpoint, thread_metadata))

    async def history(self, thread_id: str, limit: int = 20) -> list[Checkpoint]:
        return await self._timed("history", lambda: self.inner.history(thread_id, limit))

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return await self._timed("get_thread", lambda: self.inner.get_thread(thread_id))

    async def list_threads(
        self,
        limit: int = 100,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        search: str | None = None,
    ) -> list[ThreadInfo]:
        return await self._timed(
            "list_threads", lambda: self.inner.list_threads(limit, offset, metadata, search)
        )

    async def delete_thread(self, thread_id: str) -> bool:
        return await self._timed("delete_thread", lambda: self.inner.delete_thread(thread_id))

    async def put_writes(
        self, thread_id: str, step: int, node: str, update: dict[str, Any]
    ) -> None:
        await self._timed(
            "put_writes", lambda: self.inner.put_writes(thread_id, step, node, update)
        )

    async def pending_writes(self, thread_id: str, step: int) -> dict[str, dict[str, Any]]:
        return await self._timed(
            "pending_writes", lambda: self.inner.pending_writes(thread_id, step)
        )


class MeteredLeases(ThreadLeases):
    """Times taking and reading thread leases (in the checkpointer's histogram: the same
    database answers them)."""

    def __init__(self, inner: ThreadLeases, metrics: Metrics) -> None:
        self.inner = inner
        self._seconds = metrics.checkpointer_seconds

    async def acquire(self, thread_id: str, holder: Holder) -> ThreadLease:
        started = time.perf_counter()
        try:
            return await self.inner.acquire(thread_id, holder)
        finally:
            self._seconds.labels("lock_thread").observe(time.perf_counter() - started)

    async def holder(self, thread_id: str) -> Holder | None:
        started = time.perf_counter()
        try:
            return await self.inner.holder(thread_id)
        finally:
            self._seconds.labels("thread_holder").observe(time.perf_counter() - started)


class MeteredThreadPool(ThreadPoolExecutor):
    """The pool for sync nodes, counting the calls that wait for a free thread, and those
    running (a thread cannot be stopped: shutdown must know whether some still run)."""

    def __init__(self, max_workers: int, queue_depth: Gauge) -> None:
        super().__init__(max_workers, thread_name_prefix="agentflow-node")
        self._queue_depth = queue_depth
        self._running = 0
        self._counting = threading.Lock()

    @property
    def busy(self) -> int:
        """Calls running now."""
        return self._running

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self._queue_depth.inc()

        def started() -> T:
            self._queue_depth.dec()
            with self._counting:
                self._running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._counting:
                    self._running -= 1

        return super().submit(started)
