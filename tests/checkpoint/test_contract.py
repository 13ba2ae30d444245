"""The Checkpointer contract, checked against every implementation (Postgres for real).

A new store is one class plus one more parameter of the ``store`` fixture below.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from agentflow.checkpoint import (
    Checkpoint,
    Checkpointer,
    ConcurrentUpdateError,
    InMemoryCheckpointer,
    JsonSerializer,
    Serializer,
    StateNotSerializableError,
)
from agentflow.checkpoint.postgres import PgCheckpointer


async def open_store(
    kind: str, database_url: str, serializer: Serializer | None = None
) -> Checkpointer:
    if kind == "memory":
        return InMemoryCheckpointer(max_history=5, serializer=serializer)
    graph_id = f"graph-{uuid.uuid4().hex}"
    store = PgCheckpointer(database_url, graph_id=graph_id, max_history=5, serializer=serializer)
    await store.setup()
    return store


@pytest.fixture(params=["memory", "postgres"])
async def store(request, database_url) -> AsyncIterator[Checkpointer]:
    opened = await open_store(request.param, database_url)
    yield opened
    await opened.close()


async def put_steps(store: Checkpointer, thread: str, count: int, **metadata) -> None:
    for step in range(count):
        await store.put(Checkpoint(thread, "r1", step, {"n": step}), metadata or None)


async def test_latest_history_and_threads(store):
    await put_steps(store, "t1", 2, owner="alice")
    await put_steps(store, "t2", 1, owner="bob")
    latest = await store.get("t1")
    assert latest is not None
    assert latest.values == {"n": 1}
    assert latest.step == 1
    assert [c.step for c in await store.history("t1")] == [1, 0]
    assert [c.step for c in await store.history("t1", limit=1)] == [1]
    assert [t.thread_id for t in await store.list_threads()] == ["t2", "t1"]
    assert [t.thread_id for t in await store.list_threads(offset=1)] == ["t1"]
    assert [t.thread_id for t in await store.list_threads(metadata={"owner": "alice"})] == ["t1"]
    thread = await store.get_thread("t1")
    assert thread is not None
    assert thread.metadata == {"owner": "alice"}
    assert thread.updated_at >= thread.created_at
    assert await store.delete_thread("t1") is True
    assert await store.delete_thread("t1") is False
    assert await store.get("t1") is None
    assert await store.history("t1") == []
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
    assert latest is not None
    assert latest.values == {"items": [1]}


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
    assert latest is not None
    assert latest.values == {"n": 1}


async def test_concurrent_writers_of_the_same_step_one_wins(store):
    await put_steps(store, "t", 1)
    results = await asyncio.gather(
        *(store.put(Checkpoint("t", f"w{i}", 1, {"w": i})) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ConcurrentUpdateError) for r in results if r is not None)


@pytest.mark.parametrize("value", [object(), "a\x00b", {"k\x00": 1}, "\ud800", 2**70], ids=repr)
async def test_state_that_not_every_store_can_hold_is_refused_clearly(store, value):
    with pytest.raises(StateNotSerializableError, match="thread 't' cannot be stored as JSON"):
        await store.put(Checkpoint("t", "r", 0, {"value": value}))
    with pytest.raises(StateNotSerializableError):
        await store.put_writes("t", 0, "node", {"value": value})
    assert await store.get("t") is None  # nothing half-written


async def test_pending_writes_are_kept_until_their_step_is_checkpointed(store):
    await put_steps(store, "t", 1)
    await store.put_writes("t", 1, "a", {"n": "from a"})
    await store.put_writes("t", 1, "b", {"n": "from b"})
    await store.put_writes("t", 1, "a", {"n": "a, run again"})  # a re-run replaces its write
    assert await store.pending_writes("t", 1) == {"a": {"n": "a, run again"}, "b": {"n": "from b"}}
    assert await store.pending_writes("t", 2) == {}
    assert await store.pending_writes("other", 1) == {}
    await store.put(Checkpoint("t", "r1", 1, {"n": "a and b"}))
    assert await store.pending_writes("t", 1) == {}


async def test_deleting_a_thread_deletes_its_pending_writes(store):
    await put_steps(store, "t", 1)
    await store.put_writes("t", 1, "a", {"n": 1})
    assert await store.delete_thread("t")
    assert await store.pending_writes("t", 1) == {}


async def test_a_pending_write_that_is_not_json_is_refused_clearly(store):
    with pytest.raises(StateNotSerializableError, match="thread 't' cannot be stored as JSON"):
        await store.put_writes("t", 0, "a", {"when": object()})


class TaggedJson(JsonSerializer):
    """A serializer a team might plug in: datetimes come back as datetimes, still as JSON."""

    def dumps(self, checkpoint: Checkpoint) -> bytes:
        return super().dumps(
            Checkpoint(**{**_fields(checkpoint), "values": _tag(checkpoint.values)})
        )

    def loads(self, raw: bytes | str) -> Checkpoint:
        checkpoint = super().loads(raw)
        checkpoint.values = _untag(checkpoint.values)
        return checkpoint

    def dumps_update(self, thread_id: str, update: dict[str, Any]) -> bytes:
        return super().dumps_update(thread_id, _tag(update))

    def loads_update(self, raw: bytes | str) -> dict[str, Any]:
        return _untag(super().loads_update(raw))


def _fields(checkpoint: Checkpoint) -> dict[str, Any]:
    return {name: getattr(checkpoint, name) for name in Checkpoint.__slots__}


def _tag(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {"$datetime": value.isoformat()} if isinstance(value, datetime) else value
        for key, value in values.items()
    }


def _untag(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromisoformat(value["$datetime"])
        if isinstance(value, dict) and "$datetime" in value
        else value
        for key, value in values.items()
    }


@pytest.mark.parametrize("kind", ["memory", "postgres"])
async def test_a_store_keeps_checkpoints_with_the_serializer_it_is_given(kind, database_url):
    store = await open_store(kind, database_url, TaggedJson())
    when = datetime(2026, 12, 1, 21, 32, tzinfo=UTC)
    try:
        await store.put(Checkpoint("t", "r", 0, {"when": when, "n": 1}))
        await store.put_writes("t", 1, "a", {"when": when})
        latest = await store.get("t")
        assert latest is not None
        assert latest.values == {"when": when, "n": 1}
        assert [c.values for c in await store.history("t")] == [{"when": when, "n": 1}]
        assert await store.pending_writes("t", 1) == {"a": {"when": when}}
    finally:
        await store.close()


def test_the_default_serializer_writes_json():
    raw = JsonSerializer().dumps(Checkpoint("t", "r", 0, {"n": 1}))
    assert orjson.loads(raw)["values"] == {"n": 1}
