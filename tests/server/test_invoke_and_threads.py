"""Invoke, thread continuation, interrupt/resume and the thread endpoints over real HTTP."""

import uuid

import httpx

from agentflow.graph import message_text


def new_thread() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def invoke(client: httpx.AsyncClient, **body) -> httpx.Response:
    return await client.post("/v1/graph/invoke", json=body)


async def test_invoke_answers_in_the_agentflow_envelope(client):
    response = await invoke(client, messages=["hello"], response_granularity="full")
    assert response.status_code == 200
    body = response.json()
    data = body["data"]
    assert data["meta"]["is_new_thread"] is True
    assert data["meta"]["status"] == "success"
    assert len(data["meta"]["thread_id"]) > 0
    assert len(data["meta"]["run_id"]) > 0
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["state"]["count"] == 1
    assert set(body["metadata"]) == {"request_id", "timestamp", "message"}
    assert response.headers["x-request-id"] == body["metadata"]["request_id"]


async def test_granularity_chooses_what_comes_back(client):
    low = (await invoke(client, messages=["x"])).json()["data"]
    partial = (await invoke(client, messages=["x"], response_granularity="partial")).json()["data"]
    assert low["state"] is None
    assert [m["role"] for m in low["messages"]] == ["user", "assistant"]  # the run's messages
    assert low["context"] is None
    assert [m["role"] for m in partial["context"]] == ["user", "assistant"]
    assert "messages" not in partial["state"]
    assert partial["state"]["count"] == 1


async def test_a_thread_continues_from_its_latest_checkpoint(client):
    thread = new_thread()
    first = await invoke(client, messages=["one"], config={"thread_id": thread})
    second = await invoke(
        client, messages=["two"], config={"thread_id": thread}, response_granularity="full"
    )
    assert first.json()["data"]["meta"]["is_new_thread"] is True
    data = second.json()["data"]
    assert data["meta"]["is_new_thread"] is False
    assert data["state"]["count"] == 2
    assert [message_text(m) for m in data["context"]] == ["one", "count=1", "two", "count=2"]
    assert [message_text(m) for m in data["messages"]] == ["two", "count=2"]  # this run's


async def test_interrupt_then_resume_over_http(client):
    thread = new_thread()
    parked = await invoke(client, initial_state={"ask": True}, config={"thread_id": thread})
    data = parked.json()["data"]
    assert data["meta"]["status"] == "interrupted"
    assert data["interrupts"][0]["value"] == {"question": "approve?"}
    assert data["next"] == ["approve"]

    state = (await client.get(f"/v1/threads/{thread}/state")).json()["data"]
    assert state["interrupts"][0]["node"] == "approve"
    assert state["next"] == ["approve"]

    resumed = await invoke(
        client, resume="yes", config={"thread_id": thread}, response_granularity="full"
    )
    data = resumed.json()["data"]
    assert data["meta"]["status"] == "success"
    assert data["state"]["approved"] == "yes"
    assert data["state"]["count"] == 1  # work did not run again: it continued at approve


async def test_a_resume_of_null_is_a_resume(client):
    thread = new_thread()
    await invoke(client, initial_state={"ask": True}, config={"thread_id": thread})
    resumed = await invoke(client, resume=None, config={"thread_id": thread})
    assert resumed.json()["data"]["meta"]["status"] == "success"


async def test_config_extras_reach_nodes_as_metadata_and_are_accepted(client):
    response = await invoke(
        client, messages=["x"], config={"user_id": "u1", "thread_id": new_thread()}
    )
    assert response.status_code == 200


async def test_thread_state_history_list_update_and_delete(client):
    thread = new_thread()
    await invoke(client, messages=["hi"], config={"thread_id": thread})

    state = await client.get(f"/v1/threads/{thread}/state")
    assert state.status_code == 200
    assert state.json()["data"]["state"]["count"] == 1

    history = (await client.get(f"/v1/threads/{thread}/history")).json()["data"]["history"]
    assert [h["nodes"] for h in history] == [["talk"], ["work"]]  # newest first, one per step
    limited = await client.get(f"/v1/threads/{thread}/history", params={"limit": 1})
    assert len(limited.json()["data"]["history"]) == 1

    listed = (await client.get("/v1/threads", params={"limit": 1000})).json()["data"]["threads"]
    assert thread in [t["thread_id"] for t in listed]

    updated = await client.put(f"/v1/threads/{thread}/state", json={"state": {"count": 10}})
    assert updated.status_code == 200
    assert updated.json()["data"]["state"]["count"] == 10
    assert updated.json()["data"]["source"] == "update"
    again = await invoke(
        client, messages=["again"], config={"thread_id": thread}, response_granularity="full"
    )
    assert again.json()["data"]["state"]["count"] == 11  # the reducer adds to the set value

    deleted = await client.delete(f"/v1/threads/{thread}/state")
    assert deleted.status_code == 200
    assert deleted.json()["data"]["success"] is True
    assert (await client.get(f"/v1/threads/{thread}/state")).json()["data"] == {"state": None}
    assert (await client.delete(f"/v1/threads/{thread}/state")).status_code == 404


async def test_put_state_creates_a_thread_and_normalises_messages(client):
    thread = new_thread()
    response = await client.put(
        f"/v1/threads/{thread}/state", json={"state": {"messages": ["seeded"]}}
    )
    values = response.json()["data"]["state"]
    assert values["messages"][0]["role"] == "user"
    assert values["messages"][0]["message_id"]
    assert values["messages"][0]["content"] == [{"type": "text", "text": "seeded"}]


async def test_graph_description_and_probes(client):
    graph = (await client.get("/v1/graph")).json()["data"]
    assert [n["id"] for n in graph["nodes"]] == ["__start__", "work", "approve", "talk", "__end__"]
    assert (await client.get("/ping")).json()["data"] == "pong"
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["checkpointer"] == "ok"
