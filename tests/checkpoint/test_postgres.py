"""What only the Postgres checkpointer does: migrations, graph isolation, failing fast when
Postgres is unreachable. (Its thread leases: tests/leases.)"""

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from agentflow.checkpoint import Checkpoint, CheckpointerError
from agentflow.checkpoint.postgres import PgCheckpointer
from agentflow.postgres import MIGRATIONS, redact_dsn
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
    one, two = (PgCheckpointer(database_url, graph_id=graph_id()) for _ in range(2))
    await one.setup()
    await two.setup()
    try:
        await one.put(Checkpoint("same-id", "r", 0, {"graph": "one"}))
        await two.put(Checkpoint("same-id", "r", 0, {"graph": "two"}))
        first, second = await one.get("same-id"), await two.get("same-id")
        assert first is not None
        assert first.values == {"graph": "one"}
        assert second is not None
        assert second.values == {"graph": "two"}
        assert [t.thread_id for t in await one.list_threads()] == ["same-id"]
        assert await two.delete_thread("same-id")
        assert await one.get("same-id") is not None
    finally:
        await one.close()
        await two.close()


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
