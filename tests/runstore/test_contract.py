"""The RunStore contract, checked against every implementation (Postgres for real), and what
only a shared store does: claims that never overlap across workers, and runs of a dead worker
claimed again."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from agentflow.postgres import PgDatabase
from agentflow.runstore import InMemoryRunStore, QueueFullError, RunRecord, RunRequest, RunStore
from agentflow.runstore.base import Delivery
from agentflow.runstore.postgres import PgRunStore


def new_run(thread_id: str, owner: str | None = None, webhook: str | None = None) -> RunRecord:
    return RunRecord(
        run_id=uuid.uuid4().hex,
        thread_id=thread_id,
        owner=owner,
        request=RunRequest(input={"messages": ["hi"]}, recursion_limit=5, metadata={"k": 1}),
        webhook=None if webhook is None else Delivery(webhook),
    )


@pytest.fixture(params=["memory", "postgres"])
async def store(request, database_url) -> AsyncIterator[RunStore]:
    if request.param == "memory":
        yield InMemoryRunStore()
        return
    database = PgDatabase(database_url)
    await database.setup()
    yield PgRunStore(database, graph_id=f"graph-{uuid.uuid4().hex}")
    await database.close()


async def test_claims_hand_out_pending_runs_oldest_first_and_once(store):
    runs = [new_run(f"t{i}") for i in range(5)]
    for run in runs:
        await store.submit(run, max_pending=100)
    first = await store.claim(limit=2, max_attempts=3)
    second = await store.claim(limit=10, max_attempts=3)
    assert [r.run_id for r in first + second] == [r.run_id for r in runs]
    assert {r.status for r in first + second} == {"running"}
    assert {r.attempts for r in first + second} == {1}
    assert await store.claim(limit=10, max_attempts=3) == []
    assert await store.counts() == {"pending": 0, "running": 5}


async def test_a_threads_runs_are_claimed_one_after_the_other(store):
    one, two, other = new_run("t"), new_run("t"), new_run("u")
    for run in (one, two, other):
        await store.submit(run, max_pending=100)
    claimed = await store.claim(limit=10, max_attempts=3)
    assert [r.run_id for r in claimed] == [one.run_id, other.run_id]
    running = claimed[0]
    running.status, running.result = "success", {"values": {}}
    assert await store.finish(running)
    assert [r.run_id for r in await store.claim(limit=10, max_attempts=3)] == [two.run_id]


async def test_what_a_run_asked_and_how_it_ended_are_kept(store):
    run = new_run("t", owner="alice", webhook="http://127.0.0.1:1/hook/")
    await store.submit(run, max_pending=100)
    (claimed,) = await store.claim(limit=1, max_attempts=3)
    assert claimed.request == run.request
    assert claimed.started_at is not None
    claimed.status, claimed.error = "error", {"code": "node_error", "message": "it broke"}
    assert await store.finish(claimed)
    kept = await store.get("t", run.run_id)
    assert kept is not None
    assert (kept.status, kept.error, kept.owner) == ("error", claimed.error, "alice")
    assert kept.ended_at is not None
    assert kept.ended_at >= kept.created_at
    assert kept.webhook == Delivery("http://127.0.0.1:1/hook/")
    assert await store.get("another-thread", run.run_id) is None
    assert not await store.finish(kept)  # ended: nobody holds a claim on it any more


async def test_a_handed_back_run_is_pending_again_with_its_claim_not_counted(store):
    run = new_run("t")
    await store.submit(run, max_pending=100)
    (claimed,) = await store.claim(limit=1, max_attempts=3)
    await store.hand_back(claimed)
    again = await store.get("t", run.run_id)
    assert again is not None
    assert (again.status, again.attempts) == ("pending", 0)
    (reclaimed,) = await store.claim(limit=1, max_attempts=3)
    assert reclaimed.attempts == 1


async def test_the_queue_is_bounded(store):
    await store.submit(new_run("a"), max_pending=2)
    await store.submit(new_run("b"), max_pending=2)
    with pytest.raises(QueueFullError, match="2 runs are waiting already"):
        await store.submit(new_run("c"), max_pending=2)
    await store.claim(limit=1, max_attempts=3)  # a running run no longer waits
    await store.submit(new_run("c"), max_pending=2)


async def test_a_thread_lists_only_its_owners_runs_newest_first(store):
    mine = [new_run("t", owner="alice") for _ in range(3)]
    for run in [*mine, new_run("t", owner="bob"), new_run("u", owner="alice")]:
        await store.submit(run, max_pending=100)
    listed = await store.list_runs("t", "alice", limit=2, offset=0)
    assert [r.run_id for r in listed] == [mine[2].run_id, mine[1].run_id]
    rest = await store.list_runs("t", "alice", limit=2, offset=2)
    assert [r.run_id for r in rest] == [mine[0].run_id]


async def test_deleting_a_threads_runs_forgets_the_owners_pending_and_ended_ones(store):
    ended, pending = new_run("t", owner="alice"), new_run("t", owner="alice")
    theirs, elsewhere = new_run("t", owner="bob"), new_run("u", owner="alice")
    for run in (ended, pending, theirs, elsewhere):
        await store.submit(run, max_pending=100)
    (claimed,) = await store.claim(limit=1, max_attempts=3)
    claimed.status = "success"
    assert await store.finish(claimed)
    assert await store.delete_runs("t", "alice") == 2
    assert await store.get("t", ended.run_id) is None
    assert await store.get("t", pending.run_id) is None
    assert await store.get("t", theirs.run_id) is not None
    assert await store.get("u", elsewhere.run_id) is not None
    assert await store.counts() == {"pending": 2, "running": 0}  # bob's and the other thread's
    assert await store.delete_runs("t", "alice") == 0


async def test_deliveries_are_kept_and_ended_runs_pruned_once_delivered(store):
    run = new_run("t", webhook="http://127.0.0.1:1/hook/")
    await store.submit(run, max_pending=100)
    (claimed,) = await store.claim(limit=1, max_attempts=3)
    claimed.status = "success"
    assert await store.finish(claimed)
    await asyncio.sleep(0.05)
    assert await store.prune(retain_s=0.01) == 0  # its webhook is still to be delivered
    assert claimed.webhook is not None
    claimed.webhook.status, claimed.webhook.attempts = "delivered", 2
    claimed.webhook.delivered_at = time.time()
    await store.record_delivery(claimed)
    kept = await store.get("t", run.run_id)
    assert kept is not None
    assert kept.webhook == claimed.webhook
    assert await store.prune(retain_s=3600) == 0
    assert await store.prune(retain_s=0.01) == 1
    assert await store.get("t", run.run_id) is None


# ---------------------------------------------------------------------- shared (Postgres)


@pytest.fixture
async def two_workers(database_url) -> AsyncIterator[tuple[PgRunStore, PgRunStore]]:
    """Two workers (each a database with its own liveness lock) on one graph's queue."""
    graph_id = f"graph-{uuid.uuid4().hex}"
    databases = [PgDatabase(database_url), PgDatabase(database_url)]
    for database in databases:
        await database.setup()
    yield PgRunStore(databases[0], graph_id=graph_id), PgRunStore(databases[1], graph_id=graph_id)
    for database in databases:
        await database.close()


