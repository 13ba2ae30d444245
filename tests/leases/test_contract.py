"""The ThreadLeases contract, checked against every implementation (Postgres for real)."""

import uuid
from collections.abc import AsyncIterator

import pytest

from agentflow.leases import Holder, InMemoryLeases, ThreadLeases, ThreadLockedError
from agentflow.leases.postgres import PgLeases
from agentflow.postgres import PgDatabase


@pytest.fixture(params=["memory", "postgres"])
async def leases(request, database_url) -> AsyncIterator[ThreadLeases]:
    if request.param == "memory":
        yield InMemoryLeases()
        return
    database = PgDatabase(database_url)
    await database.setup()
    yield PgLeases(database, graph_id=f"graph-{uuid.uuid4().hex}")
    await database.close()


RUN_A, RUN_B = Holder("run", "a"), Holder("run", "b")


async def test_a_thread_has_one_holder_at_a_time(leases):
    lease = await leases.acquire("t", RUN_A)
    assert await leases.holder("t") == RUN_A
    with pytest.raises(ThreadLockedError, match="thread 't' is busy with run a") as refused:
        await leases.acquire("t", RUN_B)
    assert refused.value.holder == RUN_A
    await lease.release()
    assert await leases.holder("t") is None


async def test_threads_are_leased_independently(leases):
    first = await leases.acquire("one", RUN_A)
    second = await leases.acquire("two", RUN_A)
    assert await leases.holder("two") == RUN_A
    await first.release()
    assert await leases.holder("two") == RUN_A
    await second.release()


async def test_releasing_twice_never_frees_a_later_holders_lease(leases):
    lease = await leases.acquire("t", RUN_A)
    await lease.release()
    later = await leases.acquire("t", RUN_B)
    await lease.release()
    assert await leases.holder("t") == RUN_B
    await later.release()


@pytest.mark.parametrize("holder", [Holder("run", "r1"), Holder("update", "u-1 x")])
async def test_every_kind_of_holder_comes_back_as_itself(leases, holder):
    lease = await leases.acquire("t", holder)
    assert await leases.holder("t") == holder
    await lease.release()


def test_a_holder_reads_back_from_its_text():
    assert Holder.parse(str(Holder("deletion", "d1"))) == Holder("deletion", "d1")
    with pytest.raises(ValueError, match="'run' is not a lease holder"):
        Holder.parse("run")
