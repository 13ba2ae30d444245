"""PgCheckpointer: threads in Postgres, shared by every worker and replica.

* Every graph's rows carry its ``graph_id``, so many graphs can share one database.
* ``put`` is one statement that appends a checkpoint only if it follows the thread's latest
  step (compare-and-append): two writers can never interleave or lose an update.
* The database (pool, schema migrations, this process's liveness lock) is
  :class:`agentflow.postgres.PgDatabase`, which the thread leases share
  (:class:`agentflow.leases.postgres.PgLeases`).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from agentflow.checkpoint.base import (
    Checkpoint,
    Checkpointer,
    ConcurrentUpdateError,
    JsonSerializer,
    Serializer,
    ThreadInfo,
)
from agentflow.postgres import PgDatabase, redact_dsn

# Appends the checkpoint only if it is the step after the thread's latest (or the thread is
# new), then prunes history beyond the retention and the pending writes the checkpoint now
# holds; returns 1 if stored, 0 if another writer won.
_PUT = """
WITH thread AS (
    INSERT INTO agentflow_threads AS t (graph_id, thread_id, metadata, latest_step)
    VALUES ($1, $2, $3::jsonb, $4)
    ON CONFLICT (graph_id, thread_id) DO UPDATE
        SET latest_step = EXCLUDED.latest_step, updated_at = now()
        WHERE t.latest_step = EXCLUDED.latest_step - 1
    RETURNING 1
), stored AS (
    INSERT INTO agentflow_checkpoints (graph_id, thread_id, step, body)
    SELECT $1, $2, $4, $5::jsonb FROM thread
    RETURNING 1
), pruned AS (
    DELETE FROM agentflow_checkpoints
    WHERE graph_id = $1 AND thread_id = $2 AND step <= $4 - $6 AND EXISTS (SELECT FROM stored)
), written AS (
    DELETE FROM agentflow_pending_writes
    WHERE graph_id = $1 AND thread_id = $2 AND step <= $4 AND EXISTS (SELECT FROM stored)
)
SELECT count(*) FROM stored
"""


class PgCheckpointer(Checkpointer):
    """Checkpoints in Postgres. Its serializer must write JSON: checkpoints are kept as jsonb."""

    def __init__(
        self,
        dsn: str,
        *,
        graph_id: str,
        pool_min: int = 1,
        pool_max: int = 10,
        timeout_s: float = 5.0,
        max_history: int = 100,
        serializer: Serializer | None = None,
    ) -> None:
        self.database = PgDatabase(dsn, pool_min=pool_min, pool_max=pool_max, timeout_s=timeout_s)
        self.graph_id = graph_id
        self.max_history = max_history
        self.serializer = serializer or JsonSerializer()

    def __repr__(self) -> str:
        return f"PgCheckpointer({redact_dsn(self.database.dsn)!r}, graph_id={self.graph_id!r})"

    async def setup(self) -> None:
        await self.database.setup()

    async def close(self) -> None:
        await self.database.close()

    async def ping(self) -> None:
        await self.database.ping()

    # ------------------------------------------------------------------ checkpoints

    async def get(self, thread_id: str) -> Checkpoint | None:
        body = await self.database.run(
            lambda conn: conn.fetchval(
                "SELECT body FROM agentflow_checkpoints WHERE graph_id = $1 AND thread_id = $2"
                " ORDER BY step DESC LIMIT 1",
                self.graph_id,
                thread_id,
            )
        )
        return self.serializer.loads(body) if body is not None else None

    async def put(
        self, checkpoint: Checkpoint, thread_metadata: dict[str, Any] | None = None
    ) -> None:
        body = self.serializer.dumps(checkpoint).decode()
        metadata = orjson.dumps(thread_metadata or {}).decode()
        stored = await self.database.run(
            lambda conn: conn.fetchval(
                _PUT,
                self.graph_id,
                checkpoint.thread_id,
                metadata,
                checkpoint.step,
                body,
                self.max_history,
            )
        )
        if not stored:
            raise ConcurrentUpdateError(
                f"thread '{checkpoint.thread_id}' moved on: another writer stored step "
                f"{checkpoint.step} (or a later one) first"
            )

    async def history(self, thread_id: str, limit: int = 20) -> list[Checkpoint]:
        rows = await self.database.run(
            lambda conn: conn.fetch(
                "SELECT body FROM agentflow_checkpoints WHERE graph_id = $1 AND thread_id = $2"
                " ORDER BY step DESC LIMIT $3",
                self.graph_id,
                thread_id,
                limit,
            )
        )
        return [self.serializer.loads(row["body"]) for row in rows]

    async def put_writes(
        self, thread_id: str, step: int, node: str, update: dict[str, Any]
    ) -> None:
        body = self.serializer.dumps_update(thread_id, update).decode()
        await self.database.run(
            lambda conn: conn.execute(
                "INSERT INTO agentflow_pending_writes (graph_id, thread_id, step, node, body)"
                " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (graph_id, thread_id, step, node)"
                " DO UPDATE SET body = EXCLUDED.body",
                self.graph_id,
                thread_id,
                step,
                node,
                body,
            )
        )

    async def pending_writes(self, thread_id: str, step: int) -> dict[str, dict[str, Any]]:
        rows = await self.database.run(
            lambda conn: conn.fetch(
                "SELECT node, body FROM agentflow_pending_writes"
                " WHERE graph_id = $1 AND thread_id = $2 AND step = $3",
                self.graph_id,
                thread_id,
                step,
            )
        )
        return {row["node"]: self.serializer.loads_update(row["body"]) for row in rows}

    # ------------------------------------------------------------------ threads

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        row = await self.database.run(
            lambda conn: conn.fetchrow(
                "SELECT thread_id, metadata, extract(epoch FROM created_at) AS created_at,"
                " extract(epoch FROM updated_at) AS updated_at FROM agentflow_threads"
                " WHERE graph_id = $1 AND thread_id = $2",
                self.graph_id,
                thread_id,
            )
        )
        return _thread_info(row) if row is not None else None

    async def list_threads(
        self,
        limit: int = 100,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
        search: str | None = None,
    ) -> list[ThreadInfo]:
        rows = await self.database.run(
            lambda conn: conn.fetch(
                "SELECT thread_id, metadata, extract(epoch FROM created_at) AS created_at,"
                " extract(epoch FROM updated_at) AS updated_at FROM agentflow_threads"
                " WHERE graph_id = $1 AND metadata @> $2::jsonb"
                " AND strpos(lower(thread_id), lower($5)) > 0"
                " ORDER BY updated_at DESC LIMIT $3 OFFSET $4",
                self.graph_id,
                orjson.dumps(metadata or {}).decode(),
                limit,
                offset,
                search or "",
            )
        )
        return [_thread_info(row) for row in rows]

    async def delete_thread(self, thread_id: str) -> bool:
        deleted = await self.database.run(
            lambda conn: conn.fetchval(
                "WITH writes AS (DELETE FROM agentflow_pending_writes WHERE graph_id = $1"
                " AND thread_id = $2), gone AS (DELETE FROM agentflow_threads WHERE graph_id = $1"
                " AND thread_id = $2 RETURNING 1) SELECT count(*) FROM gone",
                self.graph_id,
                thread_id,
            )
        )
        return bool(deleted)


def _thread_info(row: asyncpg.Record) -> ThreadInfo:
    return ThreadInfo(
        thread_id=row["thread_id"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        metadata=orjson.loads(row["metadata"]),
    )
