"""Background runs: submitted at once, kept in the run store, executed by whichever worker has
room, resumed elsewhere when their worker dies, their results sent to their webhooks.

A background run executes as an invoke does (:meth:`Runs.invoke`: under the thread's lease,
its events in the broker), so joining its stream and stopping it work as for any run. What
this module adds is the queue's life cycle:

* each worker claims runs while it has room (``AGENTFLOW_MAX_RUNS_PER_WORKER``): at once when a
  run is submitted or one ends here, and every ``AGENTFLOW_RUN_POLL_S`` (runs submitted to other
  replicas, runs of dead workers);
* a run claimed again is continued from the latest checkpoint it wrote (``continue_run``): the
  steps it had finished are not run again;
* a worker shutting down hands back the runs it could not finish within its grace period, and
  a run whose thread is busy with a foreground run is handed back to wait for it;
* the outcome is kept only by the worker that still holds the claim (exactly one outcome per
  run); the webhook is delivered after it (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from agentflow.checkpoint import CheckpointerError
from agentflow.graph import MISSING, RunResult
from agentflow.ids import secret_id
from agentflow.leases import ThreadLockedError
from agentflow.runstore import Delivery, RunRecord, RunRequest, RunStore
from agentflow.runtime.errors import (
    RunNotFoundError,
    RunStoppedError,
    ShuttingDownError,
    describe,
)
from agentflow.runtime.metrics import Metrics
from agentflow.runtime.runs import RunOptions, Runs
from agentflow.runtime.schemas import run_info
from agentflow.runtime.webhooks import Deliverer, allowed_url

logger = logging.getLogger("agentflow.runtime")

PRUNE_EVERY_S = 60.0
RECORD_RETRY_MAX_S = 5.0  # between attempts to keep an outcome while the store is down
WAIT_POLL_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    max_running: int  # runs this worker executes at once
    max_pending: int  # runs of the graph that may wait
    poll_s: float
    max_attempts: int
    retain_s: float
    webhook_prefixes: tuple[str, ...]


class BackgroundRuns:
    def __init__(
        self,
        runs: Runs,
        store: RunStore,
        settings: QueueSettings,
        *,
        deliverer: Deliverer | None,
        metrics: Metrics,
        production: bool = False,
    ) -> None:
        self.runs = runs
        self.store = store
        self.settings = settings
        self.deliverer = deliverer
        self.metrics = metrics
        self.production = production
        self.stopping = False
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._executing: set[asyncio.Task[None]] = set()
        self._delivering: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.store.setup()
        self._loop = asyncio.create_task(self._work())

    async def drain(self, grace_s: float) -> None:
        """Shutting down: claim nothing more, let the runs here go on for up to ``grace_s``
        (with every other run), then hand back those still running."""
        self.stopping = True
        await self.runs.drain(grace_s)
        await asyncio.gather(*self._executing, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain(0)
        tasks = [t for t in (self._loop, *self._delivering) if t is not None]
        for task in tasks:  # undelivered webhooks stay pending: another worker delivers them
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.deliverer is not None:
            await self.deliverer.aclose()

    # ------------------------------------------------------------------ the API's verbs

    async def submit(self, options: RunOptions, webhook: str | None) -> RunRecord:
        """Keep a new pending run (after the checks an invoke makes before it starts)."""
        if self.runs.shutting_down:
            raise ShuttingDownError("the server is shutting down: retry on another replica")
        if webhook is not None:
            allowed_url(webhook, list(self.settings.webhook_prefixes))
        await self.runs.threads.check_owner(options.thread_id, options.owner)
        run = RunRecord(
            run_id=secret_id(),
            thread_id=options.thread_id,
            owner=options.owner,
            request=RunRequest(
                input=options.input,
                recursion_limit=options.recursion_limit,
                metadata=options.metadata,
                has_resume=options.resume is not MISSING,
                resume=None if options.resume is MISSING else options.resume,
            ),
            webhook=None if webhook is None else Delivery(webhook),
        )
        await self.store.submit(run, self.settings.max_pending)
        self._wake.set()
        return run

    async def get(self, thread_id: str, run_id: str, owner: str | None) -> RunRecord:
        """The run, for its owner only: anyone else's is not found, as an absent one."""
        run = await self.store.get(thread_id, run_id)
        if run is None or run.owner != owner:
            raise RunNotFoundError(f"thread '{thread_id}' has no background run '{run_id}'")
        return run

    async def list_runs(
        self, thread_id: str, owner: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        return await self.store.list_runs(thread_id, owner, limit, offset)

    async def wait(
        self, thread_id: str, run_id: str, owner: str | None, timeout_s: float
    ) -> RunRecord:
        """The run once it ended, or as it is after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            run = await self.get(thread_id, run_id, owner)
            left = deadline - time.monotonic()
            if run.ended or left <= 0:
                return run
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, WAIT_POLL_MAX_S)

    # ------------------------------------------------------------------ the worker

    async def _work(self) -> None:
        pruned_at = 0.0
        while True:
            self._wake.clear()
            try:
                await self._claim()
                counts = await self.store.counts()
                for status, count in counts.items():
                    self.metrics.runs_queued.labels(status).set(count)
                if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    await self.store.prune(self.settings.retain_s)
            except CheckpointerError as error:
                logger.warning("background runs: %s", error)
            except Exception:  # a bug: logged, and this worker keeps claiming
                logger.exception("background runs: claiming failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)

    async def _claim(self) -> None:
        room = self.settings.max_running - len(self._executing)
        if room > 0 and not self.stopping:
            for run in await self.store.claim(room, self.settings.max_attempts):
                if run.attempts == 1:
                    self.metrics.run_claim_seconds.observe(max(time.time() - run.created_at, 0))
                else:
                    self.metrics.runs_resumed.inc()
                    logger.info("resuming run %s (attempt %d)", run.run_id, run.attempts)
                _track(self._executing, self._execute(run))
        room = (self.deliverer.max_in_flight if self.deliverer else 0) - len(self._delivering)
        if self.deliverer is not None and room > 0:
            for run in await self.store.claim_deliveries(room):
                _track(self._delivering, self._deliver(run))

    async def _execute(self, run: RunRecord) -> None:
        request = run.request
        options = RunOptions(
            input=request.input,
            thread_id=run.thread_id,
            recursion_limit=request.recursion_limit,
            resume=request.resume if request.has_resume else MISSING,
            metadata=request.metadata,
            owner=run.owner,
            continue_run=True,
        )
        try:
            result = await self.runs.invoke(options, run.run_id)
        except ThreadLockedError:  # a foreground run has the thread: this one waits for it
            await self._hand_back(run)
            return
        except (RunStoppedError, ShuttingDownError) as error:
            if isinstance(error, ShuttingDownError) or error.by_shutdown:
                await self._hand_back(run)  # not stopped by anyone: it goes on elsewhere
                return
            self._failed(run, error)
        except Exception as error:  # noqa: BLE001 - the run's own failure: its outcome
            self._failed(run, error)
        else:
            run.status, run.result = result.status, _result_data(result)  # type: ignore[assignment]
        await self._keep_outcome(run)
        self._wake.set()  # room for another run, and the thread's next run may go

    def _failed(self, run: RunRecord, error: BaseException) -> None:
        info = describe(error, production=self.production)
        run.status = "stopped" if isinstance(error, RunStoppedError) else "error"
        run.error = {"code": info.code, "message": info.message}

    async def _keep_outcome(self, run: RunRecord) -> None:
        """Keep how the run ended, retrying while the store is down (the claim stays this
        worker's meanwhile; should it die, the next worker finds the run's end in its
        checkpoint and keeps it without running anything again)."""
        delay = 0.1
        while True:
            try:
                kept = await self.store.finish(run)
                break
            except CheckpointerError as error:
                logger.warning("keeping the outcome of run %s: %s (retrying)", run.run_id, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_MAX_S)
        if not kept:
            logger.warning("run %s was taken over by another worker: outcome dropped", run.run_id)
        elif run.webhook is not None and self.deliverer is not None:
            _track(self._delivering, self._deliver(run))

    async def _hand_back(self, run: RunRecord) -> None:
        try:
            await self.store.hand_back(run)
        except CheckpointerError as error:  # the claim lapses with this process at worst
            logger.warning("handing back run %s: %s", run.run_id, error)

    async def _deliver(self, run: RunRecord) -> None:
        assert run.webhook is not None
        assert self.deliverer is not None
        body = orjson.dumps(run_info(run))
        await self.deliverer.deliver(run.webhook, run.run_id, body)
        try:
            await self.store.record_delivery(run)
        except CheckpointerError as error:  # stays pending: delivered again (at least once)
            logger.warning("keeping the webhook delivery of run %s: %s", run.run_id, error)


def _track(tasks: set[asyncio.Task[None]], work: Any) -> None:
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _result_data(result: RunResult) -> dict[str, Any]:
    return {
        "values": result.values,
        "messages": result.new_messages,
        "interrupts": [i.to_dict() for i in result.interrupts],
        "next": result.next,
        "steps": result.steps,
    }
