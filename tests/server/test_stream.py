"""Streaming over real SSE (parsed by httpx-sse) and NDJSON."""

import asyncio
import itertools
import json
import uuid

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.conftest import Server, start_server


def new_thread() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


async def read_sse(client: httpx.AsyncClient, body: dict) -> list[tuple[str, dict]]:
    async with aconnect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(event.event, json.loads(event.data)) async for event in source.aiter_sse()]


async def test_sse_events_are_typed_and_end_with_an_end_event(client):
    thread = new_thread()
    events = await read_sse(
        client,
        {"messages": ["hi"], "initial_state": {"events": 3}, "config": {"thread_id": thread}},
    )
    names = [name for name, _ in events]
    assert names == [
        "message",  # the caller's
        "updates",  # work (no state events at the default granularity, low)
        "custom",
        "custom",
        "custom",
        "updates",
        "message",
        "end",
    ]
    for name, chunk in events:
        assert chunk["event"] == name  # the SSE event type matches the StreamChunk's
        assert chunk["thread_id"] == thread
        assert set(chunk) == {
            "event",
            "message",
            "state",
            "data",
            "thread_id",
            "run_id",
            "metadata",
            "timestamp",
        }
    assert [c["data"] for n, c in events if n == "custom"] == [{"index": i} for i in range(3)]
    assert events[-1][1]["data"]["status"] == "success"
    assert events[3][1]["metadata"]["node"] == "talk"
    assert len({chunk["run_id"] for _, chunk in events}) == 1


async def test_sse_wire_format_is_event_and_data_lines_per_event(client):
    body = {"initial_state": {"events": 2}}
    async with client.stream("POST", "/v1/graph/stream", json=body) as response:
        raw = (await response.aread()).decode()
    blocks = [b for b in raw.replace("\r\n", "\n").split("\n\n") if b.strip()]
    for index, block in enumerate(blocks):
        lines = block.split("\n")
        assert len(lines) == 3
        assert lines[0] == f"id: {index}"  # the chunk's position in the run, to rejoin after
        assert lines[1].startswith("event: ")
        assert lines[2].startswith("data: ")
    assert blocks[-1].split("\n")[1] == "event: end"


async def test_events_arrive_as_they_happen_not_buffered(client):
    """Each custom event must reach the client while the node is still sleeping."""
    body = {"initial_state": {"events": 3, "async_sleep_s": 0.3}}
    arrivals = []
    loop = asyncio.get_running_loop()
    async with aconnect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
        async for event in source.aiter_sse():
            if event.event == "custom":
                arrivals.append(loop.time())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 3
    assert all(gap > 0.2 for gap in gaps)


async def test_ndjson_when_asked_for(client):
    body = {"messages": ["hi"], "initial_state": {"events": 1}}
    headers = {"accept": "application/x-ndjson"}
    async with client.stream("POST", "/v1/graph/stream", json=body, headers=headers) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        chunks = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [c["event"] for c in chunks][-1] == "end"
    assert "custom" in [c["event"] for c in chunks]


async def test_a_failing_node_gives_an_error_event_then_end_and_keeps_the_thread(client):
    thread = new_thread()
    await client.post(
        "/v1/graph/invoke", json={"messages": ["hi"], "config": {"thread_id": thread}}
    )
    events = await read_sse(
        client, {"initial_state": {"fail": True}, "config": {"thread_id": thread}}
    )
    assert [name for name, _ in events] == ["error", "end"]
    error = events[0][1]["data"]
    assert error["code"] == "node_failed"
    assert "node 'work' failed" in error["message"]
    assert events[1][1]["data"]["status"] == "error"
    state = (await client.get(f"/v1/threads/{thread}/state")).json()["data"]["state"]
    assert state["count"] == 1
    assert not state.get("fail")


async def test_an_interrupted_stream_says_so_in_its_events(client):
    events = await read_sse(client, {"initial_state": {"ask": True}})
    assert [name for name, _ in events][-2:] == ["interrupt", "end"]
    assert events[-1][1]["data"]["status"] == "interrupted"
    assert events[-1][1]["data"]["interrupts"][0]["value"] == {"question": "approve?"}


async def test_request_errors_come_before_the_stream_as_json(client):
    response = await client.post(
        "/v1/graph/stream", json={"resume": "x", "config": {"thread_id": new_thread()}}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nothing_to_resume"


@pytest.fixture(scope="module")
def pinging_server(tmp_path_factory: pytest.TempPathFactory):
    env = {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app", "AGENTFLOW_SSE_PING_S": "0.2"}
    running = start_server(tmp_path_factory.mktemp("pinging"), env)
    yield running
    running.stop()


async def test_a_silent_sse_stream_carries_ping_comments(pinging_server: Server):
    """While the node sleeps 1 s, the stream sends a comment line every 0.2 s (which SSE
    clients ignore), so proxies with idle timeouts keep it; NDJSON has no comments, so an
    NDJSON stream carries only its events."""
    body = {"initial_state": {"sleep_s": 1.0}}
    async with httpx.AsyncClient(base_url=pinging_server.url, timeout=30) as client:
        async with client.stream("POST", "/v1/graph/stream", json=body) as response:
            raw = (await response.aread()).decode()
        pings = [line for line in raw.splitlines() if line.startswith(":")]
        assert len(pings) >= 2
        assert set(pings) == {": ping"}
        # Pings fall between events (or after the last one), never inside one, and never
        # end an event of their own: a blank line after a ping is an empty event to some.
        blocks = [
            [line for line in block.splitlines() if not line.startswith(":")]
            for block in raw.split("\n\n")
        ]
        events = [block for block in blocks if block]
        assert all(len(block) == 3 for block in events)
        assert events[-1][1] == "event: end"
        assert len(events) == len(blocks) - 1  # only the text after the last event is empty
        async with aconnect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
            parsed = [event async for event in source.aiter_sse()]
        assert all(event.event and event.data for event in parsed)
        headers = {"accept": "application/x-ndjson"}
        async with client.stream(
            "POST", "/v1/graph/stream", json=body, headers=headers
        ) as response:
            lines = [line async for line in response.aiter_lines() if line]
        assert [json.loads(line)["event"] for line in lines][-1] == "end"
