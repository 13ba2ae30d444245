"""PgCheckpointer: threads in Postgres, shared by every worker and replica.

* Every graph's rows carry its ``graph_id``, so many graphs can share one database.
* ``put`` is one statement that appends a checkpoint only if it follows the thread's latest
  step (compare-and-append): two writers can never interleave or lose an update.
* The schema is migrated at start-up by versioned migrations under an advisory lock, so ten
  replicas starting at once apply each migration exactly once.
* A thread's run lock is a lease row. Each process holds a session advisory lock (its
  "liveness lock") for as long as it lives; a lease whose process has lost that lock (it died:
  Postgres releases session locks when the connection drops) is taken over at once, and any
  lease runs out after ``lease_s`` at worst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import orjson

from agentflow.checkpoint.base import (
    Checkpoint,
    Checkpointer,
    CheckpointerError,
    ConcurrentUpdateError,
    ThreadInfo,
    ThreadLease,
    ThreadLockedError,
)

logger = logging.getLogger("agentflow.checkpoint")

T = TypeVar("T")

# Advisory lock key serialising migrations across processes (any constant unlikely to clash).
MIGRATION_LOCK_KEY = 0x6167_666C_6F77  # "agflow"

MIGRATIONS: list[str] = [
    # 1: threads, their checkpoints, and thread run leases.
    """
    CREATE TABLE agentflow_threads (
        graph_id    text        NOT NULL,
        thread_id   text        NOT NULL,
        metadata    jsonb       NOT NULL DEFAULT '{}',
        latest_step bigint      NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (graph_id, thread_id)
    );
    CREATE INDEX agentflow_threads_recent ON agentflow_threads (graph_id, updated_at DESC);
    CREATE TABLE agentflow_checkpoints (
        graph_id  text   NOT NULL,
        thread_id text   NOT NULL,
        step      bigint NOT NULL,
        body      jsonb  NOT NULL,
        PRIMARY KEY (graph_id, thread_id, step),
        FOREIGN KEY (graph_id, thread_id)
            REFERENCES agentflow_threads (graph_id, thread_id) ON DELETE CASCADE
    );
    CREATE TABLE agentflow_thread_locks (
        graph_id   text        NOT NULL,
        thread_id  text        NOT NULL,
        holder     text        NOT NULL,
        worker_key bigint      NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (graph_id, thread_id)
    );
    """,
]

# Appends the checkpoint only if it is the step after the thread's latest (or the thread is
# new), then prunes history beyond the retention; returns 1 if stored, 0 if another writer won.
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
)
SELECT count(*) FROM stored
"""

# True when the process owning ``worker_key`` still holds its liveness lock.
_WORKER_ALIVE = """
EXISTS (
    SELECT FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((classid::bigint << 32) | objid::bigint) = {table}.worker_key
)
"""

_LOCK = f"""
INSERT INTO agentflow_thread_locks AS l (graph_id, thread_id, holder, worker_key, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
ON CONFLICT (graph_id, thread_id) DO UPDATE
    SET holder = EXCLUDED.holder, worker_key = EXCLUDED.worker_key,
        expires_at = EXCLUDED.expires_at
    WHERE l.expires_at < now() OR NOT {_WORKER_ALIVE.format(table="l")}
RETURNING holder
"""

_HOLDER = f"""
SELECT holder FROM agentflow_thread_locks AS l
WHERE graph_id = $1 AND thread_id = $2 AND expires_at >= now()
  AND {_WORKER_ALIVE.format(table="l")}
"""

