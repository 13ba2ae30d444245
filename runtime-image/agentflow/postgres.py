"""The Postgres database shared by the checkpoint store and the thread leases: its connection
pool, its schema (versioned migrations, applied once under an advisory lock however many
replicas start at once), and this process's liveness lock.

The liveness lock is a session advisory lock each process holds for as long as it lives: a
lease whose process lost that lock (it died: Postgres releases session locks when the
connection drops) is taken over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg

from agentflow.checkpoint.base import CheckpointerError

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
    # 2: what the nodes of a step in progress already wrote (a crash re-runs only the others).
    """
    CREATE TABLE agentflow_pending_writes (
        graph_id  text   NOT NULL,
        thread_id text   NOT NULL,
        step      bigint NOT NULL,
        node      text   NOT NULL,
        body      jsonb  NOT NULL,
        PRIMARY KEY (graph_id, thread_id, step, node)
    );
    """,
    # 3: background runs, in the order they were submitted (agentflow.runstore.postgres).
    """
    CREATE TABLE agentflow_runs (
        graph_id       text        NOT NULL,
        run_id         text        NOT NULL,
        seq            bigserial,
        thread_id      text        NOT NULL,
        owner          text,
        status         text        NOT NULL,
        request        jsonb       NOT NULL,
        attempts       integer     NOT NULL DEFAULT 0,
        worker_key     bigint,
        created_at     timestamptz NOT NULL DEFAULT now(),
        started_at     timestamptz,
        ended_at       timestamptz,
        result         jsonb,
        error          jsonb,
        webhook        jsonb,
        webhook_status text,
        PRIMARY KEY (graph_id, run_id)
    );
    CREATE INDEX agentflow_runs_open ON agentflow_runs (graph_id, seq)
        WHERE status IN ('pending', 'running');
    CREATE INDEX agentflow_runs_of_thread ON agentflow_runs (graph_id, thread_id, seq);
    CREATE INDEX agentflow_runs_undelivered ON agentflow_runs (graph_id)
        WHERE webhook_status = 'pending';
    CREATE INDEX agentflow_runs_ended ON agentflow_runs (graph_id, ended_at)
        WHERE ended_at IS NOT NULL;
    """,
]

# SQL: the keys of the processes holding their liveness lock now (``worker_key IN (...)``: a
# statement reads the lock table once, however many rows it checks).
LIVE_WORKERS = """
SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
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


class PgDatabase:
    """A pool on one Postgres database, its migrated schema and this process's liveness lock."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        timeout_s: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.timeout_s = timeout_s
        self.worker_key = secrets.randbelow(2**62) + 1
        self._pool: asyncpg.Pool | None = None
        self._liveness_task: asyncio.Task[None] | None = None
        self._liveness_held = asyncio.Event()

    def __repr__(self) -> str:
        return f"PgDatabase({redact_dsn(self.dsn)!r})"

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
                f"{self._describe(error)}"
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
            except Exception as error:  # noqa: BLE001 - any failure: reconnect, never give up
                logger.warning("liveness lock connection lost (%s); reconnecting", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise CheckpointerError("the Postgres checkpointer is not set up")
        async with self._pool.acquire(timeout=self.timeout_s) as conn:
            yield conn

    async def run(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run one operation on a pooled connection, as a CheckpointerError if Postgres is
        unreachable (down, restarting, or too slow to answer within the timeout)."""
        try:
            # One budget for the whole operation (waiting for a connection included), so a
            # request waits AGENTFLOW_PG_TIMEOUT_S at most, not that once per stage.
            async with asyncio.timeout(self.timeout_s), self._connection() as conn:
                try:
                    return await operation(conn)
                except (asyncio.CancelledError, TimeoutError):
                    # Cut off mid-statement (the timeout, or the request went away): close
                    # the connection at once, as a stalled server would make handing it back
                    # (cancelling its statement first) wait as long again.
                    conn.terminate()
                    raise
        except _CONNECTION_ERRORS as error:
            raise CheckpointerError(
                f"the Postgres checkpointer is unavailable: {self._describe(error)}"
            ) from error

    def _describe(self, error: BaseException) -> str:
        """The driver's error, without this DSN's password should the driver have quoted it."""
        if isinstance(error, TimeoutError):
            return f"no answer within {self.timeout_s:g} s (AGENTFLOW_PG_TIMEOUT_S)"
        text = f"{type(error).__name__}: {error}"
        password = urlsplit(self.dsn).password
        return text.replace(password, "***") if password else text

    async def ping(self) -> None:
        await self.run(lambda conn: conn.fetchval("SELECT 1"))

    @property
    def is_open(self) -> bool:
        return self._pool is not None


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """What the pool runs when a connection comes back (after asyncpg has ended any open
    transaction). Ours change no session state: single statements, a transaction-scoped
    advisory lock for migrations, the liveness lock on a connection of its own. asyncpg's
    default reset (advisory unlock all, close cursors, unlisten, reset settings) is a round trip
    on every release: five per run."""