async def test_workers_claiming_at_once_never_get_the_same_run(two_workers):
    first, second = two_workers
    runs = [new_run(f"t{i}") for i in range(200)]
    for run in runs:
        await first.submit(run, max_pending=1000)
    claimed: list[RunRecord] = []
    for _ in range(20):
        batches = await asyncio.gather(
            *(worker.claim(limit=7, max_attempts=3) for worker in (first, second, first, second))
        )
        claimed += [run for batch in batches for run in batch]
    assert sorted(r.run_id for r in claimed) == sorted(r.run_id for r in runs)


async def test_a_dead_workers_runs_are_claimed_again_and_abandoned_after_max_attempts(
    database_url, two_workers
):
    survivor = two_workers[1]
    dying_database = PgDatabase(database_url)
    await dying_database.setup()
    dying = PgRunStore(dying_database, graph_id=survivor.graph_id)
    run = new_run("t")
    await dying.submit(run, max_pending=100)
    (claimed,) = await dying.claim(limit=1, max_attempts=2)
    assert await survivor.claim(limit=1, max_attempts=2) == []  # its worker is alive
    await dying_database.close()  # its liveness lock goes with its session
    (resumed,) = await survivor.claim(limit=1, max_attempts=2)
    assert (resumed.run_id, resumed.attempts) == (run.run_id, 2)
    await dying_database.setup()  # it was only cut off (same key): it comes back too late
    claimed.status = "success"
    assert not await dying.finish(claimed)  # the claim is no longer its own
    await dying_database.close()

    # The survivor dies too: the run was claimed twice, its limit, so it ends.
    survivor_database = survivor.database
    await survivor_database.close()
    third_database = PgDatabase(database_url)
    await third_database.setup()
    try:
        third = PgRunStore(third_database, graph_id=survivor.graph_id)
        assert await third.claim(limit=1, max_attempts=2) == []
        ended = await third.get("t", run.run_id)
        assert ended is not None
        assert ended.status == "error"
        assert ended.error == {
            "code": "run_abandoned",
            "message": f"run {run.run_id} was abandoned: the worker executing it stopped 2 "
            "times (AGENTFLOW_RUN_MAX_ATTEMPTS)",
        }
    finally:
        await third_database.close()
        await survivor_database.setup()  # the fixture closes it again


async def test_a_dead_workers_undelivered_webhooks_are_claimed(database_url, two_workers):
    survivor = two_workers[1]
    dying_database = PgDatabase(database_url)
    await dying_database.setup()
    dying = PgRunStore(dying_database, graph_id=survivor.graph_id)
    run = new_run("t", webhook="http://127.0.0.1:1/hook/")
    await dying.submit(run, max_pending=100)
    (claimed,) = await dying.claim(limit=1, max_attempts=3)
    claimed.status = "success"
    assert await dying.finish(claimed)
    assert await survivor.claim_deliveries(limit=10) == []  # its worker delivers it
    await dying_database.close()
    (undelivered,) = await survivor.claim_deliveries(limit=10)
    assert undelivered.run_id == run.run_id
    assert await survivor.claim_deliveries(limit=10) == []  # now the survivor's
