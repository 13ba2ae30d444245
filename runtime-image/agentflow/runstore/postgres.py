"""Background runs in the shared Postgres: a durable queue every worker and replica claims from.

* Claims take rows ``FOR UPDATE SKIP LOCKED``: workers claiming at once never wait on each
  other and never get the same run.
* A claim is the worker's ``worker_key``: the key of the liveness lock its process holds
  (agentflow.postgres). A running run whose worker lost that lock (it died: Postgres releases
  a dead session's locks) is claimable again at once, with its attempts counted.
* A run is claimable only when no earlier run of its thread is pending or running, so the runs
  of one thread execute in the order they were submitted.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from agentflow.postgres import LIVE_WORKERS, PgDatabase
from agentflow.runstore.base import (
    Delivery,
    QueueFullError,
    RunRecord,
    RunRequest,
    RunStore,
)

_COLUMNS = """run_id, thread_id, owner, status, request, attempts, created_at, started_at,
    ended_at, result, error, webhook"""
_R_COLUMNS = ", ".join("r." + column.strip() for column in _COLUMNS.split(","))

# Inserts the run unless the graph has $8 pending runs already.
_SUBMIT = """
INSERT INTO agentflow_runs (graph_id, run_id, thread_id, owner, status, request, webhook,
                            webhook_status)
SELECT $1, $2, $3, $4, 'pending', $5::jsonb, $6::jsonb, $7
WHERE (SELECT count(*) FROM agentflow_runs WHERE graph_id = $1 AND status = 'pending') < $8
RETURNING 1
"""

# Ends, with an error, the runs of dead workers that were claimed $2 times already.
_ABANDON = f"""
UPDATE agentflow_runs AS r
SET status = 'error', ended_at = now(), worker_key = NULL,
    error = jsonb_build_object(
        'code', 'run_abandoned',
        'message', format(
            'run %s was abandoned: the worker executing it stopped %s times '
            '(AGENTFLOW_RUN_MAX_ATTEMPTS)', r.run_id, r.attempts))
WHERE r.graph_id = $1 AND r.status = 'running' AND r.attempts >= $2
  AND r.worker_key NOT IN ({LIVE_WORKERS})
