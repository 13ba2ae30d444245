import pytest
from agentflow.checkpoint import Checkpoint, InMemoryCheckpointer, StateNotSerializableError


async def test_latest_history_and_threads():
    store = InMemoryCheckpointer()
    await store.put(Checkpoint("t1", "r1", 0, {"n": 0}), {"owner": "alice"})
    await store.put(Checkpoint("t1", "r1", 1, {"n": 1}))
    await store.put(Checkpoint("t2", "r2", 0, {"n": 9}), {"owner": "bob"})
    latest = await store.get("t1")
    assert latest is not None and latest.values == {"n": 1}
    assert [c.step for c in await store.history("t1")] == [1, 0]
    assert [c.step for c in await store.history("t1", limit=1)] == [1]
    assert [t.thread_id for t in await store.list_threads()] == ["t2", "t1"]
    assert [t.thread_id for t in await store.list_threads(metadata={"owner": "alice"})] == ["t1"]
    assert await store.delete_thread("t1") is True
    assert await store.delete_thread("t1") is False
    assert await store.get("t1") is None


async def test_stored_checkpoints_are_snapshots_not_live_objects():
    store = InMemoryCheckpointer()
    values = {"items": [1]}
    await store.put(Checkpoint("t", "r", 0, values))
    values["items"].append(2)
    latest = await store.get("t")
    assert latest is not None and latest.values == {"items": [1]}


async def test_history_is_bounded():
    store = InMemoryCheckpointer(max_history=3)
    for step in range(5):
        await store.put(Checkpoint("t", "r", step, {}))
    assert [c.step for c in await store.history("t", limit=10)] == [4, 3, 2]


async def test_state_that_is_not_json_is_refused_clearly():
    store = InMemoryCheckpointer()
    with pytest.raises(StateNotSerializableError, match="thread 't' cannot be stored as JSON"):
        await store.put(Checkpoint("t", "r", 0, {"when": object()}))
