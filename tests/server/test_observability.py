"""Development defaults, and what /metrics tells after some traffic."""

import re

import httpx


async def test_development_headers_and_docs(client):
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers
    assert "x-frame-options" not in response.headers
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/graph/invoke" in spec["paths"]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics_count_requests_runs_streams_and_checkpoints(client: httpx.AsyncClient):
    before = (await client.get("/metrics")).text
    invokes = (
        sample(before, "agentflow_http_requests_total", route="/v1/graph/invoke", status="200")
        if "/v1/graph/invoke" in before
        else 0
    )
    await client.post("/v1/graph/invoke", json={"messages": ["hi"]})
    async with client.stream(
        "POST", "/v1/graph/stream", json={"initial_state": {"events": 2}}
    ) as response:
        await response.aread()
    text = (await client.get("/metrics")).text
    assert (
        sample(
            text,
            "agentflow_http_requests_total",
            method="POST",
            route="/v1/graph/invoke",
            status="200",
        )
        == invokes + 1
    )
    assert (
        sample(text, "agentflow_http_request_duration_seconds_count", route="/v1/graph/invoke") >= 1
    )
    assert sample(text, "agentflow_runs_in_flight") == 0
    assert sample(text, "agentflow_run_duration_seconds_count", status="success") >= 2
    assert sample(text, "agentflow_stream_events_total", event="custom") >= 2
    assert sample(text, "agentflow_stream_events_total", event="end") >= 1
    assert sample(text, "agentflow_checkpointer_duration_seconds_count", operation="put") >= 4
    assert sample(text, "agentflow_thread_pool_queue_depth") >= 0
    unmatched = await client.get("/v1/no/such/route/123")
    assert unmatched.status_code == 404
    text = (await client.get("/metrics")).text
    assert "/v1/no/such/route/123" not in text  # concrete paths never become labels
