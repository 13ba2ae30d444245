"""A production server with JWT auth, run for real: what each caller gets, and what the logs
(never) contain."""

import json
import time
import uuid
from collections.abc import Iterator, Mapping

import httpx
import jwt
import pytest

from tests.conftest import Server, leaks_in, start_server
from tests.polling import eventually
from tests.services import with_database

SECRET = "production-secret-" + "k" * 46  # 64 bytes
OTHER_SECRET = "some-other-secret-" + "q" * 46
DSN_PASSWORD = "dsn-pass-7b1e"  # local Postgres trusts loopback: any password is accepted
ALLOWED = "https://app.example"


def bearer(subject: str, secret: str = SECRET, **claims: object) -> dict[str, str]:
    payload = {"sub": subject, "exp": int(time.time()) + 300, **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, secret, 'HS256')}"}


class Bearer(Mapping[str, str]):
    """``Authorization`` headers for a subject, with a token minted when they are read (each
    request): no test depends on when this module was imported."""

    def __init__(self, subject: str) -> None:
        self.subject = subject

    def __getitem__(self, name: str) -> str:
        return bearer(self.subject)[name]

    def __iter__(self) -> Iterator[str]:
        return iter(["Authorization"])

    def __len__(self) -> int:
        return 1


ALICE, BOB = Bearer("alice"), Bearer("bob")


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[Server]:
    database = with_database(
        database_url.replace("postgres@", f"postgres:{DSN_PASSWORD}@"),
        database_url.rsplit("/", 1)[1],
    )
    env = {
        "AGENTFLOW_GRAPH": "tests.graphs.versatile:app",
        "MODE": "production",
        "JWT_SECRET_KEY": SECRET,
        "ORIGINS": ALLOWED,
        "CHECKPOINTER": "postgres",
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "AGENTFLOW_GRAPH_ID": f"secured-{uuid.uuid4().hex[:8]}",
    }
    server = start_server(tmp_path_factory.mktemp("secured"), env)
    yield server
    server.stop()


@pytest.fixture
def client(secured: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.url, timeout=30) as http:
        yield http


def error_of(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def test_probes_and_metrics_stay_open(client):
    for path in ("/ping", "/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/graph"),
        ("GET", "/v1/threads"),
        ("POST", "/v1/graph/invoke"),
        ("POST", "/v1/graph/stream"),
        ("GET", "/v1/threads/t/state"),
        ("POST", "/v1/graph/stop"),
        ("GET", "/v1/no-such-route"),  # no route enumeration without a token
    ],
)
def test_every_v1_route_needs_a_token(client, method, path):
    response = client.request(method, path, json={})
    error_of(response, 401, "missing_token")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_bad_tokens_are_refused_saying_why(client):
    cases = {
        "malformed_authorization": {"Authorization": "Token abc"},
        "malformed_token": {"Authorization": "Bearer abc.def"},
        "bad_signature": bearer("alice", OTHER_SECRET),
        "token_expired": bearer("alice", exp=int(time.time()) - 5),
    }
    for code, headers in cases.items():
        response = client.get("/v1/threads", headers=headers)
        error_of(response, 401, code)
    # Two Authorization headers: a proxy may have checked either; both are refused.
    twice = [("Authorization", ALICE["Authorization"]), ("Authorization", "Bearer x.y.z")]
    error_of(client.get("/v1/threads", headers=twice), 401, "malformed_authorization")
    assert client.get("/v1/threads", headers=ALICE).status_code == 200  # still serving


def test_threads_belong_to_their_subject(client):
    thread = f"own-{uuid.uuid4().hex[:8]}"
    body = {"messages": ["hi"], "config": {"thread_id": thread}}
    assert client.post("/v1/graph/invoke", json=body, headers=ALICE).status_code == 200

    # As for a thread that does not exist: agentflow's null state.
    assert client.get(f"/v1/threads/{thread}/state", headers=BOB).json()["data"] == {"state": None}
    assert client.get(f"/v1/threads/{thread}/messages", headers=BOB).json()["data"] == {
        "messages": []
    }
    not_yours = [
        client.get(f"/v1/threads/{thread}", headers=BOB),
        client.get(f"/v1/threads/{thread}/history", headers=BOB),
        client.delete(f"/v1/threads/{thread}", headers=BOB),
        client.post(f"/v1/threads/{thread}/messages", json={"messages": ["x"]}, headers=BOB),
        client.put(f"/v1/threads/{thread}/state", json={"state": {"count": 99}}, headers=BOB),
        client.delete(f"/v1/threads/{thread}/state", headers=BOB),
        client.post("/v1/graph/invoke", json=body, headers=BOB),
        client.post("/v1/graph/stream", json=body, headers=BOB),
    ]
    for response in not_yours:
        error = error_of(response, 404, "thread_not_found")
        assert "count" not in response.text
        assert "alice" not in error["message"]

    state = client.get(f"/v1/threads/{thread}/state", headers=ALICE).json()["data"]
    assert state["state"]["count"] == 1  # bob changed nothing
    alice_threads = client.get("/v1/threads", headers=ALICE).json()["data"]["threads"]
    bob_threads = client.get("/v1/threads", headers=BOB).json()["data"]["threads"]
    assert thread in [t["thread_id"] for t in alice_threads]
    assert thread not in [t["thread_id"] for t in bob_threads]


