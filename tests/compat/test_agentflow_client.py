"""Drop-in for agentflow's clients: every endpoint its TypeScript client calls, sent as that
client sends it, and every field it reads (10xHub/agentflow-client: src/endpoints/*.ts,
src/message.ts, src/errors.ts). A front end's client in Node (agentflow_client.mjs) runs the
remote-tool loop of invoke and stream with fetch, as that client does."""

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Server, agentflow_command, start_server

EXAMPLE = ROOT / "examples" / "agentflow.json"
# What the client sends by default with every JSON request.
HEADERS = {"Content-Type": "application/json", "accept": "application/json"}


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("compat"), {"AGENTFLOW_GRAPH": "tests.graphs.remote_tools:app"}
    )
    yield server
    server.stop()


@pytest.fixture
def http(remote: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=remote.url, headers=HEADERS, timeout=30) as client:
        yield client


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "metadata"}
    assert {"request_id", "timestamp", "message"} <= set(body["metadata"])
    return body["data"]


def client_message(text: str, role: str = "user") -> dict[str, Any]:
    """A message as the client's serializeMessage sends it to invoke and stream."""
    return {"role": role, "content": [{"type": "text", "text": text}], "message_id": "0"}


def say(http: httpx.Client, name: str, text: str) -> dict[str, Any]:
    """Invoke on thread ``name`` with one user message, as the client does."""
    body = {"messages": [client_message(text)], "config": {"thread_id": name}}
    answer: dict[str, Any] = data(http.post("/v1/graph/invoke", json=body))
    return answer


def thread() -> str:
    return f"compat-{uuid.uuid4().hex[:10]}"


def assert_agentflow_message(message: dict[str, Any]) -> None:
    assert isinstance(message["content"], list)  # the client calls content.some(...)
    assert all(isinstance(block["type"], str) for block in message["content"])
    assert message["role"] in ("user", "assistant", "system", "tool")
    assert isinstance(message["message_id"], str)
    assert message["message_id"] != "0"
    assert isinstance(message["timestamp"], int | float)


def test_ping_graph_and_state_schema(http):
    assert data(http.get("/ping")) == "pong"
    graph = data(http.get("/v1/graph"))
    assert {"node_count", "edge_count", "checkpointer", "state_fields"} <= set(graph["info"])
    assert [n["name"] for n in graph["nodes"]] == ["__start__", "agent", "__end__"]
    assert all({"id", "source", "target"} <= set(edge) for edge in graph["edges"])
    schema = data(http.get("/v1/graph:StateSchema"))
    assert schema["type"] == "object"
    assert "messages" in schema["properties"]


def test_invoke_returns_agentflow_messages_and_meta(http):
    name = thread()
    body = {
        "messages": [client_message("weather?")],
        "config": {"thread_id": name},
        "recursion_limit": 25,
        "response_granularity": "full",
    }
    answer = data(http.post("/v1/graph/invoke", json=body))
    assert {"messages", "state", "context", "summary", "meta"} <= set(answer)
    assert answer["meta"]["is_new_thread"] is True
    assert answer["meta"]["thread_id"] == name
    for message in answer["messages"]:
        assert_agentflow_message(message)
    call = answer["messages"][-1]["content"][0]
    assert call == {
        "type": "remote_tool_call",
        "id": "call-1",
        "name": "weather",
        "args": {"city": "Paris"},
    }
    # The client sends back only the tool result, with the same config.
    result = {
        "role": "tool",
        "content": [
            {
                "type": "tool_result",
                "call_id": "call-1",
                "output": "sunny",
                "is_error": False,
                "status": "completed",
            }
        ],
        "message_id": "0",
    }
    body = {
        "messages": [result],
        "config": {"thread_id": name},
        "recursion_limit": 25,
        "response_granularity": "full",
    }
    final = data(http.post("/v1/graph/invoke", json=body))
    assert final["meta"]["is_new_thread"] is False
    assert final["messages"][-1]["content"] == [{"type": "text", "text": "the tool said: sunny"}]


def test_the_thread_endpoints_answer_as_the_client_reads_them(http):
    name = thread()
    say(http, name, "hi")
    state = data(http.get(f"/v1/threads/{name}/state"))
    assert [m["role"] for m in state["state"]["messages"]] == ["user", "assistant"]
    details = data(http.get(f"/v1/threads/{name}"))["thread_data"]["thread"]
    assert details["thread_id"] == name
    assert datetime.fromisoformat(details["updated_at"]).year >= 2026  # not 1970 in a browser
    listed = data(http.get("/v1/threads", params={"search": name[-6:], "offset": 0, "limit": 10}))
    assert [t["thread_id"] for t in listed["threads"]] == [name]
    assert {"thread_name", "user_id", "metadata", "updated_at", "run_id"} <= set(
        listed["threads"][0]
    )

    # updateThreadState sends both config and state; a key set is replaced, not reduced.
    replaced = {"messages": [client_message("replaced")]}
    updated = http.put(
        f"/v1/threads/{name}/state", json={"config": {"thread_id": name}, "state": replaced}
    )
    assert [m["content"][0]["text"] for m in data(updated)["state"]["messages"]] == ["replaced"]
    say(http, name, "hi")

    messages = data(http.get(f"/v1/threads/{name}/messages", params={"offset": 0, "limit": 10}))[
        "messages"
    ]
    assert [m["role"] for m in messages] == ["user", "user", "assistant"]
    first = messages[0]["message_id"]
    assert data(http.get(f"/v1/threads/{name}/messages/{first}"))["message_id"] == first
    searched = data(http.get(f"/v1/threads/{name}/messages", params={"search": "REPL"}))["messages"]
    assert [m["message_id"] for m in searched] == [first]

    # addThreadMessages sends the client's Message objects as they are.
    sent = {
        "message_id": None,
        "role": "user",
        "content": [{"type": "text", "text": "added", "annotations": []}],
        "delta": False,
        "timestamp": 1_764_633_600_000,
        "metadata": {},
    }
    added = data(
        http.post(
            f"/v1/threads/{name}/messages", json={"config": {}, "messages": [sent], "metadata": {}}
        )
    )
    assert added["success"] is True
    messages = data(http.get(f"/v1/threads/{name}/messages"))["messages"]
    assert messages[-1]["content"][0]["text"] == "added"

    # deleteThreadMessage and deleteThread are DELETEs with a JSON body.
    gone = http.request("DELETE", f"/v1/threads/{name}/messages/{first}", json={"config": {}})
    assert data(gone)["success"] is True
    assert first not in [
        m["message_id"] for m in data(http.get(f"/v1/threads/{name}/messages"))["messages"]
    ]
    assert (
        data(http.request("DELETE", f"/v1/threads/{name}", json={"config": {}}))["success"] is True
    )
    assert data(http.get(f"/v1/threads/{name}/state")) == {"state": None}


