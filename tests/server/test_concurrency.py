"""Many runs at once: the event loop stays free, a thread runs one run at a time, runs can be
stopped, and a client that leaves a stream leaves nothing running behind."""

import asyncio
import json
import uuid

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.polling import eventually_async
from tests.server.test_observability import sample


def new_thread() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


async def thread_exists(client: httpx.AsyncClient, thread: str) -> bool:
    return (await client.get(f"/v1/threads/{thread}/state")).json()["data"]["state"] is not None


async def thread_is_free(client: httpx.AsyncClient, thread: str) -> bool:
    """Whether no run holds the thread: setting state needs the thread (409 while a run has
    it). Unlike a stop request, asking does not end the run."""
    probe = await client.put(f"/v1/threads/{thread}/state", json={"state": {"fail": False}})
    assert probe.status_code in (200, 409), probe.text
    return probe.status_code == 200


async def in_flight(client: httpx.AsyncClient, runs: int) -> str | None:
    """The server's metrics once ``runs`` runs are in progress at once."""
    metrics = (await client.get("/metrics")).text
    return metrics if sample(metrics, "agentflow_runs_in_flight") >= runs else None


async def test_healthz_answers_while_20_runs_block_in_sync_nodes(server):
    """20 runs each sit in time.sleep(3) in a sync node. Were sync nodes run on the event loop,
    nothing would answer until they were done, one after another; run in the pool, all 20
    are in flight at once, none waits for a thread, and /healthz answers meanwhile."""
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        runs = [
            asyncio.ensure_future(
                client.post("/v1/graph/invoke", json={"initial_state": {"sleep_s": 3.0}})
            )
            for _ in range(20)
        ]
        metrics = await eventually_async(lambda: in_flight(client, 20), what="20 runs in flight")
        assert sample(metrics, "agentflow_thread_pool_queue_depth") == 0
        for _ in range(5):
            assert (await client.get("/healthz")).status_code == 200
        assert not any(run.done() for run in runs), "the probes must overlap the runs"
        responses = await asyncio.gather(*runs)
    assert [r.status_code for r in responses] == [200] * 20


async def thread_is_busy(client: httpx.AsyncClient, thread: str) -> bool:
    """Whether a run holds the thread (409 to a state change; 404 before it exists)."""
    probe = await client.put(f"/v1/threads/{thread}/state", json={"state": {}})
    return probe.status_code == 409


async def test_a_second_run_on_a_busy_thread_gets_409(client):
    thread = new_thread()
    slow = asyncio.ensure_future(
        client.post(
            "/v1/graph/invoke",
            json={"initial_state": {"sleep_s": 2}, "config": {"thread_id": thread}},
        )
    )
    await eventually_async(lambda: thread_is_busy(client, thread), what="the first run started")
    busy = await client.post(
        "/v1/graph/invoke", json={"messages": ["hi"], "config": {"thread_id": thread}}
    )
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "thread_busy"
    assert thread in busy.json()["error"]["message"]
    assert (await slow).status_code == 200
    again = await client.post(
        "/v1/graph/invoke", json={"messages": ["hi"], "config": {"thread_id": thread}}
    )
    assert again.status_code == 200  # the slot is free once the first run ended


async def test_stop_cancels_a_running_invoke(client):
    thread = new_thread()
    body = {
        "initial_state": {"events": 200, "async_sleep_s": 0.05},
        "config": {"thread_id": thread},
    }
    running = asyncio.ensure_future(client.post("/v1/graph/invoke", json=body))
    # Its first step checkpointed: the run is in its second (ten seconds of events).
    await eventually_async(lambda: thread_exists(client, thread), what="the first step")
    stopped = await client.post("/v1/graph/stop", json={"thread_id": thread})
    assert stopped.status_code == 200
    assert stopped.json()["data"]["stopped"] is True
    response = await asyncio.wait_for(running, 5)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_stopped"
    assert stopped.json()["data"]["run_id"] in response.json()["error"]["message"]
    # The step before the stop was checkpointed; the stopped step was not.
    values = (await client.get(f"/v1/threads/{thread}/state")).json()["data"]["state"]
    assert values["count"] == 1
    assert len(values["messages"]) == 0
    # Stopping again is not an error (agentflow's client throws on one): nothing was running.
    nothing = await client.post("/v1/graph/stop", json={"config": {"thread_id": thread}})
    assert nothing.status_code == 200
    assert nothing.json()["data"]["stopped"] is False
    assert nothing.json()["data"]["run_id"] is None


async def test_stop_ends_a_stream_with_an_error_event(client):
    thread = new_thread()
    body = {
        "initial_state": {"events": 200, "async_sleep_s": 0.05},
        "config": {"thread_id": thread},
    }
    events = []
    async with aconnect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
        async for event in source.aiter_sse():
            events.append((event.event, json.loads(event.data)))
            if event.event == "custom" and event.data and len(events) == 4:
                await client.post("/v1/graph/stop", json={"thread_id": thread})
    assert [name for name, _ in events[-2:]] == ["error", "end"]
    assert events[-2][1]["data"]["code"] == "run_stopped"


async def test_a_client_leaving_a_stream_cancels_its_run_and_frees_the_thread(client):
    thread = new_thread()
    body = {
        "initial_state": {"events": 100, "async_sleep_s": 0.05},
        "config": {"thread_id": thread},
    }
    async with aconnect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
        async for event in source.aiter_sse():
            if event.event == "custom":
                break  # leave mid-stream
    await eventually_async(lambda: thread_exists(client, thread))

    # The thread is free only once the run's task has ended: it cannot add anything later.
    await eventually_async(lambda: thread_is_free(client, thread))
    values = (await client.get(f"/v1/threads/{thread}/state")).json()["data"]["state"]
    assert values["count"] == 1
    assert values["messages"] == []


@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson"])
async def test_a_client_leaving_while_the_node_is_silent_cancels_the_run_at_once(client, accept):
    """The run sends one event, then waits 20 s without a word. Noticing the departure only at
    the next write would keep the thread busy all that time; the server must notice the
    disconnect itself."""
    thread = new_thread()
    body = {
        "initial_state": {"events": 2, "async_sleep_s": 20},
        "config": {"thread_id": thread},
    }
    headers = {"accept": accept}
    async with client.stream("POST", "/v1/graph/stream", json=body, headers=headers) as response:
        async for line in response.aiter_lines():
            if "custom" in line:
                break  # leave while the node sleeps

    await eventually_async(lambda: thread_is_free(client, thread), within_s=5)


async def test_on_disconnect_continue_lets_the_run_finish(client):
    thread = new_thread()
    body = {
        "initial_state": {"events": 10, "async_sleep_s": 0.02},
        "config": {"thread_id": thread},
        "on_disconnect": "continue",
    }
    async with aconnect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
        async for event in source.aiter_sse():
            if event.event == "custom":
                break

    async def answered() -> bool:
        response = await client.get(f"/v1/threads/{thread}/state")
        return (
            response.status_code == 200 and len(response.json()["data"]["state"]["messages"]) == 1
        )

    await eventually_async(answered)
