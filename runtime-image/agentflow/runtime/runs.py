"""Runs: launching the graph on a thread, relaying its events, stopping it wherever it runs,
and draining at shutdown. Shared by every request of a server process.

It owns the rules that span requests and workers: one run at a time per thread (the thread's
lease, so it holds across processes), every run's events published to the broker (so any
worker can join them), and stopping a run on whichever worker executes it. It knows nothing of
HTTP; routes translate to and from it. Thread operations are :class:`Threads`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agentflow.graph import CompiledGraph, RunResult, StreamChunk
from agentflow.graph.context import Publish
from agentflow.graph.engine import MISSING
from agentflow.graph.publisher import IteratorPublisher
from agentflow.leases import Holder, ThreadLease, ThreadLeases, ThreadLockedError
from agentflow.runtime.broker import BrokerUnavailableError, RunBroker, RunLog
from agentflow.runtime.errors import RunStoppedError, ShuttingDownError, describe
from agentflow.runtime.logs import run_id_var, thread_id_var
from agentflow.runtime.metrics import Metrics
from agentflow.runtime.threads import Threads, ownership

logger = logging.getLogger("agentflow.runtime")

STOP_CONFIRM_TIMEOUT_S = 5.0
SHUT_DOWN = "the server shut down"  # the stop reason of runs a shutdown stops
# A stop may arrive while its run is still starting (it holds the thread, but is not yet
# registered here): such requests are remembered this long and honoured at registration.
EARLY_STOP_MEMORY_S = 30.0


@dataclass(slots=True)
class RunOptions:
    """What a request asks of a run, independent of the HTTP shape it came in."""

    input: dict[str, Any]
    thread_id: str
    recursion_limit: int
    resume: Any = MISSING
    metadata: dict[str, Any] = field(default_factory=dict)
    enqueue: bool = False  # wait for a busy thread instead of answering 409
    owner: str | None = None  # the caller's subject when auth is on
    continue_run: bool = False  # a run claimed again: on from its own latest checkpoint


@dataclass(slots=True)
class _LocalRun:
    """A run executing in this process."""

    thread_id: str
    run_id: str
    owner: str | None
    task: asyncio.Future[RunResult]
    stop_reason: str | None = None
    cleanup: asyncio.Future[None] | None = None  # set when the run ended: log flush, lease

    async def settled(self) -> None:
        """Wait until the run ended and its thread is free again."""
        await asyncio.wait({self.task})
        if self.cleanup is not None:
            await asyncio.shield(self.cleanup)

    def stop(self, reason: str) -> None:
        if not self.task.done():
            self.stop_reason = self.stop_reason or reason
            self.task.cancel()

    def stopped_error(self) -> RunStoppedError:
        reason = self.stop_reason or "it was cancelled"
        return RunStoppedError(
            f"run {self.run_id} on thread '{self.thread_id}' was stopped before it finished: "
            f"{reason}",
            by_shutdown=self.stop_reason == SHUT_DOWN,
        )


class Runs:
    def __init__(
        self,
        graph: CompiledGraph,
        threads: Threads,
        broker: RunBroker,
        *,
        production: bool = False,
        enqueue_timeout_s: float = 300.0,
        stream_buffer: int = 10_000,
        metrics: Metrics | None = None,
    ) -> None:
        self.graph = graph
        self.threads = threads
        self.leases: ThreadLeases = threads.leases
        self.broker = broker
        self.production = production
        self.enqueue_timeout_s = enqueue_timeout_s
        self.stream_buffer = stream_buffer  # chunks a stream's slow client may fall behind
        self.metrics = metrics
        self.shutting_down = False
        self._running: dict[str, _LocalRun] = {}
        self._early_stops: dict[str, float] = {}  # run id -> when its stop arrived

    async def start(self) -> None:
        await self.broker.start(self._on_stop_request)

    async def drain(self, grace_s: float) -> None:
        """Shutting down: refuse new runs, let those in progress go on for up to ``grace_s``,
        then stop the rest, so each stream still ends with an ``error`` and an ``end`` event."""
        self.shutting_down = True
        tasks = {run.task for run in self._running.values()}
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        runs = list(self._running.values())
        for run in runs:
            run.stop(SHUT_DOWN)
        await asyncio.gather(*(run.settled() for run in runs), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the runs still in progress and the broker (the end of the lifespan)."""
        await self.drain(0)
        await self.broker.close()

    # ------------------------------------------------------------------ runs

    async def invoke(self, options: RunOptions, run_id: str) -> RunResult:
        """Run to the end (or to an interrupt) and return the result."""
        run = await self._launch(options, run_id, local=None)
        try:
            await run.settled()  # a stop cancels the run's task, not this request
        finally:
            run.stop("the request was cancelled")  # a no-op when the run is done
        if run.task.cancelled():
            raise run.stopped_error()
        return run.task.result()

    async def stream(
        self, options: RunOptions, run_id: str, *, cancel_on_disconnect: bool = True
    ) -> AsyncIterator[list[StreamChunk]]:
        """Start a run and return its events (in batches of those ready together), ending with
        ``end`` (after ``error`` on failure).

        Problems with the request itself (busy thread, bad resume, bad input) raise here,
        before any event, so they can still become 4xx answers.
        """
        local = IteratorPublisher(max_pending=self.stream_buffer)
        run = await self._launch(options, run_id, local)
        return self._relay(run, local, cancel_on_disconnect)

    async def _relay(
        self, run: _LocalRun, local: IteratorPublisher, cancel_on_disconnect: bool
    ) -> AsyncIterator[list[StreamChunk]]:
        finished = False
        try:
            async for batch in local.batches():
                yield batch
            finished = True
        finally:
            if not finished and cancel_on_disconnect:
                run.stop("the client disconnected")

    async def join(
        self, thread_id: str, run_id: str, after: int, owner: str | None = None
    ) -> AsyncIterator[list[StreamChunk]]:
        """The events of a run executing anywhere: those after index ``after``, then live."""
        return await self.broker.follow(thread_id, run_id, after, owner)

    async def _launch(
        self, options: RunOptions, run_id: str, local: IteratorPublisher | None
    ) -> _LocalRun:
        if self.shutting_down:
            raise ShuttingDownError("the server is shutting down: retry on another replica")
        thread_id_var.set(options.thread_id)
        run_id_var.set(run_id)
        lease = await self._hold(options, Holder("run", run_id))
        try:
            # Checked under the lease: nobody can create the thread between check and run.
            await self.threads.check_owner(options.thread_id, options.owner)
            log = await self.broker.open_run(options.thread_id, run_id, options.owner)
            publish: Publish = log.publish if local is None else _tee(local, log.publish)
            try:
                prepared = await self.graph.start_run(
                    options.input,
                    thread_id=options.thread_id,
                    run_id=run_id,
                    resume=options.resume,
                    recursion_limit=options.recursion_limit,
                    metadata=options.metadata,
                    thread_metadata=ownership(options.owner),
                    publish=publish,
                    continue_run=options.continue_run,
                )
            except Exception as error:  # the request was refused: say so to joiners, too
                self._publish_failure(log.publish, options.thread_id, run_id, error)
                await log.close()
                raise
        except BaseException:
            await lease.release()
            raise
        run = _LocalRun(
            options.thread_id, run_id, options.owner, asyncio.ensure_future(prepared.execute())
        )
        if self.metrics is not None:
            self.metrics.runs_in_flight.inc()
        started = time.perf_counter()
        # The outcome is handled in a done-callback, not in the run's own coroutine: a run
        # stopped before its task first runs never enters its coroutine, so a `finally` there
        # would never release the lease.
        run.task.add_done_callback(
            lambda task: self._finished(run, publish, log, lease, local, started)
        )
        self._running[options.thread_id] = run
        if self._early_stops.pop(run_id, None) is not None:
            run.stop("stopped by a stop request")
        return run

    def _finished(
        self,
        run: _LocalRun,
        publish: Publish,
        log: RunLog,
        lease: ThreadLease,
        local: IteratorPublisher | None,
        started: float,
    ) -> None:
        """Publish how the run ended, then flush its log and release the thread; the stream's
        client (and an invoke's response) hears the end only once the thread is free again."""
        if run.task.cancelled():
            status = "stopped"
            self._publish_failure(publish, run.thread_id, run.run_id, run.stopped_error())
        elif (error := run.task.exception()) is not None:
            status = "error"
            self._publish_failure(publish, run.thread_id, run.run_id, error)
            if local is not None:  # a stream's failure reaches no handler: log it here
                _log_failure(run.thread_id, run.run_id, error)
        else:
            result = run.task.result()
            status = result.status
            publish(StreamChunk("end", run.thread_id, run.run_id, data=_end_data(result)))
        if self.metrics is not None:
            self.metrics.runs_in_flight.dec()
            self.metrics.run_seconds.labels(status).observe(time.perf_counter() - started)
        if self._running.get(run.thread_id) is run:
            del self._running[run.thread_id]
        run.cleanup = asyncio.ensure_future(_finish(log, lease, local))

    def _publish_failure(
        self, publish: Publish, thread_id: str, run_id: str, error: BaseException
    ) -> None:
        info = describe(error, production=self.production)
        publish(StreamChunk("error", thread_id, run_id, data=info.to_dict()))
        publish(StreamChunk("end", thread_id, run_id, data={"status": "error"}))

    async def stop(self, thread_id: str, owner: str | None = None) -> str | None:
        """Stop the run in progress on a thread, on this worker or another; returns its id, or
        None when no run of ``owner``'s is in progress there (another subject's run is not
        there either, as far as the caller can tell), or it ended by itself before the stop
        landed. The worker running it checks that the run belongs to ``owner``."""
        local = self._running.get(thread_id)
        if local is not None:
            if local.owner != owner:
                return None
            local.stop("stopped by a stop request")
            await asyncio.wait(
                {asyncio.ensure_future(local.settled())}, timeout=STOP_CONFIRM_TIMEOUT_S
            )
            if local.task.done() and not local.task.cancelled():
                return None  # it ended by itself (as its stream says) before the stop landed
            return local.run_id
        holder = await self.leases.holder(thread_id)
        if holder is None or holder.kind != "run" or not await self.threads.owns(thread_id, owner):
            return None
        await self.broker.request_stop(thread_id, holder.id, owner)
        deadline = time.monotonic() + STOP_CONFIRM_TIMEOUT_S
        while await self.leases.holder(thread_id) == holder:
            if time.monotonic() > deadline:
                if not self.broker.crosses_processes:
                    raise BrokerUnavailableError(
                        f"run {holder.id} executes on another worker; stopping it there needs "
                        "REDIS_URL"
                    )
                break
            await asyncio.sleep(0.05)
        return holder.id

    def _on_stop_request(self, thread_id: str, run_id: str, owner: str | None) -> None:
        run = self._running.get(thread_id)
        if run is not None and run.run_id == run_id:
            if run.owner == owner:
                run.stop("stopped by a stop request")
            return
        now = time.monotonic()
        for known, when in list(self._early_stops.items()):
            if now - when > EARLY_STOP_MEMORY_S:
                del self._early_stops[known]
        self._early_stops[run_id] = now

    async def _hold(self, options: RunOptions, holder: Holder) -> ThreadLease:
        """Take the thread; with ``enqueue``, wait (polling) until it is free or time is up."""
        deadline = time.monotonic() + self.enqueue_timeout_s
        delay = 0.01
        while True:
            try:
                return await self.threads.hold(options.thread_id, holder, options.owner)
            except ThreadLockedError:
                if not options.enqueue or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)


def _log_failure(thread_id: str, run_id: str, error: BaseException) -> None:
    """A failed run, logged once: with its traceback when it is a 5xx (a graph or a backing
    service failed). An invoke's failure is raised to its request and logged there."""
    if describe(error, production=False).status >= 500:
        logger.error("run %s on thread %s failed: %s", run_id, thread_id, error, exc_info=error)


async def _finish(log: RunLog, lease: ThreadLease, local: IteratorPublisher | None) -> None:
    try:
        await log.close()
        await lease.release()
    finally:
        if local is not None:
            local.close()


def _tee(first: Publish, second: Publish) -> Publish:
    def both(chunk: StreamChunk) -> None:
        first(chunk)
        second(chunk)

    return both


def _end_data(result: RunResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "next": result.next,
        "interrupts": [i.to_dict() for i in result.interrupts],
        "steps": result.steps,
    }
