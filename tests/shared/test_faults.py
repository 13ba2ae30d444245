"""Postgres restarting and Redis going away, with a real server process watching it happen."""

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import free_port, start_server
from tests.polling import eventually
from tests.services import OwnRedis
from tests.shared.conftest import shared_env

RECOVERY_BOUND_S = 30


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(free_port())
    server.start()
    yield server
    server.stop()


def invoke(client: httpx.Client, thread: str, **body) -> httpx.Response:
    return client.post(
        "/v1/graph/invoke",
        json={
            "messages": ["hi"],
            "config": {"thread_id": thread},
            "response_granularity": "full",
            **body,
        },
    )


def test_postgres_restarting_fails_requests_fast_then_recovers(own_postgres, redis_url, tmp_path):
    env = shared_env(own_postgres.url, redis_url, f"faults-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, {**env, "AGENTFLOW_PG_TIMEOUT_S": "2"})
    thread = "survives-restart"
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert invoke(client, thread).status_code == 200

            own_postgres.stop()
            started = time.monotonic()
            down = invoke(client, thread)
            assert time.monotonic() - started < 15, "no hang past the timeout"
            assert down.status_code == 503
            error = down.json()["error"]
            assert error["code"] == "checkpointer_unavailable"
            assert "Postgres checkpointer" in error["message"]
            # Still ready: every replica shares Postgres, and a Service emptied of them all would
            # answer connection errors instead of this clear 503.
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["checkpointer"] != "ok"
            assert client.get("/healthz").status_code == 200  # alive: no restart needed

            own_postgres.start()
            response = eventually(
                lambda: (answer := invoke(client, thread)).status_code == 200 and answer,
                within_s=RECOVERY_BOUND_S,
                what="a run after Postgres came back",
            )
            assert (
                response.json()["data"]["state"]["count"] == 2
            )  # nothing lost, nothing half-written
            assert client.get("/readyz").json()["status"] == "ready"
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log  # an outage is reported in plain lines, not stack traces
    assert "checkpointer_unavailable: the Postgres checkpointer is unavailable" in log


def test_without_redis_runs_keep_working_and_joining_says_why(database_url, own_redis, tmp_path):
    env = shared_env(database_url, own_redis.url, f"faults-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, env)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            own_redis.stop()
            assert invoke(client, "no-redis").status_code == 200
            second = invoke(client, "no-redis")
            assert second.status_code == 200
            assert second.json()["data"]["state"]["count"] == 2

            body = {"initial_state": {"events": 2}, "config": {"thread_id": "no-redis-stream"}}
            with connect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
                events = [(e.event, e.json()) for e in source.iter_sse()]
            assert events[-1][0] == "end"
            assert events[-1][1]["data"]["status"] == "success"
            run_id = events[-1][1]["run_id"]

            joined = client.get(f"/v1/threads/no-redis-stream/runs/{run_id}/stream")
            assert joined.status_code == 503
            assert joined.json()["error"]["code"] == "broker_unavailable"
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["broker"].startswith("unavailable")

            own_redis.start()

            def joinable() -> bool:
                """Once the broker retries Redis, new runs can be joined again."""
                with connect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
                    run_id = [e.json() for e in source.iter_sse()][-1]["run_id"]
                path = f"/v1/threads/no-redis-stream/runs/{run_id}/stream"
                return client.get(path).status_code == 200

            eventually(joinable, within_s=RECOVERY_BOUND_S, what="a joinable run", every_s=0.5)
    finally:
        server.stop()


def test_a_postgres_stall_leaves_no_thread_busy_once_it_is_over(own_postgres, redis_url, tmp_path):
    """Postgres frozen (SIGSTOP) while six requests take their threads: each answers 503
    within AGENTFLOW_PG_TIMEOUT_S, and once Postgres is back no thread stays busy, although a
    lease would last 300 s: a request that gave up gives back what Postgres took for it."""
    env = shared_env(own_postgres.url, redis_url, f"stall-{uuid.uuid4().hex[:8]}")
    settings = {"AGENTFLOW_PG_TIMEOUT_S": "2", "AGENTFLOW_RUN_LEASE_S": "300"}
    server = start_server(tmp_path, {**env, **settings})
    threads = [f"stalled-{index}" for index in range(6)]
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for thread in threads:
                assert invoke(client, thread).status_code == 200
            own_postgres.freeze()
            try:
                with ThreadPoolExecutor(len(threads)) as pool:
                    stalled = list(pool.map(lambda t: invoke(client, t), threads))
            finally:
                own_postgres.thaw()
            assert {response.status_code for response in stalled} == {503}
            assert {r.json()["error"]["code"] for r in stalled} == {"checkpointer_unavailable"}
            for thread in threads:
                eventually(
                    lambda thread=thread: invoke(client, thread).status_code == 200,
                    within_s=RECOVERY_BOUND_S,
                    what=f"thread {thread} free again",
                    every_s=0.2,
                )
    finally:
        server.stop()
