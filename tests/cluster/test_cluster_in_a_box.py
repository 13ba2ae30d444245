"""End to end: an applied AgentGraph serves HTTP/SSE from scaled replicas (real runtime
processes) sharing one Postgres/Redis checkpointer, through a Service."""

import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
import yaml

from tests.cluster.box import ClusterInABox
from tests.conftest import ROOT
from tests.kube.client import eventually

EXAMPLE = ROOT / "examples" / "agentgraph.yaml"
GRAPH = "/apis/agentflow.dev/v1alpha1/namespaces/default/agentgraphs/support-agent"
SECRET = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == "Secret")[
    "stringData"
]["secret"]


def token(subject: str = "alice", secret: str = SECRET) -> dict[str, str]:
    claims = {"sub": subject, "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, 'HS256')}"}


@pytest.fixture(scope="module")
def box(database_url: str, redis_url: str) -> Iterator[ClusterInABox]:
    with ClusterInABox(database_url, redis_url) as running:
        running.kubectl("apply", "-f", str(EXAMPLE))
        yield running


def ready(box: ClusterInABox) -> dict | None:
    graph = box.get(GRAPH) or {}
    condition = next(
        (c for c in (graph.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), None
    )
    return condition if condition and condition["status"] == "True" else None


def test_an_applied_graph_becomes_ready_and_serves_invoke_and_sse(box):
    condition = eventually(lambda: ready(box), within_s=120, what="the AgentGraph Ready")
    assert condition["message"] == "3/3 replicas ready"
    assert len(box.processes("support-agent")) == 3
    service = box.service("default", "support-agent")
    eventually(lambda: len(service.endpoints) == 3, what="3 endpoints")
    with httpx.Client(base_url=service.url, timeout=30) as client:
        answer = client.post(
            "/v1/graph/invoke", json={"messages": ["Where is my order 1002?"]}, headers=token()
        )
        assert answer.status_code == 200, answer.text
        assert (
            answer.json()["data"]["messages"][-1]["content"]
            == "Order 1002 (coffee grinder) is processing."
        )
        with client.stream(
            "POST",
            "/v1/graph/stream",
            json={"messages": ["Where is my order 1001?"]},
            headers=token(),
        ) as stream:
            events = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
        assert events[-1] == "end" and events.count("custom") >= 5


def test_a_threads_requests_cross_replicas_and_its_state_is_continuous(box):
    eventually(lambda: ready(box), within_s=120, what="Ready")
    service = box.service("default", "support-agent")
    thread = "crossing-replicas"
    served = []
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for turn in range(6):
            answer = client.post(
                "/v1/graph/invoke",
                json={
                    "messages": [f"turn {turn}: where is order 1003?"],
                    "config": {"thread_id": thread},
                },
                headers=token(),
            )
            assert answer.status_code == 200, answer.text
            served.append(answer.headers["x-served-by"])
        state = client.get(f"/v1/threads/{thread}/state", headers=token()).json()["data"]["values"]
    print("replicas that served the thread:", served)
    assert len(set(served)) >= 2
    contents = [m["content"] for m in state["messages"]]
    assert len(contents) == 12  # six turns, each a question and an answer, none lost or doubled
    assert contents[::2] == [f"turn {t}: where is order 1003?" for t in range(6)]


def test_scaling_up_and_down_loses_no_request(box):
    eventually(lambda: ready(box), within_s=120, what="Ready")
    service = box.service("default", "support-agent")
    box.kubectl("scale", "ag/support-agent", "--replicas=5")
    eventually(lambda: len(box.processes("support-agent")) == 5, within_s=120, what="5 processes")
    eventually(lambda: len(service.endpoints) == 5, within_s=60, what="5 endpoints")
    box.kubectl("scale", "ag/support-agent", "--replicas=1")
    failures, done = [], 0
    with httpx.Client(base_url=service.url, timeout=30) as client:
        deadline = time.monotonic() + 90
        while (
            len(box.processes("support-agent")) > 1 or len(service.endpoints) > 1
        ) and time.monotonic() < deadline:
            answer = client.post("/v1/graph/invoke", json={"messages": ["hello"]}, headers=token())
            done += 1
            if answer.status_code != 200:
                failures.append((answer.status_code, answer.text[:200]))
    assert len(box.processes("support-agent")) == 1
    assert done > 0 and failures == []
    box.kubectl("scale", "ag/support-agent", "--replicas=3")
    eventually(
        lambda: ready(box) and len(box.processes("support-agent")) == 3,
        within_s=120,
        what="back to 3",
    )


def test_deleting_the_graph_collects_everything_and_stops_every_process(box):
    eventually(lambda: ready(box), within_s=120, what="Ready")
    box.kubectl("delete", "ag/support-agent")
    eventually(
        lambda: box.get("/apis/apps/v1/namespaces/default/deployments/support-agent") is None,
        what="the Deployment collected",
    )
    assert box.get("/api/v1/namespaces/default/services/support-agent") is None
    eventually(
        lambda: box.processes("support-agent") == [], within_s=60, what="every replica process gone"
    )
    assert json.dumps(box.nodes.events).count("stopped") >= 3
