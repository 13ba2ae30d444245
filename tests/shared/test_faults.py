"""Postgres restarting and Redis going away, with a real server process watching it happen."""

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

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


def sse_events(client: httpx.Client, method: str, path: str, **kwargs) -> Iterator[tuple]:
    """(id, event, data) of each event of a stream, as they come."""
    with connect_sse(client, method, path, **kwargs) as source:
        assert source.response.status_code == 200, source.response.read()
        for event in source.iter_sse():
            yield event.id, event.event, event.json()


LONG_RUN = {"initial_state": {"events": 60, "async_sleep_s": 0.25}}  # 15 s


def stream_in_background(
    client: httpx.Client, pool: ThreadPoolExecutor, body: dict
) -> tuple[list[tuple], Future[None], str]:
    """Stream a run from the pool; once its first event came: the events so far (the list
    grows), the stream's future, and the path that joins the run."""
    streamed: list[tuple] = []
    future = pool.submit(
        lambda: streamed.extend(sse_events(client, "POST", "/v1/graph/stream", json=body))
    )
    eventually(lambda: streamed, within_s=30, what="the run's first event")
    run_id = streamed[0][2]["run_id"]
    return streamed, future, f"/v1/threads/{body['config']['thread_id']}/runs/{run_id}/stream"


def test_a_redis_restart_mid_run_ends_joiners_clearly_and_the_log_recovers(
    database_url, own_redis, tmp_path
):
    """Redis restarts (losing every key) while a run streams: the run goes on; a joiner
    reading at the time ends with an error and an end instead of being cut; within BACKOFF_S
    of Redis returning the run's log is written again, and a client joining after the run
    is told with a gap what the log lost, then reads the rest to the end, with the ids of the
    original stream."""
    env = shared_env(database_url, own_redis.url, f"faults-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, env)
    body = {**LONG_RUN, "config": {"thread_id": "restarts"}, "response_granularity": "full"}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client, ThreadPoolExecutor(2) as pool:
            streamed, streaming, path = stream_in_background(client, pool, body)
            joined: list[tuple] = []
            joining = pool.submit(lambda: joined.extend(sse_events(client, "GET", path)))
            eventually(lambda: len(joined) > 3, within_s=30, what="the joiner reading")

            own_redis.stop()
            own_redis.start()
            joining.result(timeout=60)
            streaming.result(timeout=60)

            rejoined = list(sse_events(client, "GET", path))
    finally:
        server.stop()
    assert streamed[-1][1] == "end"
    assert streamed[-1][2]["data"]["status"] == "success"  # the run never needed Redis

    assert [event for _, event, _ in joined[-2:]] == ["error", "end"]
    assert joined[-2][2]["data"]["code"] == "broker_unavailable"
    assert joined[-3][0] == joined[-2][0] == joined[-1][0]  # no ids of their own

    gap, *rest = rejoined
    assert gap[1] == "gap"
    missed = gap[2]["data"]["missed"]
    assert missed > 0  # what was written before the restart is gone with Redis
    original = {event_id: (event, data["data"]) for event_id, event, data in streamed}
    assert [(event, data["data"]) for _, event, data in rest] == [
        original[event_id] for event_id, _, _ in rest
    ]
    assert [int(event_id) for event_id, _, _ in rest] == list(range(missed, len(streamed)))
    assert rest[-1][1] == "end"
    recovered_within = (len(streamed) - len(rest)) * LONG_RUN["initial_state"]["async_sleep_s"]
    print(f"log written again about {recovered_within:.1f} s after the restart began")


def test_joiners_past_the_followers_cap_get_503_and_nothing_else_breaks(
    database_url, redis_url, tmp_path
):
    """Each joiner holds a Redis connection while it waits for events: past
    AGENTFLOW_REDIS_MAX_FOLLOWERS a new joiner gets 503, and the worker's own run logs (on
    another pool) are not affected: the run's log is complete."""
    env = shared_env(database_url, redis_url, f"faults-{uuid.uuid4().hex[:8]}")
    settings = {"AGENTFLOW_REDIS_MAX_FOLLOWERS": "2", "AGENTFLOW_REDIS_POOL_MAX": "4"}
    server = start_server(tmp_path, {**env, **settings})
    body = {**LONG_RUN, "config": {"thread_id": "followed"}, "response_granularity": "full"}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client, ThreadPoolExecutor(3) as pool:
            streamed, streaming, path = stream_in_background(client, pool, body)
            joiners = [[], []]
            joining = [
                pool.submit(lambda j=j: j.extend(sse_events(client, "GET", path))) for j in joiners
            ]
            eventually(lambda: all(joiners), within_s=30, what="two joiners reading")

            refused = client.get(path)
            assert refused.status_code == 503
            assert refused.json()["error"] == {
                "code": "broker_unavailable",
                "message": "this worker already follows 2 run streams, its limit "
                "(AGENTFLOW_REDIS_MAX_FOLLOWERS): join again later, or through another replica",
            }
            assert client.get("/readyz").json()["status"] == "ready"  # the broker is fine
            for future in [streaming, *joining]:
                future.result(timeout=60)
            complete = list(sse_events(client, "GET", path))  # room again, and nothing lost
    finally:
        server.stop()
    assert [event_id for event_id, _, _ in complete] == [event_id for event_id, _, _ in streamed]
    assert all(joiner[-1][1] == "end" for joiner in joiners)
    assert "Redis failed" not in server.log()


def test_a_runs_log_in_redis_keeps_about_its_newest_max_events(database_url, redis_url, tmp_path):
    env = shared_env(database_url, redis_url, f"faults-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, {**env, "AGENTFLOW_STREAM_MAX_EVENTS": "100"})
    body = {"initial_state": {"events": 2000}, "config": {"thread_id": "long"}}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            streamed = list(sse_events(client, "POST", "/v1/graph/stream", json=body))
            run_id = streamed[-1][2]["run_id"]
            joined = list(sse_events(client, "GET", f"/v1/threads/long/runs/{run_id}/stream"))
    finally:
        server.stop()
    gap, *kept = joined
    assert gap[1] == "gap"
    assert 100 <= len(kept) <= 300  # Redis trims whole blocks of entries: about 100
    assert gap[2]["data"]["missed"] + len(kept) == int(kept[-1][0]) + 1  # every position
    assert kept[-1][1] == "end"
    assert [event_id for event_id, _, _ in kept] == [
        str(i) for i in range(gap[2]["data"]["missed"], int(kept[-1][0]) + 1)
    ]


def test_a_node_silent_longer_than_the_retention_keeps_its_log(database_url, redis_url, tmp_path):
    """AGENTFLOW_STREAM_RETAIN_S counts from a run's end: a node silent for longer (an agent
    waiting on a slow model) does not let its log expire under its joiners."""
    env = shared_env(database_url, redis_url, f"faults-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, {**env, "AGENTFLOW_STREAM_RETAIN_S": "3"})
    body = {
        "initial_state": {"events": 2, "async_sleep_s": 5},  # 5 s of silence after each
        "config": {"thread_id": "silent"},
        "response_granularity": "full",
    }
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client, ThreadPoolExecutor(2) as pool:
            streamed, streaming, path = stream_in_background(client, pool, body)
            joined = list(sse_events(client, "GET", path))
            streaming.result(timeout=60)
    finally:
        server.stop()
    assert [event for _, event, _ in joined] == [event for _, event, _ in streamed]
    assert joined[-1][2]["data"]["status"] == "success"
