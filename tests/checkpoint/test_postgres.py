"""What only the Postgres checkpointer does: migrations, graph isolation, leases across
processes, failing fast when Postgres is unreachable."""

import asyncio
import uuid
from collections.abc import Iterator

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


async def test_graphs_sharing_a_database_never_see_each_others_threads(database_url):
    one = PgCheckpointer(database_url, graph_id=graph_id())
    two = PgCheckpointer(database_url, graph_id=graph_id())
    await one.setup()
    await two.setup()
    try:
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
    finally:
        await one.close()
        await two.close()


async def test_a_dead_process_loses_its_thread_locks_at_once(database_url):
    graph = graph_id()
    dying = PgCheckpointer(database_url, graph_id=graph, lease_s=300)
    survivor = PgCheckpointer(database_url, graph_id=graph, lease_s=300)
    await dying.setup()
    await survivor.setup()
    try:
        await dying.lock_thread("t", "run on the dying worker")
        with pytest.raises(ThreadLockedError):
            await survivor.lock_thread("t", "run elsewhere")
        await dying.close()  # its connections drop, as when the process is killed
        assert await survivor.thread_holder("t") is None
        lease = await survivor.lock_thread("t", "run elsewhere")
        await lease.release()
    finally:
        await survivor.close()


async def test_a_lease_is_renewed_while_held_and_runs_out_when_not(database_url):
    graph = graph_id()
    holder = PgCheckpointer(database_url, graph_id=graph, lease_s=0.6)
    other = PgCheckpointer(database_url, graph_id=graph, lease_s=0.6)
    await holder.setup()
    await other.setup()
    try:
        lease = await holder.lock_thread("t", "long run")
        await asyncio.sleep(1.5)  # several lease times: the renewer keeps it
        with pytest.raises(ThreadLockedError):
            await other.lock_thread("t", "second")
        lease._renewer.cancel()  # a holder that stops renewing (stuck, partitioned...)
        await asyncio.sleep(1.0)
        await (await other.lock_thread("t", "second")).release()
    finally:
        await holder.close()
        await other.close()


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
