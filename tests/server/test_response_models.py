"""Every answer the server sends matches the response model its route declares (the models
``/openapi.json`` documents), errors included: the documentation cannot drift from the wire."""

import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from agentflow.runtime.routes import graph, health, threads
from agentflow.runtime.schemas import ERROR_RESPONSES, ErrorEnvelope

ROUTES = [r for m in (graph, threads, health) for r in m.router.routes if isinstance(r, APIRoute)]


def declared(method: str, path: str) -> type[BaseModel]:
    for route in ROUTES:
        if route.path == path and method in route.methods:
            assert route.response_model is not None, f"{method} {path} declares no model"
            return route.response_model  # type: ignore[no-any-return]
    raise AssertionError(f"no route {method} {path}")


def check(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if response.status_code >= 400 and path.startswith("/v1"):
        assert response.status_code in ERROR_RESPONSES, f"{response.status_code} undocumented"
        ErrorEnvelope.model_validate(body)
    else:
        declared(method, path).model_validate(body)
    return body


async def test_the_run_and_thread_answers_match_their_models(client):
    thread = f"t-{uuid.uuid4().hex[:12]}"
    state_path = "/v1/threads/{thread_id}/state"
    for granularity in ("low", "partial", "full"):
        response = await client.post(
            "/v1/graph/invoke",
            json={
                "messages": ["hi"],
                "config": {"thread_id": thread},
                "response_granularity": granularity,
            },
        )
        check(response, "POST", "/v1/graph/invoke")
    parked = await client.post(
        "/v1/graph/invoke", json={"initial_state": {"ask": True}, "config": {"thread_id": thread}}
    )
    assert check(parked, "POST", "/v1/graph/invoke")["data"]["interrupts"]
    check(await client.get(f"/v1/threads/{thread}/state"), "GET", state_path)
    updated = await client.put(f"/v1/threads/{thread}/state", json={"state": {"count": 9}})
    check(updated, "PUT", state_path)
    history = await client.get(f"/v1/threads/{thread}/history")
    assert check(history, "GET", "/v1/threads/{thread_id}/history")["data"]["history"]
    check(await client.get("/v1/threads"), "GET", "/v1/threads")
    check(await client.get("/v1/graph"), "GET", "/v1/graph")
    check(await client.delete(f"/v1/threads/{thread}/state"), "DELETE", state_path)


async def test_a_stop_answer_matches_its_model(client):
    thread = f"t-{uuid.uuid4().hex[:12]}"
    async with client.stream(
        "POST",
        "/v1/graph/stream",
        json={
            "initial_state": {"events": 200, "async_sleep_s": 0.05},
            "config": {"thread_id": thread},
        },
    ) as stream:
        async for _ in stream.aiter_lines():  # the run is registered once events flow
            break
        stopped = await client.post("/v1/graph/stop", json={"thread_id": thread})
        assert check(stopped, "POST", "/v1/graph/stop")["data"]["stopped"] is True


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/graph/invoke", {"recursion_limit": 0}),
        ("POST", "/v1/graph/invoke", {"nonsense": 1}),
        ("GET", "/v1/threads/no-such-thread", None),
        ("PUT", "/v1/threads/bad id/state", {"state": {}}),
        ("POST", "/v1/graph/stop", {}),
    ],
)
async def test_error_answers_match_the_documented_error_model(client, method, path, body):
    response = await client.request(method, path, json=body)
    assert response.status_code >= 400
    check(response, method, path)


async def test_operations_answers_match_their_models(client):
    for path in ("/ping", "/healthz", "/readyz"):
        check(await client.get(path), "GET", path)


async def test_openapi_documents_answers_not_only_requests(client):
    spec = (await client.get("/openapi.json")).json()
    invoke = spec["paths"]["/v1/graph/invoke"]["post"]["responses"]
    assert invoke["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "Envelope_InvokeResult_"
    )
    assert invoke["409"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
    stream = spec["paths"]["/v1/graph/stream"]["post"]["responses"]["200"]["content"]
    assert set(stream) == {"text/event-stream", "application/x-ndjson"}
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # 422 is documented as our error envelope
