"""Two worker processes over one Postgres and one Redis: any worker serves any request of any
thread, and no update is ever lost."""

import asyncio
import json
import os
import signal
import time
import uuid

import httpx
from httpx_sse import aconnect_sse

from agentflow.graph import message_text
from tests.conftest import Server, start_server
from tests.polling import eventually_async


def new_thread() -> str:
    return f"w-{uuid.uuid4().hex[:12]}"


async def invoke(url: str, thread: str, **body) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await client.post(
            "/v1/graph/invoke",
            json={
                "messages": ["hi"],
                "config": {"thread_id": thread},
                "response_granularity": "full",
                **body,
            },
        )


async def state_of(url: str, thread: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.get(f"/v1/threads/{thread}/state")
        assert response.status_code == 200, response.text
        return response.json()["data"]


async def test_a_thread_started_on_one_worker_continues_on_the_other(workers):
    a, b = workers
    thread = new_thread()
    first = await invoke(a.url, thread, messages=["on a"])
    second = await invoke(b.url, thread, messages=["on b"])
    assert first.json()["data"]["meta"]["is_new_thread"] is True
    data = second.json()["data"]
    assert data["meta"]["is_new_thread"] is False
    assert data["state"]["count"] == 2
    assert [message_text(m) for m in data["context"]] == ["on a", "count=1", "on b", "count=2"]
    history = (await state_of(a.url, thread))["step"]
    assert history == 3  # four checkpoints (0..3), one per step, in one chain


async def test_50_concurrent_requests_on_one_thread_lose_no_update(workers):
    thread = new_thread()
    await invoke(workers[0].url, thread)  # the thread exists: count 1
    responses = await asyncio.gather(
        *(invoke(workers[i % 2].url, thread, initial_state={"sleep_s": 0.02}) for i in range(50))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    refused = [r.json()["error"] for r in responses if r.status_code == 409]
    assert all(e["code"] == "thread_busy" for e in refused)
    succeeded = statuses.count(200)
    assert succeeded >= 1
    state = await state_of(workers[1].url, thread)
    assert state["state"]["count"] == 1 + succeeded  # every accepted run is in the state


async def test_enqueued_requests_wait_their_turn_across_workers(workers):
    thread = new_thread()
    responses = await asyncio.gather(
        *(
            invoke(
                workers[i % 2].url,
                thread,
                initial_state={"sleep_s": 0.02},
                multitask_strategy="enqueue",
            )
            for i in range(10)
        )
    )
    assert [r.status_code for r in responses] == [200] * 10
    assert (await state_of(workers[0].url, thread))["state"]["count"] == 10


async def read_stream(
    url: str, path: str, method: str = "GET", **kwargs
) -> list[tuple[str, str, dict]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        aconnect_sse(client, method, path, **kwargs) as source,
    ):
        assert source.response.status_code == 200, await source.response.aread()
        return [(e.id, e.event, json.loads(e.data)) async for e in source.aiter_sse()]


async def test_joining_a_run_from_the_other_worker_sees_every_event(workers):
    a, b = workers
    thread = new_thread()
    body = {
        "initial_state": {"events": 20, "async_sleep_s": 0.02},
        "config": {"thread_id": thread},
        "response_granularity": "full",  # every event, as a join sends them
    }
    original = asyncio.ensure_future(read_stream(a.url, "/v1/graph/stream", "POST", json=body))

    async def run_id_once_checkpointed() -> str | None:
        data = await state_of(a.url, thread)
        return None if data["state"] is None else data["run_id"]

    run_id = await eventually_async(run_id_once_checkpointed, what="the run's first checkpoint")
    joined = await read_stream(b.url, f"/v1/threads/{thread}/runs/{run_id}/stream")
    seen = await original
    assert [(i, e, c["data"]) for i, e, c in joined] == [(i, e, c["data"]) for i, e, c in seen]
    assert joined[-1][1] == "end"

    # Rejoin after the last event a client saw: only the rest comes.
    rest = await read_stream(
        b.url, f"/v1/threads/{thread}/runs/{run_id}/stream", headers={"Last-Event-ID": "5"}
    )
    assert [i for i, _, _ in rest] == [i for i, _, _ in seen][6:]


async def test_joining_an_unknown_run_is_a_404(workers):
    async with httpx.AsyncClient(base_url=workers[1].url) as client:
        response = await client.get(f"/v1/threads/{new_thread()}/runs/nothing/stream")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "run_not_found"


async def test_stop_from_the_other_worker_stops_the_run(workers):
    a, b = workers
    thread = new_thread()
    body = {"initial_state": {"events": 200, "async_sleep_s": 0.05}}
    running = asyncio.ensure_future(invoke(a.url, thread, **body))
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as client:

        async def stop() -> httpx.Response | None:
            """Until the run holds the thread, a stop finds nothing to stop."""
            answer = await client.post("/v1/graph/stop", json={"thread_id": thread})
            assert answer.status_code == 200, answer.text
            return answer if answer.json()["data"]["stopped"] else None

        await eventually_async(stop, what="a run to stop")
    response = await asyncio.wait_for(running, 10)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_stopped"
    assert "stopped by a stop request" in response.json()["error"]["message"]
    again = await invoke(b.url, thread, initial_state={"events": 0})  # free at once
    assert again.status_code == 200


async def test_a_worker_killed_mid_run_leaves_the_last_checkpoint_to_the_other(
    workers, env, tmp_path
):
    victim: Server = start_server(tmp_path, env)
    thread = new_thread()
    body = {"initial_state": {"events": 100, "async_sleep_s": 0.05}}
    running = asyncio.ensure_future(invoke(victim.url, thread, **body))

    async def first_step_stored() -> bool:
        return (await state_of(workers[0].url, thread))["state"] is not None

    await eventually_async(first_step_stored, what="the first step (work) checkpointed")
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    assert isinstance((await asyncio.gather(running, return_exceptions=True))[0], httpx.HTTPError)

    state = await state_of(workers[0].url, thread)
    assert state["state"]["count"] == 1
    assert [message_text(m) for m in state["state"]["messages"]] == ["hi"]  # talk never ran
    started = time.monotonic()
    resumed = await invoke(workers[1].url, thread, initial_state={"events": 0})
    assert resumed.status_code == 200, resumed.text  # no wait for a lease: the killer is gone
    assert time.monotonic() - started < 30
    assert resumed.json()["data"]["state"]["count"] == 2


async def test_a_joiner_of_a_run_whose_worker_died_is_told_so(workers, env, tmp_path):
    """Within WORKER_TTL_S (10 s) of the kill, not when the log expires (600 s): the joiner
    gets an error naming what happened and an end, neither with an id of its own, so the
    client's last event id stays that of the last event of the run it saw."""
    victim: Server = start_server(tmp_path, env)
    thread = new_thread()
    body = {"initial_state": {"events": 1000, "async_sleep_s": 0.05}}
    running = asyncio.ensure_future(invoke(victim.url, thread, **body))

    async def run_id_once_checkpointed() -> str | None:
        data = await state_of(workers[0].url, thread)
        return None if data["state"] is None else data["run_id"]

    run_id = await eventually_async(run_id_once_checkpointed, what="the run's first checkpoint")
    joined: list[tuple[str, str, dict]] = []

    async def join() -> None:
        path = f"/v1/threads/{thread}/runs/{run_id}/stream"
        async with (
            httpx.AsyncClient(base_url=workers[1].url, timeout=60) as client,
            aconnect_sse(client, "GET", path) as source,
        ):
            async for event in source.aiter_sse():
                joined.append((event.id, event.event, json.loads(event.data)))

    joining = asyncio.ensure_future(join())

    async def following_live() -> bool:
        return sum(event == "custom" for _, event, _ in joined) >= 3

    await eventually_async(following_live, what="the joiner reading live events")
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    await asyncio.gather(running, return_exceptions=True)

    await asyncio.wait_for(joining, 60)
    assert [event for _, event, _ in joined[-2:]] == ["error", "end"]
    assert joined[-3][0] == joined[-2][0] == joined[-1][0] != ""
    error = joined[-2][2]["data"]
    assert error["code"] == "run_abandoned"
    assert error["message"] == (
        f"the worker running run {run_id} stopped before the run ended; the thread keeps its "
        "last checkpoint"
    )