"""

_CLAIM = f"""
WITH claimable AS (
    SELECT r.run_id FROM agentflow_runs AS r
    WHERE r.graph_id = $1
      AND (r.status = 'pending'
           OR (r.status = 'running' AND r.worker_key NOT IN ({LIVE_WORKERS})))
      AND NOT EXISTS (
          SELECT FROM agentflow_runs AS e
          WHERE e.graph_id = r.graph_id AND e.thread_id = r.thread_id AND e.seq < r.seq
            AND e.status IN ('pending', 'running'))
    ORDER BY r.seq
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
), claimed AS (
    UPDATE agentflow_runs AS r
    SET status = 'running', worker_key = $2, attempts = r.attempts + 1,
        started_at = coalesce(r.started_at, now())
    FROM claimable
    WHERE r.graph_id = $1 AND r.run_id = claimable.run_id
    RETURNING r.seq, {_R_COLUMNS}
)
SELECT * FROM claimed ORDER BY seq
"""

_FINISH = """
UPDATE agentflow_runs
SET status = $4, ended_at = now(), result = $5::jsonb, error = $6::jsonb
WHERE graph_id = $1 AND run_id = $2 AND worker_key = $3 AND status = 'running'
RETURNING ended_at
"""

_HAND_BACK = """
UPDATE agentflow_runs SET status = 'pending', worker_key = NULL, attempts = attempts - 1
WHERE graph_id = $1 AND run_id = $2 AND worker_key = $3 AND status = 'running'
"""

_CLAIM_DELIVERIES = f"""
WITH undelivered AS (
    SELECT r.run_id FROM agentflow_runs AS r
    WHERE r.graph_id = $1 AND r.webhook_status = 'pending' AND r.ended_at IS NOT NULL
      AND (r.worker_key IS NULL OR r.worker_key NOT IN ({LIVE_WORKERS}))
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE agentflow_runs AS r SET worker_key = $2
FROM undelivered
WHERE r.graph_id = $1 AND r.run_id = undelivered.run_id
RETURNING {_R_COLUMNS}
"""

_PRUNE = """
DELETE FROM agentflow_runs WHERE ctid IN (
    SELECT ctid FROM agentflow_runs
    WHERE graph_id = $1 AND ended_at < now() - make_interval(secs => $2)
      AND webhook_status IS DISTINCT FROM 'pending'
    LIMIT $3)
"""
PRUNE_BATCH = 10_000  # rows one prune deletes at most (a short statement; the next goes on)


class PgRunStore(RunStore):
    def __init__(self, database: PgDatabase, *, graph_id: str) -> None:
        self.database = database
        self.graph_id = graph_id

    async def setup(self) -> None:
        return None  # the schema is the database's (its migrations)

    async def submit(self, run: RunRecord, max_pending: int) -> None:
        webhook = _delivery_json(run.webhook)
        stored = await self.database.run(
            lambda conn: conn.fetchval(
                _SUBMIT,
                self.graph_id,
                run.run_id,
                run.thread_id,
                run.owner,
                _json(asdict(run.request)),
                webhook,
                None if run.webhook is None else "pending",
                max_pending,
            )
        )
        if stored is None:
            raise QueueFullError(
                f"{max_pending} runs are waiting already (AGENTFLOW_MAX_PENDING_RUNS); retry later"
            )

    async def claim(self, limit: int, max_attempts: int) -> list[RunRecord]:
        async def claim_on(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            await conn.execute(_ABANDON, self.graph_id, max_attempts)
            rows: list[asyncpg.Record] = await conn.fetch(
                _CLAIM, self.graph_id, self.database.worker_key, limit
            )
            return rows

        return [_record(row) for row in await self.database.run(claim_on)]

    async def finish(self, run: RunRecord) -> bool:
        ended_at = await self.database.run(
            lambda conn: conn.fetchval(
                _FINISH,
                self.graph_id,
                run.run_id,
                self.database.worker_key,
                run.status,
                _json(run.result),
                _json(run.error),
            )
        )
        if ended_at is None:
            return False
        run.ended_at = ended_at.timestamp()
        return True

    async def hand_back(self, run: RunRecord) -> None:
        await self.database.run(
            lambda conn: conn.execute(
                _HAND_BACK, self.graph_id, run.run_id, self.database.worker_key
            )
        )

    async def get(self, thread_id: str, run_id: str) -> RunRecord | None:
        row = await self.database.run(
            lambda conn: conn.fetchrow(
                f"SELECT {_COLUMNS} FROM agentflow_runs"
                " WHERE graph_id = $1 AND run_id = $2 AND thread_id = $3",
                self.graph_id,
                run_id,
                thread_id,
            )
        )
        return None if row is None else _record(row)

    async def list_runs(
        self, thread_id: str, owner: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        rows = await self.database.run(
            lambda conn: conn.fetch(
                f"SELECT {_COLUMNS} FROM agentflow_runs WHERE graph_id = $1 AND thread_id = $2"
                " AND owner IS NOT DISTINCT FROM $3 ORDER BY seq DESC LIMIT $4 OFFSET $5",
                self.graph_id,
                thread_id,
                owner,
                limit,
                offset,
            )
        )
        return [_record(row) for row in rows]

    async def delete_runs(self, thread_id: str, owner: str | None) -> int:
        result: str = await self.database.run(
            lambda conn: conn.execute(
                "DELETE FROM agentflow_runs WHERE graph_id = $1 AND thread_id = $2"
                " AND owner IS NOT DISTINCT FROM $3",
                self.graph_id,
                thread_id,
                owner,
            )
        )
        return int(result.rsplit(" ", 1)[-1])

    async def claim_deliveries(self, limit: int) -> list[RunRecord]:
        rows = await self.database.run(
            lambda conn: conn.fetch(
                _CLAIM_DELIVERIES, self.graph_id, self.database.worker_key, limit
            )
        )
        return [_record(row) for row in rows]

    async def record_delivery(self, run: RunRecord) -> None:
        webhook = run.webhook
        assert webhook is not None
        await self.database.run(
            lambda conn: conn.execute(
                "UPDATE agentflow_runs SET webhook = $3::jsonb, webhook_status = $4"
                " WHERE graph_id = $1 AND run_id = $2",
                self.graph_id,
                run.run_id,
                _delivery_json(webhook),
                webhook.status,
            )
        )

    async def counts(self) -> dict[str, int]:
        rows = await self.database.run(
            lambda conn: conn.fetch(
                "SELECT status, count(*) AS n FROM agentflow_runs"
                " WHERE graph_id = $1 AND status IN ('pending', 'running') GROUP BY status",
                self.graph_id,
            )
        )
        found = {row["status"]: int(row["n"]) for row in rows}
        return {"pending": found.get("pending", 0), "running": found.get("running", 0)}

    async def prune(self, retain_s: float) -> int:
        result: str = await self.database.run(
            lambda conn: conn.execute(_PRUNE, self.graph_id, retain_s, PRUNE_BATCH)
        )
        return int(result.rsplit(" ", 1)[-1])


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _delivery_json(delivery: Delivery | None) -> str | None:
    return None if delivery is None else _json(asdict(delivery))


def _loaded(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _record(row: asyncpg.Record) -> RunRecord:
    webhook = _loaded(row["webhook"])
    return RunRecord(
        run_id=row["run_id"],
        thread_id=row["thread_id"],
        owner=row["owner"],
        request=RunRequest(**orjson.loads(row["request"])),
        status=row["status"],
        attempts=row["attempts"],
        created_at=row["created_at"].timestamp(),
        started_at=_epoch(row["started_at"]),
        ended_at=_epoch(row["ended_at"]),
        result=_loaded(row["result"]),
        error=_loaded(row["error"]),
        webhook=None if webhook is None else Delivery(**webhook),
    )
