"""Background runs over HTTP on one real server (in-memory stores): submit, read, list, wait,
stop, order on a thread, ownership, and signed webhooks delivered to a real receiver."""

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from agentflow.runtime.webhooks import verify
from tests.conftest import Server, free_port, start_server
from tests.polling import eventually
from tests.security.test_production_server import SECRET, Bearer

WEBHOOK_SECRET = "webhook-signing-secret-for-tests"
ALICE, BOB = Bearer("alice"), Bearer("bob")


@dataclass
class Receiver:
    """A webhook receiver on a loopback port: answers each POST with the next status of
    ``answers`` (then 200), and keeps what it received."""

    port: int
    answers: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver(free_port())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.received.append((dict(self.headers), body))
            self.send_response(found.answers.pop(0) if found.answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", found.port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield found
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def queue_server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("background"),
        {
            "AGENTFLOW_GRAPH": "tests.graphs.versatile:app",
            "JWT_SECRET_KEY": SECRET,
            "AGENTFLOW_WEBHOOK_ALLOWED_URLS": receiver.url,
            "AGENTFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        },
    )
    yield running
    running.stop()


@pytest.fixture
def client(queue_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=queue_server.url, timeout=30, headers=ALICE) as http:
        yield http


def submit(client: httpx.Client, thread_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", ["hello"])
    response = client.post("/v1/graph/runs", json={**body, "config": {"thread_id": thread_id}})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def wait(client: httpx.Client, run: dict[str, Any]) -> dict[str, Any]:
    path = f"/v1/threads/{run['thread_id']}/runs/{run['run_id']}/wait"
    response = client.get(path, params={"timeout": 20})
    assert response.status_code == 200, response.text
    ended: dict[str, Any] = response.json()["data"]
    return ended


def test_a_run_is_queued_at_once_and_its_outcome_kept(client):
    run = submit(client, "bg-basic", initial_state={"events": 2})
    assert run["status"] == "pending"
    assert run["attempts"] == 0
    assert run["result"] is None
    assert run["webhook"] is None
    ended = wait(client, run)
    assert ended["status"] == "success"
    assert ended["attempts"] == 1
    assert ended["ended_at"] >= ended["started_at"] >= ended["created_at"]
    result = ended["result"]
    assert result["values"]["count"] == 1
    assert result["next"] == []
    assert result["steps"] == 2
    assert result["messages"][-1]["content"] == [{"type": "text", "text": "count=1"}]
    read = client.get(f"/v1/threads/bg-basic/runs/{run['run_id']}").json()["data"]
    assert read == ended
    listed = client.get("/v1/threads/bg-basic/runs").json()["data"]["runs"]
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    state = client.get("/v1/threads/bg-basic/state").json()["data"]
    assert state["state"]["count"] == 1  # the thread is the run's, as after an invoke


def test_failures_and_interrupts_are_outcomes_too(client):
    failed = wait(client, submit(client, "bg-fail", initial_state={"fail": True}))
    assert failed["status"] == "error"
    assert failed["result"] is None
    assert failed["error"]["code"] == "node_failed"
    assert "the tool broke" in failed["error"]["message"]  # development mode: details shown
    parked = wait(client, submit(client, "bg-ask", initial_state={"ask": True}))
    assert parked["status"] == "interrupted"
    assert parked["result"]["interrupts"][0]["value"] == {"question": "approve?"}
    resumed = wait(client, submit(client, "bg-ask", messages=None, resume="yes"))
    assert resumed["status"] == "success"
    assert resumed["result"]["values"]["approved"] == "yes"


def test_runs_on_one_thread_execute_in_the_order_they_came(client):
    runs = [submit(client, "bg-order", initial_state={"async_sleep_s": 0.05, "events": 2})]
    runs += [submit(client, "bg-order") for _ in range(3)]
    ended = [wait(client, run) for run in runs]
    assert [r["status"] for r in ended] == ["success"] * 4
    starts = [r["started_at"] for r in ended]
    ends = [r["ended_at"] for r in ended]
    assert all(ends[i] <= starts[i + 1] for i in range(3))  # never two at once
    assert ended[-1]["result"]["values"]["count"] == 4


def test_a_background_run_is_stopped_as_any_run(client):
    run = submit(client, "bg-stop", initial_state={"events": 400, "async_sleep_s": 0.05})
    path = f"/v1/threads/bg-stop/runs/{run['run_id']}"
    eventually(lambda: client.get(path).json()["data"]["status"] == "running", 10, "running")
    stopped = client.post("/v1/graph/stop", json={"thread_id": "bg-stop"}).json()["data"]
    assert stopped["run_id"] == run["run_id"]
    ended = wait(client, run)
    assert ended["status"] == "stopped"
    assert ended["error"]["code"] == "run_stopped"


def test_another_subjects_runs_are_not_found(client):
    run = submit(client, "bg-mine")
    wait(client, run)
    theirs = client.get(f"/v1/threads/bg-mine/runs/{run['run_id']}", headers=BOB)
    absent = client.get("/v1/threads/bg-mine/runs/0123456789abcdef", headers=ALICE)
    assert theirs.status_code == absent.status_code == 404
    assert theirs.json()["error"] == {
        "code": "run_not_found",
        "message": f"thread 'bg-mine' has no background run '{run['run_id']}'",
    }
    assert client.get("/v1/threads/bg-mine/runs", headers=BOB).json()["data"]["runs"] == []
    refused = client.post(
        "/v1/graph/runs",
        json={"messages": ["hi"], "config": {"thread_id": "bg-mine"}},
        headers=BOB,
    )
    assert refused.status_code == 404  # alice's thread does not exist, for bob


def test_deleting_a_thread_deletes_its_runs(client):
    run = wait(client, submit(client, "bg-deleted"))
    assert client.delete("/v1/threads/bg-deleted").status_code == 200
    assert client.get(f"/v1/threads/bg-deleted/runs/{run['run_id']}").status_code == 404
    assert client.get("/v1/threads/bg-deleted/runs").json()["data"]["runs"] == []
    assert client.delete("/v1/threads/bg-deleted").status_code == 404  # nothing left


def test_bad_submissions_get_clear_errors(client):
    nothing = client.post("/v1/graph/runs", json={"config": {"thread_id": "bg-bad"}})
    assert nothing.status_code == 422
    for url in ("http://127.0.0.2:1/hooks/", "file:///etc/passwd", "http://user:pw@x/hooks/"):
        refused = client.post("/v1/graph/runs", json={"messages": ["hi"], "webhook": url})
        assert refused.status_code == 422, url
        assert refused.json()["error"]["code"] == "webhook_not_allowed"
    waited = client.get("/v1/threads/bg-bad/runs/0123456789abcdef/wait", params={"timeout": 0})
    assert waited.status_code == 422  # a wait of nothing
    unauthenticated = httpx.get(f"{client.base_url}/v1/threads/bg-bad/runs")
    assert unauthenticated.status_code == 401


def test_webhooks_are_signed_retried_and_their_delivery_shown(client, receiver):
    receiver.received.clear()
    receiver.answers[:] = [500, 503]
    run = submit(client, "bg-hook", webhook=receiver.url + "done")
    assert run["webhook"]["status"] == "pending"
    path = f"/v1/threads/bg-hook/runs/{run['run_id']}"

    def delivered() -> bool:
        return client.get(path).json()["data"]["webhook"]["status"] == "delivered"

    eventually(delivered, 30, "the webhook delivered")
    shown = client.get(path).json()["data"]
    assert shown["webhook"]["attempts"] == 3
    assert shown["webhook"]["last_error"] is None
    assert len(receiver.received) == 3
    for attempt, (headers, body) in enumerate(receiver.received, start=1):
        assert verify(WEBHOOK_SECRET.encode(), body, headers)
        assert headers["X-Agentflow-Delivery-Attempt"] == str(attempt)
        assert headers["X-Agentflow-Run-Id"] == run["run_id"]
        sent = json.loads(body)
        assert sent["run_id"] == run["run_id"]
        assert sent["status"] == "success"
    headers, body = receiver.received[0]
    assert not verify(b"another-secret", body, headers)
    assert not verify(WEBHOOK_SECRET.encode(), body + b" ", headers)
    assert not verify(WEBHOOK_SECRET.encode(), body, headers, now=time.time() + 3600)


def test_the_queue_is_in_the_metrics(client, receiver):
    wait(client, submit(client, "bg-metrics", webhook=receiver.url))

    def value(sample: str) -> float | None:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    assert (value("agentflow_background_run_claim_seconds_count") or 0) >= 1
    assert value('agentflow_background_runs{status="pending"}') is not None
    assert value('agentflow_background_runs{status="running"}') is not None
    assert value("agentflow_background_runs_resumed_total") == 0  # one process: never resumed
    delivered = 'agentflow_webhook_deliveries_total{outcome="delivered"}'
    eventually(lambda: (value(delivered) or 0) >= 1, what="a delivery counted")


def test_a_refused_webhook_is_not_retried(client, receiver):
    receiver.received.clear()
    receiver.answers[:] = [410]
    run = submit(client, "bg-gone", webhook=receiver.url)
    path = f"/v1/threads/bg-gone/runs/{run['run_id']}"

    def settled() -> bool:
        return client.get(path).json()["data"]["webhook"]["status"] != "pending"

    eventually(settled, 30, "the webhook settled")
    webhook = client.get(path).json()["data"]["webhook"]
    assert webhook == {
        "url": receiver.url,
        "status": "failed",
        "attempts": 1,
        "last_error": "the receiver answered 410",
        "delivered_at": None,
    }
