"""What only the Postgres checkpointer does: migrations, graph isolation, leases across
processes, failing fast when Postgres is unreachable."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from agentflow.checkpoint import Checkpoint, CheckpointerError, ThreadLockedError
from agentflow.checkpoint.postgres import MIGRATIONS, PgCheckpointer, redact_dsn
from tests.services import create_database, drop_database


def graph_id() -> str:
    return f"graph-{uuid.uuid4().hex}"


@pytest.fixture
def empty_database() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


async def test_ten_processes_starting_at_once_migrate_exactly_once(empty_database):
    stores = [
        PgCheckpointer(empty_database, graph_id=graph_id(), pool_min=1, pool_max=2)
        for _ in range(10)
    ]
    await asyncio.gather(*(s.setup() for s in stores))
    conn = await asyncpg.connect(empty_database)
    versions = await conn.fetch("SELECT version FROM agentflow_schema_migrations")
    await conn.close()
    assert sorted(r["version"] for r in versions) == list(range(1, len(MIGRATIONS) + 1))
    await stores[0].put(Checkpoint("t", "r", 0, {}))  # the schema works
    await asyncio.gather(*(s.close() for s in stores))


@contextlib.asynccontextmanager
async def two_processes(
    database_url: str, same_graph: bool = True, **options: float
) -> AsyncIterator[tuple[PgCheckpointer, PgCheckpointer]]:
    """Two checkpointers as two worker processes would have them (each its own pool and
    liveness lock), for one graph or for two graphs sharing the database."""
    shared = graph_id()
    stores = tuple(
        PgCheckpointer(database_url, graph_id=shared if same_graph else graph_id(), **options)
        for _ in range(2)
    )
    for store in stores:
        await store.setup()
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def test_graphs_sharing_a_database_never_see_each_others_threads(database_url):
    async with two_processes(database_url, same_graph=False) as (one, two):
        await one.put(Checkpoint("same-id", "r", 0, {"graph": "one"}))
        await two.put(Checkpoint("same-id", "r", 0, {"graph": "two"}))
        first, second = await one.get("same-id"), await two.get("same-id")
        assert first is not None and first.values == {"graph": "one"}
        assert second is not None and second.values == {"graph": "two"}
        assert [t.thread_id for t in await one.list_threads()] == ["same-id"]
        lease = await one.lock_thread("same-id", "run 1")
        await (await two.lock_thread("same-id", "run 2")).release()  # another graph's lock
        await lease.release()
        assert await two.delete_thread("same-id")
        assert await one.get("same-id") is not None


async def test_a_dead_process_loses_its_thread_locks_at_once(database_url):
    async with two_processes(database_url, lease_s=300) as (dying, survivor):
        await dying.lock_thread("t", "run on the dying worker")
        with pytest.raises(ThreadLockedError):
            await survivor.lock_thread("t", "run elsewhere")
        await dying.close()  # its connections drop, as when the process is killed
        assert await survivor.thread_holder("t") is None
        lease = await survivor.lock_thread("t", "run elsewhere")
        await lease.release()


async def test_a_lease_is_renewed_while_held_and_runs_out_when_not(database_url):
    async with two_processes(database_url, lease_s=0.6) as (holder, other):
        lease = await holder.lock_thread("t", "long run")
        await asyncio.sleep(1.5)  # several lease times: the renewer keeps it
        with pytest.raises(ThreadLockedError):
            await other.lock_thread("t", "second")
        lease._renewer.cancel()  # a holder that stops renewing (stuck, partitioned...)
        await asyncio.sleep(1.0)
        await (await other.lock_thread("t", "second")).release()


async def test_an_unreachable_postgres_fails_fast_and_names_itself():
    store = PgCheckpointer(
        "postgresql://postgres:s3cret@127.0.0.1:1/none", graph_id="g", timeout_s=1
    )
    with pytest.raises(
        CheckpointerError,
        match=r"cannot set up the Postgres checkpointer at postgresql://postgres:\*\*\*@127\.0\.0\.1:1/none",
    ) as caught:
        await asyncio.wait_for(store.setup(), 10)
    assert "s3cret" not in str(caught.value)


def test_redact_dsn():
    assert redact_dsn("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"
    assert redact_dsn("postgresql://u@h/d") == "postgresql://u@h/d"
