"""Background runs of one process: for the in-memory checkpointer, and for tests.

One process is the only worker, so no claim is ever abandoned: a run is lost with the process,
as its thread is.
"""

from __future__ import annotations

import dataclasses
import time

from agentflow.runstore.base import QueueFullError, RunRecord, RunStore


class InMemoryRunStore(RunStore):
    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}  # by run id, in submission order
        self._open: dict[str, RunRecord] = {}  # those pending or running, in the same order

    async def setup(self) -> None:
        return None

    async def submit(self, run: RunRecord, max_pending: int) -> None:
        if sum(r.status == "pending" for r in self._open.values()) >= max_pending:
            raise QueueFullError(
                f"{max_pending} runs are waiting already (AGENTFLOW_MAX_PENDING_RUNS); retry later"
            )
        self._runs[run.run_id] = self._open[run.run_id] = _copy(run)

    async def claim(self, limit: int, max_attempts: int) -> list[RunRecord]:
        claimed: list[RunRecord] = []
        busy: set[str] = set()  # threads with an earlier run pending or running
        for run in self._open.values():
            if len(claimed) >= limit:
                break
            if run.status == "pending" and run.thread_id not in busy:
                run.status, run.attempts = "running", run.attempts + 1
                run.started_at = run.started_at or time.time()
                claimed.append(_copy(run))
            busy.add(run.thread_id)
        return claimed

    async def finish(self, run: RunRecord) -> bool:
        kept = self._runs.get(run.run_id)
        if kept is None or kept.status != "running":
            return False
        run.ended_at = time.time()
        self._runs[run.run_id] = _copy(run)
        del self._open[run.run_id]
        return True

    async def hand_back(self, run: RunRecord) -> None:
        kept = self._runs.get(run.run_id)
        if kept is not None and kept.status == "running":
            kept.status, kept.attempts = "pending", kept.attempts - 1

    async def get(self, thread_id: str, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return _copy(run) if run is not None and run.thread_id == thread_id else None

    async def list_runs(
        self, thread_id: str, owner: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        wanted = (thread_id, owner)
        runs = [r for r in reversed(self._runs.values()) if (r.thread_id, r.owner) == wanted]
        return [_copy(r) for r in runs[offset : offset + limit]]

    async def delete_runs(self, thread_id: str, owner: str | None) -> int:
        gone = [
            run_id
            for run_id, run in self._runs.items()
            if (run.thread_id, run.owner) == (thread_id, owner)
        ]
        for run_id in gone:
            del self._runs[run_id]
            self._open.pop(run_id, None)
        return len(gone)

    async def claim_deliveries(self, limit: int) -> list[RunRecord]:
        return []  # this process delivers what it finished; no other worker can die

    async def record_delivery(self, run: RunRecord) -> None:
        kept = self._runs.get(run.run_id)
        if kept is not None and run.webhook is not None:
            kept.webhook = dataclasses.replace(run.webhook)

    async def counts(self) -> dict[str, int]:
        statuses = [r.status for r in self._open.values()]
        return {"pending": statuses.count("pending"), "running": statuses.count("running")}

    async def prune(self, retain_s: float) -> int:
        horizon = time.time() - retain_s
        gone = [
            r.run_id
            for r in self._runs.values()
            if r.ended_at is not None
            and r.ended_at < horizon
            and (r.webhook is None or r.webhook.status != "pending")
        ]
        for run_id in gone:
            del self._runs[run_id]
        return len(gone)


def _copy(run: RunRecord) -> RunRecord:
    """The store's records are its own: callers change their copies."""
    webhook = dataclasses.replace(run.webhook) if run.webhook is not None else None
    return dataclasses.replace(run, webhook=webhook)