def test_clear_thread_state_and_an_idempotent_stop(http):
    name = thread()
    say(http, name, "hi")
    cleared = data(http.delete(f"/v1/threads/{name}/state"))
    assert cleared["success"] is True
    assert cleared["data"] is True
    stopped = data(http.post("/v1/graph/stop", json={"thread_id": name, "config": {}}))
    assert stopped["ok"] is True
    assert stopped["running"] is False


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/threads/nobody-here", None, 404),
        ("POST", "/v1/graph/invoke", {}, 422),
        ("POST", "/v1/graph/invoke", {"messages": []}, 422),
        ("POST", "/v1/graph/invoke", {"messages": [{"role": "bogus", "content": []}]}, 422),
        ("POST", "/v1/graph/invoke", {"messages": ["x"], "recursion_limit": 0}, 422),
        ("GET", "/v1/nothing", None, 404),
    ],
)
def test_errors_carry_both_objects_the_client_reads(http, method, path, body, status):
    response = http.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["metadata"]["request_id"]
    assert error["metadata"]["timestamp"]
    assert error["error"]["code"]
    assert error["error"]["message"]
    if status == 422:
        assert all({"loc", "msg", "type"} <= set(d) for d in error["error"]["details"])


def test_a_front_end_client_in_node_runs_the_remote_tool_loop_over_invoke_and_stream(remote):
    name = thread()
    script = ROOT / "tests" / "compat" / "agentflow_client.mjs"
    run = subprocess.run(
        ["node", str(script), remote.url, name], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    invoked = seen["invoked"]
    assert [round["iteration"] for round in invoked] == [1, 2]  # a tool call, then the answer
    assert invoked[-1]["messages"][-1]["content"] == [
        {"type": "text", "text": "the tool said: sunny in Paris"}
    ]
    assert all(
        {"messages", "state", "context", "summary", "meta"} <= set(r["keys"]) for r in invoked
    )
    streamed = seen["streamed"]
    assert len(streamed) == 2
    assert streamed[-1]["events"][-1] == "end"
    assert streamed[-1]["messages"][-1]["content"][0]["text"] == "the tool said: sunny in Paris"
    assert [m["role"] for m in seen["state"]["state"]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert seen["updatedAt"] >= 2026
    assert seen["stopped"]["data"]["running"] is False


def graph_server(kind: str, tmp_path: Path) -> Server:
    """A server of the example graph, of `agentflow init`'s template, or of a graph whose
    nodes return plain strings."""
    if kind == "example":
        return start_server(tmp_path, {"AGENTFLOW_GRAPH": "", "GRAPH_PATH": str(EXAMPLE)})
    if kind == "template":
        project = tmp_path / "starter"
        subprocess.run(agentflow_command("init", str(project)), check=True, capture_output=True)
        return start_server(tmp_path, {"AGENTFLOW_GRAPH": ""}, cwd=project)
    return start_server(tmp_path, {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"})


@pytest.mark.parametrize("kind", ["example", "template", "plain strings"])
def test_every_route_answers_agentflow_messages(kind, tmp_path):
    server = graph_server(kind, tmp_path)
    name = thread()
    try:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as http:
            answer = say(http, name, "Where is my order 1002?")
            body = {"messages": [client_message("thanks")], "config": {"thread_id": name}}
            ndjson = {"Accept": "application/x-ndjson, application/json"}
            streamed = http.post("/v1/graph/stream", json=body, headers=ndjson)
            chunks = [json.loads(line) for line in streamed.text.splitlines() if line]
            state = data(http.get(f"/v1/threads/{name}/state"))["state"]
            listed = data(http.get(f"/v1/threads/{name}/messages"))["messages"]
            history = data(http.get(f"/v1/threads/{name}/history"))["history"]
    finally:
        server.stop()
    everywhere = [
        *answer["messages"],
        *(c["message"] for c in chunks if c["message"]),
        *state["messages"],
        *listed,
        *(m for h in history for m in h["state"]["messages"]),
    ]
    assert {m["role"] for m in answer["messages"]} >= {"user", "assistant"}
    assert any(c["message"] for c in chunks)
    for message in everywhere:
        assert_agentflow_message(message)
