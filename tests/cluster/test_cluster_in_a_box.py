"""End to end: an applied AgentGraph serves HTTP/SSE from scaled replicas (real runtime
processes) sharing one Postgres/Redis checkpointer, through a Service."""

import json
import threading
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
import yaml

from agentflow.graph import message_text
from devbox.box import ClusterInABox
from tests.conftest import ROOT
from tests.polling import eventually

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
            message_text(answer.json()["data"]["messages"][-1])
            == "Order 1002 (coffee grinder) is processing."
        )
        with client.stream(
            "POST",
            "/v1/graph/stream",
            json={"messages": ["Where is my order 1001?"]},
            headers=token(),
        ) as stream:
            events = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
        assert events[-1] == "end"
        assert events.count("custom") >= 5


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
        state = client.get(f"/v1/threads/{thread}/state", headers=token()).json()["data"]["state"]
    print("replicas that served the thread:", served)
    assert len(set(served)) >= 2
    contents = [message_text(m) for m in state["messages"]]
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
    assert done > 0
    assert failures == []
    box.kubectl("scale", "ag/support-agent", "--replicas=3")
    eventually(
        lambda: ready(box) and len(box.processes("support-agent")) == 3,
        within_s=120,
        what="back to 3",
    )


def test_rotating_the_jwt_secret_under_load_rolls_the_pods_without_errors(box):
    eventually(lambda: ready(box), within_s=120, what="Ready")
    service = box.service("default", "support-agent")
    old_pods = set(box.processes("support-agent"))
    new_secret = "rotated-" + "r" * 56
    state = {"secret": SECRET, "statuses": [], "errors": [], "stop": False}

    def load() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            deadline = time.monotonic() + 120
            while not state["stop"] and time.monotonic() < deadline:
                try:
                    answer = client.post(
                        "/v1/graph/invoke",
                        json={"messages": ["hi"]},
                        headers=token(secret=state["secret"]),
                    )
                    state["statuses"].append(answer.status_code)
                except httpx.HTTPError as error:
                    state["errors"].append(repr(error))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1)
        template_before = box.get("/apis/apps/v1/namespaces/default/deployments/support-agent")[
            "spec"
        ]["template"]
        box.api.patch(
            "/api/v1/namespaces/default/secrets/support-agent-jwt",
            json={"stringData": {"secret": new_secret}},
            headers={"content-type": "application/merge-patch+json"},
        ).raise_for_status()
        eventually(
            lambda: (
                box.get("/apis/apps/v1/namespaces/default/deployments/support-agent")["spec"][
                    "template"
                ]
                != template_before
            ),
            what="the pod template to change (config hash)",
        )
        state["secret"] = new_secret  # the load re-signs once the rollout starts
        eventually(
            lambda: not (old_pods & set(box.processes("support-agent"))) and ready(box),
            within_s=180,
            what="every pod replaced",
        )
    finally:
        state["stop"] = True
        worker.join(60)
    assert state["errors"] == [], state["errors"][:5]
    assert not [s for s in state["statuses"] if s >= 500], sorted(set(state["statuses"]))
    assert state["statuses"].count(200) > 10
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for _ in range(6):  # every replica refuses the old key now
            assert (
                client.post(
                    "/v1/graph/invoke", json={"messages": ["hi"]}, headers=token()
                ).status_code
                == 401
            )
            assert (
                client.post(
                    "/v1/graph/invoke", json={"messages": ["hi"]}, headers=token(secret=new_secret)
                ).status_code
                == 200
            )


STREAMER = {
    "apiVersion": "agentflow.dev/v1alpha1",
    "kind": "AgentGraph",
    "metadata": {"name": "streamer", "namespace": "default"},
    "spec": {
        "graph": "tests.graphs.versatile:app",
        "image": "ghcr.io/agentflow/test-graphs:0.1.0",
        "replicas": 2,
        "mode": "development",
    },
}


def test_a_replica_killed_mid_stream_leaves_the_thread_to_another(box, tmp_path):
    manifest = tmp_path / "streamer.yaml"
    manifest.write_text(yaml.safe_dump(STREAMER))
    box.kubectl("apply", "-f", str(manifest))
    service = box.service("default", "streamer")
    eventually(lambda: len(service.endpoints) == 2, within_s=120, what="2 streamer endpoints")
    thread = "killed-mid-stream"
    body = {
        "initial_state": {"events": 200, "async_sleep_s": 0.05},
        "config": {"thread_id": thread},
    }
    seen, broken = [], None
    with httpx.Client(base_url=service.url, timeout=30) as client:
        try:
            with client.stream("POST", "/v1/graph/stream", json=body) as stream:
                victim = stream.headers["x-served-by"]
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line[7:])
                    if seen.count("custom") == 5:
                        box.nodes.kill(victim)
        except httpx.HTTPError as error:
            broken = error
        assert broken is not None or "end" not in seen, "the stream must not look finished"
        # The thread is free at once (the dead worker's lock went with its connection): resume.
        for _ in range(50):
            answer = client.post(
                "/v1/graph/invoke",
                json={
                    "initial_state": {"events": 0},
                    "config": {"thread_id": thread},
                    "response_granularity": "full",
                },
            )
            if answer.status_code == 200:
                break
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-served-by"] != victim or box.nodes.replicas[victim].restarts >= 1
        # An idempotent read may hit the dead pod before its endpoint goes: retry it, as
        # a client would (kube-proxy does not retry either).
        listed = eventually(
            lambda: (
                (
                    r := client.get(f"/v1/threads/{thread}/history", params={"limit": 100})
                ).status_code
                == 200
                and r
            ),
            what="the thread's history",
        )
        history = listed.json()["data"]["history"]
    steps = sorted(h["step"] for h in history)
    assert steps == list(range(len(steps)))  # one chain, no step twice
    assert [h["nodes"] for h in sorted(history, key=lambda h: h["step"])] == [
        ["work"],
        ["work"],
        ["talk"],
    ]
    assert (
        answer.json()["data"]["state"]["count"] == 2
    )  # the killed run's finished step counts once


