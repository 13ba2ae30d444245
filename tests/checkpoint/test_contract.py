"""The Checkpointer contract, checked against every implementation (Postgres for real)."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from agentflow.checkpoint import (
    Checkpoint,
    Checkpointer,
    ConcurrentUpdateError,
    InMemoryCheckpointer,
    StateNotSerializableError,
    ThreadLockedError,
)
from agentflow.checkpoint.postgres import PgCheckpointer


@pytest.fixture(params=["memory", "postgres"])
async def store(request, database_url) -> AsyncIterator[Checkpointer]:
    if request.param == "memory":
        yield InMemoryCheckpointer(max_history=5)
        return
    pg = PgCheckpointer(database_url, graph_id=f"graph-{uuid.uuid4().hex}", max_history=5)
    await pg.setup()
    yield pg
    await pg.close()


async def put_steps(store: Checkpointer, thread: str, count: int, **metadata) -> None:
    for step in range(count):
        await store.put(Checkpoint(thread, "r1", step, {"n": step}), metadata or None)


async def test_latest_history_and_threads(store):
    await put_steps(store, "t1", 2, owner="alice")
    await put_steps(store, "t2", 1, owner="bob")
    latest = await store.get("t1")
    assert latest is not None and latest.values == {"n": 1} and latest.step == 1
    assert [c.step for c in await store.history("t1")] == [1, 0]
    assert [c.step for c in await store.history("t1", limit=1)] == [1]
    assert [t.thread_id for t in await store.list_threads()] == ["t2", "t1"]
    assert [t.thread_id for t in await store.list_threads(offset=1)] == ["t1"]
    assert [t.thread_id for t in await store.list_threads(metadata={"owner": "alice"})] == ["t1"]
    thread = await store.get_thread("t1")
    assert thread is not None and thread.metadata == {"owner": "alice"}
    assert thread.updated_at >= thread.created_at
    assert await store.delete_thread("t1") is True
    assert await store.delete_thread("t1") is False
    assert await store.get("t1") is None and await store.history("t1") == []
    assert await store.get_thread("t1") is None


async def test_a_checkpoint_round_trips_every_field(store):
    checkpoint = Checkpoint(
        "t",
        "r",
        0,
        {"messages": [{"id": "m", "role": "user", "content": "hé"}]},
        next=["b"],
        interrupts=[{"id": "i", "node": "b", "value": {"q": 1}}],
        resumes={"b": ["yes"]},
        pending_writes={"c": {"n": 1}},
        source="loop",
        nodes=["a"],
    )
    await store.put(checkpoint)
    assert await store.get("t") == checkpoint


async def test_stored_checkpoints_are_snapshots_not_live_objects(store):
    values = {"items": [1]}
    await store.put(Checkpoint("t", "r", 0, values))
    values["items"].append(2)
    latest = await store.get("t")
    assert latest is not None and latest.values == {"items": [1]}


async def test_history_is_bounded(store):
    await put_steps(store, "t", 8)
    assert [c.step for c in await store.history("t", limit=10)] == [7, 6, 5, 4, 3]


async def test_a_write_that_does_not_follow_the_latest_step_is_refused(store):
    await put_steps(store, "t", 2)
    with pytest.raises(ConcurrentUpdateError, match="thread 't' moved on"):
        await store.put(Checkpoint("t", "late", 1, {"n": "lost"}))
    with pytest.raises(ConcurrentUpdateError):
        await store.put(Checkpoint("t", "early", 5, {}))
    latest = await store.get("t")
    assert latest is not None and latest.values == {"n": 1}


async def test_concurrent_writers_of_the_same_step_one_wins(store):
    await put_steps(store, "t", 1)
    results = await asyncio.gather(
        *(store.put(Checkpoint("t", f"w{i}", 1, {"w": i})) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ConcurrentUpdateError) for r in results if r is not None)


async def test_state_that_is_not_json_is_refused_clearly(store):
    with pytest.raises(StateNotSerializableError, match="thread 't' cannot be stored as JSON"):
        await store.put(Checkpoint("t", "r", 0, {"when": object()}))


async def test_a_thread_lock_has_one_holder_at_a_time(store):
    lease = await store.lock_thread("t", "run a")
    assert await store.thread_holder("t") == "run a"
    with pytest.raises(ThreadLockedError, match="thread 't' is busy with run a"):
        await store.lock_thread("t", "run b")
    await store.lock_thread("other", "run c")  # other threads are independent
    await lease.release()
    assert await store.thread_holder("t") is None
    second = await store.lock_thread("t", "run b")
    await lease.release()  # releasing twice does not free someone else's lease
    assert await store.thread_holder("t") == "run b"
    await second.release()