# Postgres down, restarting (OperatorIntervention: shutting down, cannot connect now), or
# too slow (TimeoutError): the request fails fast with 503; the pool reconnects later.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class PgCheckpointer(Checkpointer):
    def __init__(
        self,
        dsn: str,
        *,
        graph_id: str,
        pool_min: int = 1,
        pool_max: int = 10,
        timeout_s: float = 5.0,
        lease_s: float = 30.0,
        max_history: int = 100,
    ) -> None:
        self.dsn = dsn
        self.graph_id = graph_id
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.max_history = max_history
        self.worker_key = secrets.randbelow(2**62) + 1
        self._pool: asyncpg.Pool | None = None
        self._liveness_task: asyncio.Task[None] | None = None
        self._liveness_held = asyncio.Event()

    def __repr__(self) -> str:
        return f"PgCheckpointer({redact_dsn(self.dsn)!r}, graph_id={self.graph_id!r})"

    # ------------------------------------------------------------------ life cycle

    async def setup(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.pool_min,
                max_size=self.pool_max,
                timeout=self.timeout_s,
                command_timeout=self.timeout_s,
                reset=_nothing_to_reset,
            )
            await self._migrate()
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as error:
            await self.close()
            raise CheckpointerError(
                f"cannot set up the Postgres checkpointer at {redact_dsn(self.dsn)}: "
                f"{type(error).__name__}: {error}"
            ) from None
        self._liveness_task = asyncio.create_task(self._hold_liveness_lock())
        await asyncio.wait_for(self._liveness_held.wait(), self.timeout_s)

    async def close(self) -> None:
        if self._liveness_task is not None:
            self._liveness_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._liveness_task
            self._liveness_task = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _migrate(self) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS agentflow_schema_migrations ("
                " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await conn.fetch("SELECT version FROM agentflow_schema_migrations")
            applied = {row["version"] for row in rows}
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version not in applied:
                    await conn.execute(statements)
                    await conn.execute(
                        "INSERT INTO agentflow_schema_migrations (version) VALUES ($1)", version
                    )
                    logger.info("applied checkpointer schema migration %d", version)

    async def _hold_liveness_lock(self) -> None:
        """Keep a connection holding this process's advisory lock; reconnect if it drops."""
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self.timeout_s)
                try:
                    await conn.execute("SELECT pg_advisory_lock($1)", self.worker_key)
                    self._liveness_held.set()
                    delay = 0.1
                    while not conn.is_closed():
                        await asyncio.sleep(1)
                        await conn.execute("SELECT 1")  # notices a dead server promptly
                finally:
                    self._liveness_held.clear()
                    await conn.close(timeout=1)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("liveness lock connection lost (%s); reconnecting", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise CheckpointerError("the Postgres checkpointer is not set up")
        async with self._pool.acquire(timeout=self.timeout_s) as conn:
            yield conn

    async def _run(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run one operation on a pooled connection, as a CheckpointerError if Postgres is
        unreachable (down, restarting, or too slow to answer within the timeout)."""
        try:
            async with self._connection() as conn:
                return await operation(conn)
        except _CONNECTION_ERRORS as error:
            raise CheckpointerError(
                f"the Postgres checkpointer is unavailable: {type(error).__name__}: {error}"
            ) from error

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))

    # ------------------------------------------------------------------ checkpoints

    async def get(self, thread_id: str) -> Checkpoint | None:
        body = await self._run(
            lambda conn: conn.fetchval(
                "SELECT body FROM agentflow_checkpoints WHERE graph_id = $1 AND thread_id = $2"
                " ORDER BY step DESC LIMIT 1",
                self.graph_id,
                thread_id,
            )
        )
        return Checkpoint.from_json(body) if body is not None else None

    async def put(
        self, checkpoint: Checkpoint, thread_metadata: dict[str, Any] | None = None
    ) -> None:
        body = checkpoint.to_json().decode()
        metadata = orjson.dumps(thread_metadata or {}).decode()
        stored = await self._run(
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
        rows = await self._run(
            lambda conn: conn.fetch(
                "SELECT body FROM agentflow_checkpoints WHERE graph_id = $1 AND thread_id = $2"
                " ORDER BY step DESC LIMIT $3",
                self.graph_id,
                thread_id,
                limit,
            )
        )
        return [Checkpoint.from_json(row["body"]) for row in rows]

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        row = await self._run(
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
        self, limit: int = 100, offset: int = 0, metadata: dict[str, Any] | None = None
    ) -> list[ThreadInfo]:
        rows = await self._run(
            lambda conn: conn.fetch(
                "SELECT thread_id, metadata, extract(epoch FROM created_at) AS created_at,"
                " extract(epoch FROM updated_at) AS updated_at FROM agentflow_threads"
                " WHERE graph_id = $1 AND metadata @> $2::jsonb"
                " ORDER BY updated_at DESC LIMIT $3 OFFSET $4",
                self.graph_id,
                orjson.dumps(metadata or {}).decode(),
                limit,
                offset,
            )
        )
        return [_thread_info(row) for row in rows]

    async def delete_thread(self, thread_id: str) -> bool:
        deleted = await self._run(
            lambda conn: conn.fetchval(
                "WITH gone AS (DELETE FROM agentflow_threads WHERE graph_id = $1"
                " AND thread_id = $2 RETURNING 1) SELECT count(*) FROM gone",
                self.graph_id,
                thread_id,
            )
        )
        return bool(deleted)

    # ------------------------------------------------------------------ thread leases

    async def lock_thread(self, thread_id: str, holder: str) -> ThreadLease:
        taken = await self._run(
            lambda conn: conn.fetchval(
                _LOCK, self.graph_id, thread_id, holder, self.worker_key, self.lease_s
            )
        )
        if taken is None:
            current = await self.thread_holder(thread_id)
            raise ThreadLockedError(thread_id, current or "another run")
        return _PgLease(self, thread_id, holder)

    async def thread_holder(self, thread_id: str) -> str | None:
        holder: str | None = await self._run(
            lambda conn: conn.fetchval(_HOLDER, self.graph_id, thread_id)
        )
        return holder

    async def _renew(self, thread_id: str, holder: str) -> bool:
        renewed = await self._run(
            lambda conn: conn.fetchval(
                "UPDATE agentflow_thread_locks SET expires_at = now() + make_interval(secs => $4)"
                " WHERE graph_id = $1 AND thread_id = $2 AND holder = $3 RETURNING 1",
                self.graph_id,
                thread_id,
                holder,
                self.lease_s,
            )
        )
        return renewed is not None

    async def _unlock(self, thread_id: str, holder: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "DELETE FROM agentflow_thread_locks"
                " WHERE graph_id = $1 AND thread_id = $2 AND holder = $3",
                self.graph_id,
                thread_id,
                holder,
            )
        )


class _PgLease(ThreadLease):
    """Renews itself every third of the lease time until released."""

    def __init__(self, store: PgCheckpointer, thread_id: str, holder: str) -> None:
        super().__init__(thread_id, holder)
        self._store = store
        self._renewer = asyncio.create_task(self._keep_renewed())

    async def _keep_renewed(self) -> None:
        while True:
            await asyncio.sleep(self._store.lease_s / 3)
            try:
                if not await self._store._renew(self.thread_id, self.holder):
                    logger.warning("lost the lease of thread %s (%s)", self.thread_id, self.holder)
                    return
            except CheckpointerError as error:
                logger.warning("could not renew the lease of thread %s: %s", self.thread_id, error)

    async def release(self) -> None:
        if self._renewer.done():
            return
        self._renewer.cancel()
        try:
            await self._store._unlock(self.thread_id, self.holder)
        except CheckpointerError as error:  # it runs out by itself
            logger.warning("could not release thread %s: %s", self.thread_id, error)


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """What the pool runs when a connection comes back (after asyncpg has ended any open
    transaction). Ours change no session state: single statements, a transaction-scoped
    advisory lock for migrations, the liveness lock on a connection of its own. asyncpg's
    default reset (advisory unlock all, close cursors, unlisten, reset settings) is a round trip
    on every release: five per run."""


def _thread_info(row: asyncpg.Record) -> ThreadInfo:
    return ThreadInfo(
        thread_id=row["thread_id"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        metadata=orjson.loads(row["metadata"]),
    )