def test_a_rollout_under_background_runs_finishes_every_run(box, tmp_path):
    """Runs keep arriving while a new image rolls out: the old pods finish (or hand back) the
    runs they hold before they exit, and every run ends in success, its finished nodes never
    run twice."""
    trace = tmp_path / "trace"
    queue = {
        "apiVersion": "agentflow.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": "queue", "namespace": "default"},
        "spec": {
            "graph": "tests.graphs.durable:app",
            "image": "ghcr.io/agentflow/test-graphs:0.1.0",
            "replicas": 2,
            "env": [{"name": "AGENTFLOW_TEST_TRACE", "value": str(trace)}],
        },
    }
    manifest = tmp_path / "queue.yaml"
    manifest.write_text(yaml.safe_dump(queue))
    box.kubectl("apply", "-f", str(manifest))
    service = box.service("default", "queue")
    eventually(lambda: len(service.endpoints) == 2, within_s=120, what="2 queue endpoints")
    old_pods = set(box.processes("queue"))
    runs: list[dict] = []
    refused: list[str] = []
    stop = threading.Event()

    def submit() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                body = {"initial_state": {"sleep_s": 1.5}, "config": {"thread_id": f"q{len(runs)}"}}
                try:
                    answer = client.post("/v1/graph/runs", json=body)
                except httpx.HTTPError as error:
                    refused.append(repr(error))
                    continue
                if answer.status_code == 202:
                    runs.append(answer.json()["data"])
                else:
                    refused.append(f"{answer.status_code} {answer.text}")
                time.sleep(0.1)

    worker = threading.Thread(target=submit)
    worker.start()
    try:
        eventually(lambda: len(runs) >= 10, what="runs in flight before the rollout")
        queue["spec"]["image"] = "ghcr.io/agentflow/test-graphs:0.1.1"
        manifest.write_text(yaml.safe_dump(queue))
        box.kubectl("apply", "-f", str(manifest))
        eventually(
            lambda: not (old_pods & set(box.processes("queue"))) and len(service.endpoints) == 2,
            within_s=180,
            what="every pod replaced",
        )
    finally:
        stop.set()
        worker.join(60)
    assert refused == [], refused[:5]
    assert len(runs) > 20

    def ended(run: dict) -> dict | None:
        path = f"/v1/threads/{run['thread_id']}/runs/{run['run_id']}"
        found = httpx.get(f"{service.url}{path}", timeout=30).json()["data"]
        return found if found["status"] not in ("pending", "running") else None

    outcomes = [
        eventually(lambda run=run: ended(run), within_s=120, what="the run") for run in runs
    ]
    assert {o["status"] for o in outcomes} == {"success"}
    lines = [line.split() for line in trace.read_text().splitlines()]
    for run in runs:
        done = [
            node for run_id, node, what, _ in lines if run_id == run["run_id"] and what == "done"
        ]
        assert done == ["first", "slow", "last"], (run["run_id"], done)


def test_an_image_the_node_cannot_run_is_refused_with_a_clear_status(box, tmp_path):
    unknown = {
        **STREAMER,
        "metadata": {"name": "unknown-image", "namespace": "default"},
        "spec": {**STREAMER["spec"], "image": "registry.example/other:1.0", "replicas": 1},
    }
    manifest = tmp_path / "unknown.yaml"
    manifest.write_text(yaml.safe_dump(unknown))
    box.kubectl("apply", "-f", str(manifest))
    path = "/apis/agentflow.dev/v1alpha1/namespaces/default/agentgraphs/unknown-image"

    def refused() -> dict | None:
        conditions = ((box.get(path) or {}).get("status") or {}).get("conditions", [])
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        return ready if ready and ready["reason"] == "ProgressDeadlineExceeded" else None

    condition = eventually(refused, within_s=60, what="the refusal in the status")
    assert condition["status"] == "False"
    assert "cannot run image 'registry.example/other:1.0'" in condition["message"]
    assert box.processes("unknown-image") == []


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
