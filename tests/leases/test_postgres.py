"""What only the Postgres leases do: hold across processes, isolate graphs sharing a database,
free a dead process's threads at once, and renew while held."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from agentflow.leases import Holder, ThreadLockedError
from agentflow.leases.postgres import PgLeases
from agentflow.postgres import PgDatabase


@contextlib.asynccontextmanager
async def two_processes(
    database_url: str, same_graph: bool = True, lease_s: float = 30.0
) -> AsyncIterator[tuple[PgLeases, PgLeases]]:
    """Leases as two worker processes would have them (each its own pool and liveness lock),
    for one graph or for two graphs sharing the database."""
    shared = f"graph-{uuid.uuid4().hex}"
    databases = [PgDatabase(database_url, pool_max=2) for _ in range(2)]
    for database in databases:
        await database.setup()
    try:
        yield tuple(  # type: ignore[misc]
            PgLeases(d, graph_id=shared if same_graph else uuid.uuid4().hex, lease_s=lease_s)
            for d in databases
        )
    finally:
        for database in databases:
            await database.close()


async def test_graphs_sharing_a_database_lease_their_threads_apart(database_url):
    async with two_processes(database_url, same_graph=False) as (one, two):
        lease = await one.acquire("same-id", Holder("run", "1"))
        await (await two.acquire("same-id", Holder("run", "2"))).release()
        await lease.release()


async def test_a_thread_held_by_one_process_is_busy_for_the_other(database_url):
    async with two_processes(database_url) as (first, second):
        lease = await first.acquire("t", Holder("run", "1"))
        with pytest.raises(ThreadLockedError, match="busy with run 1"):
            await second.acquire("t", Holder("run", "2"))
        assert await second.holder("t") == Holder("run", "1")
        await lease.release()
        await (await second.acquire("t", Holder("run", "2"))).release()


async def test_a_dead_process_loses_its_leases_at_once(database_url):
    async with two_processes(database_url, lease_s=300) as (dying, survivor):
        await dying.acquire("t", Holder("run", "on the dying worker"))
        with pytest.raises(ThreadLockedError):
            await survivor.acquire("t", Holder("run", "elsewhere"))
        await dying.database.close()  # its connections drop, as when the process is killed
        assert await survivor.holder("t") is None
        await (await survivor.acquire("t", Holder("run", "elsewhere"))).release()


async def test_a_lease_is_renewed_while_held_and_runs_out_when_not(database_url):
    async with two_processes(database_url, lease_s=0.6) as (holder, other):
        lease = await holder.acquire("t", Holder("run", "long"))
        await asyncio.sleep(1.5)  # several lease times: the renewer keeps it
        with pytest.raises(ThreadLockedError):
            await other.acquire("t", Holder("run", "second"))
        # A holder that stops renewing (stuck, partitioned): its lease runs out.
        lease._renewer.cancel()  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)
        await (await other.acquire("t", Holder("run", "second"))).release()


async def test_renewing_a_lease_that_was_taken_over_says_so(database_url):
    async with two_processes(database_url, lease_s=0.3) as (holder, other):
        lease = await holder.acquire("t", Holder("run", "slow"))
        lease._renewer.cancel()  # type: ignore[attr-defined]
        await asyncio.sleep(0.6)
        taken = await other.acquire("t", Holder("run", "next"))
        assert await holder.renew(lease) is False
        await taken.release()
