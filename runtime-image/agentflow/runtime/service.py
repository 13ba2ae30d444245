"""GraphService: the compiled graph as a service, shared by every request of a server process.

It owns the rules that span requests: one run at a time per thread, stopping a run, and the
thread operations. It knows nothing of HTTP; routes translate to and from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agentflow.checkpoint.base import Checkpoint, Checkpointer, ThreadInfo
from agentflow.graph import CompiledGraph, RunResult, StreamChunk
from agentflow.graph.context import Publish
from agentflow.graph.engine import MISSING, Run
from agentflow.graph.errors import InvalidUpdateError
from agentflow.runtime.errors import (
    NoActiveRunError,
    RunStoppedError,
    ThreadBusyError,
    ThreadNotFoundError,
    report,
)
from agentflow.runtime.publisher import IteratorPublisher


@dataclass(slots=True)
class RunOptions:
    """What a request asks of a run, independent of the HTTP shape it came in."""

    input: dict[str, Any]
    thread_id: str
    recursion_limit: int
    resume: Any = MISSING
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Claim:
    """A thread's slot, held by one run (or state change) from its start to its end."""

    holder: str
    run_id: str | None = None
    task: asyncio.Future[RunResult] | None = None
    stop_requested: bool = False


class GraphService:
    def __init__(
        self, graph: CompiledGraph, checkpointer: Checkpointer, *, production: bool = False
    ) -> None:
        self.graph = graph.with_checkpointer(checkpointer)
        self.checkpointer = checkpointer
        self.production = production
        self._claims: dict[str, _Claim] = {}

    # ------------------------------------------------------------------ runs

    async def invoke(self, options: RunOptions, run_id: str) -> RunResult:
        """Run to the end (or to an interrupt) and return the result."""
        claim = self._acquire(options.thread_id, f"run {run_id}", run_id)
        try:
            run = await self._start(options, run_id, publish=None)
            task = claim.task = asyncio.ensure_future(run.execute())
            try:
                await asyncio.wait({task})  # a stop cancels the task, not this request
            finally:
                task.cancel()  # a no-op when done; ends the run if this request is cancelled
            if task.cancelled():
                raise _stopped(options.thread_id, run_id)
            return task.result()
        finally:
            self._release(options.thread_id, claim)

    async def stream(
        self, options: RunOptions, run_id: str, *, cancel_on_disconnect: bool = True
    ) -> AsyncIterator[StreamChunk]:
        """Start a run and return its events, ending with ``end`` (after ``error`` on failure).

        Problems with the request itself (busy thread, bad resume, bad input) raise here,
        before any event, so they can still become 4xx answers.
        """
        claim = self._acquire(options.thread_id, f"run {run_id}", run_id)
        publisher = IteratorPublisher()
        try:
            run = await self._start(options, run_id, publish=publisher)
        except BaseException:
            self._release(options.thread_id, claim)
            raise
        task = claim.task = asyncio.ensure_future(run.execute())

        def finished(_: object) -> None:
            publisher.close()
            self._release(options.thread_id, claim)

        task.add_done_callback(finished)
        return self._follow(options.thread_id, run_id, publisher, task, cancel_on_disconnect)

    async def _follow(
        self,
        thread_id: str,
        run_id: str,
        publisher: IteratorPublisher,
        task: asyncio.Future[RunResult],
        cancel_on_disconnect: bool,
    ) -> AsyncIterator[StreamChunk]:
        try:
            async for chunk in publisher:
                yield chunk
            error = _stopped(thread_id, run_id) if task.cancelled() else task.exception()
            if error is None:
                yield StreamChunk("end", thread_id, run_id, data=_end_data(task.result()))
                return
            info = report(error, production=self.production)
            yield StreamChunk("error", thread_id, run_id, data=info.to_dict())
            yield StreamChunk("end", thread_id, run_id, data={"status": "error"})
        finally:
            if cancel_on_disconnect:
                task.cancel()  # a no-op when done; stops working for a client that left

    def stop(self, thread_id: str) -> str:
        """Cancel the run in progress on a thread; returns its run id."""
        claim = self._claims.get(thread_id)
        if claim is None or claim.run_id is None:
            raise NoActiveRunError(f"no run is in progress on thread '{thread_id}'")
        claim.stop_requested = True
        if claim.task is not None:
            claim.task.cancel()
        return claim.run_id

    async def _start(self, options: RunOptions, run_id: str, publish: Publish | None) -> Run:
        run = await self.graph.start_run(
            options.input,
            thread_id=options.thread_id,
            run_id=run_id,
            resume=options.resume,
            recursion_limit=options.recursion_limit,
            metadata=options.metadata,
            publish=publish,
        )
        if self._claims[options.thread_id].stop_requested:  # stopped while it was preparing
            raise _stopped(options.thread_id, run_id)
        return run

    def _acquire(self, thread_id: str, holder: str, run_id: str | None = None) -> _Claim:
        # No await between the check and the insert: the event loop makes this atomic.
        existing = self._claims.get(thread_id)
        if existing is not None:
            raise ThreadBusyError(
                f"thread '{thread_id}' is busy with {existing.holder}; wait for it to finish "
                "or stop it, then retry"
            )
        claim = self._claims[thread_id] = _Claim(holder, run_id)
        return claim

    def _release(self, thread_id: str, claim: _Claim) -> None:
        if self._claims.get(thread_id) is claim:
            del self._claims[thread_id]

    async def aclose(self) -> None:
        """Cancel the runs still in progress (server shutdown)."""
        tasks = [c.task for c in self._claims.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ threads

    async def get_state(self, thread_id: str) -> Checkpoint:
        checkpoint = await self.checkpointer.get(thread_id)
        if checkpoint is None:
            raise _not_found(thread_id)
        return checkpoint

    async def history(self, thread_id: str, limit: int) -> list[Checkpoint]:
        checkpoints = await self.checkpointer.history(thread_id, limit)
        if not checkpoints:
            raise _not_found(thread_id)
        return checkpoints

    async def list_threads(self, limit: int, offset: int) -> list[ThreadInfo]:
        return await self.checkpointer.list_threads(limit, offset)

    async def update_state(self, thread_id: str, values: dict[str, Any]) -> Checkpoint:
        """Set the given keys to the given values (no reducers) and keep everything else,
        a pending interrupt included, so a human can correct the state before resuming."""
        unknown = sorted(set(values) - set(self.graph.schema.channels))
        if unknown:
            raise InvalidUpdateError(
                f"unknown state key(s) {', '.join(unknown)}; "
                f"the state keys are: {', '.join(self.graph.schema.keys)}"
            )
        values = self.graph.normalize_update("the state update", values)
        claim = self._acquire(thread_id, "a state update")
        try:
            latest = await self.checkpointer.get(thread_id)
            if latest is None:
                checkpoint = Checkpoint(
                    thread_id,
                    "",
                    0,
                    {**self.graph.schema.initial_values(), **values},
                    source="update",
                )
            else:
                checkpoint = Checkpoint(
                    thread_id=thread_id,
                    run_id=latest.run_id,
                    step=latest.step + 1,
                    values={**latest.values, **values},
                    next=latest.next,
                    interrupts=latest.interrupts,
                    resumes=latest.resumes,
                    pending_writes=latest.pending_writes,
                    source="update",
                    parent_id=latest.checkpoint_id,
                )
            await self.checkpointer.put(checkpoint)
            return checkpoint
        finally:
            self._release(thread_id, claim)

    async def delete_thread(self, thread_id: str) -> None:
        claim = self._acquire(thread_id, "a deletion")
        try:
            if not await self.checkpointer.delete_thread(thread_id):
                raise _not_found(thread_id)
        finally:
            self._release(thread_id, claim)


def _not_found(thread_id: str) -> ThreadNotFoundError:
    return ThreadNotFoundError(f"thread '{thread_id}' does not exist")


def _stopped(thread_id: str, run_id: str) -> RunStoppedError:
    return RunStoppedError(f"run {run_id} on thread '{thread_id}' was stopped before it finished")


def _end_data(result: RunResult) -> dict[str, Any]:
    return {
        "status": "interrupted" if result.interrupts else "success",
        "next": result.next,
        "interrupts": [i.to_dict() for i in result.interrupts],
        "steps": result.steps,
    }