def test_another_subject_can_neither_stop_nor_join_a_run(client):
    thread = f"run-{uuid.uuid4().hex[:8]}"
    body = {"initial_state": {"events": 40, "async_sleep_s": 0.05}, "config": {"thread_id": thread}}
    with client.stream("POST", "/v1/graph/stream", json=body, headers=ALICE) as stream:
        lines = stream.iter_lines()
        run_id = next(json.loads(line[6:])["run_id"] for line in lines if line.startswith("data: "))
        # Bob's stop gets the answer of a thread with no run: it stops nothing, says nothing.
        stop = client.post("/v1/graph/stop", json={"thread_id": thread}, headers=BOB)
        assert stop.status_code == 200
        assert stop.json()["data"]["stopped"] is False
        joined = client.get(f"/v1/threads/{thread}/runs/{run_id}/stream", headers=BOB)
        error_of(joined, 404, "run_not_found")
        # Busy (409, naming the run) would tell bob the thread exists: it is not found.
        for attempt in (
            client.post(
                "/v1/graph/invoke",
                json={"messages": ["hi"], "config": {"thread_id": thread}},
                headers=BOB,
            ),
            client.put(f"/v1/threads/{thread}/state", json={"state": {}}, headers=BOB),
            client.delete(f"/v1/threads/{thread}/state", headers=BOB),
        ):
            assert run_id not in error_of(attempt, 404, "thread_not_found")["message"]
        stopped = client.post("/v1/graph/stop", json={"thread_id": thread}, headers=ALICE)
        assert stopped.status_code == 200


def test_production_headers_on_every_response(client):
    for response in (
        client.get("/healthz"),
        client.get("/v1/threads", headers=ALICE),
        client.get("/v1/nothing", headers=ALICE),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in headers  # plain HTTP
    behind_tls = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert behind_tls.headers["strict-transport-security"].startswith("max-age=")


def test_docs_are_off_in_production(client):
    for path in ("/docs", "/openapi.json"):
        assert client.get(path).status_code == 404


def test_5xx_bodies_name_no_internals(client):
    response = client.post(
        "/v1/graph/invoke", json={"initial_state": {"fail": True}}, headers=ALICE
    )
    error = error_of(response, 500, "node_failed")
    assert error["message"] == "the graph failed in node 'work'; see the server log"
    assert "secret-internal-detail" not in response.text
    assert "RuntimeError" not in response.text


def test_cors_grants_the_allowed_origin_only(client):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = client.options("/v1/graph/invoke", headers={"Origin": ALLOWED, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    refused = client.options(
        "/v1/graph/invoke", headers={"Origin": "https://evil.example", **preflight}
    )
    error = error_of(refused, 403, "cors_refused")
    assert "origin 'https://evil.example' is not allowed" in error["message"]
    assert not any(name.startswith("access-control-") for name in refused.headers)
    simple = client.get("/v1/threads", headers={"Origin": "https://evil.example", **ALICE})
    assert "access-control-allow-origin" not in simple.headers
    granted = client.get("/v1/threads", headers={"Origin": ALLOWED, **ALICE})
    assert granted.headers["access-control-allow-origin"] == ALLOWED
    assert granted.headers["access-control-expose-headers"] == "X-Request-ID, WWW-Authenticate"
    # The answer depends on the Origin, with it or without: caches must key on it.
    for response in (simple, granted, client.get("/v1/threads", headers=ALICE)):
        assert response.headers.get_list("vary") == ["Origin"]


def test_oversized_headers_get_431_and_the_server_goes_on(client):
    response = client.get("/v1/threads", headers={**ALICE, "X-Padding": "x" * 40_000})
    error_of(response, 431, "headers_too_large")
    assert client.get("/healthz").status_code == 200


def test_logs_are_json_lines_with_ids_and_no_secret(client, secured):
    thread = f"log-{uuid.uuid4().hex[:8]}"
    client.post(
        "/v1/graph/invoke",
        json={"initial_state": {"fail": True}, "config": {"thread_id": thread}},
        headers=ALICE,
    )

    def failure_logged() -> dict | None:
        records = [json.loads(line) for line in secured.log().splitlines() if line.strip()]
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        return next(
            (r for r in records if "failed" in r["message"] and r.get("thread_id") == thread), None
        )

    failure = eventually(failure_logged, within_s=10, what="the run's failure in the log")
    log = secured.log()
    assert failure["level"] == "ERROR"
    assert failure["run_id"]
    assert failure["request_id"]
    assert "exception" in failure  # the traceback stays in the log
    assert leaks_in(log, {SECRET, DSN_PASSWORD}) == []  # no token, no secret
