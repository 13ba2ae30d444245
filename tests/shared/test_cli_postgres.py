"""`agentflow api` with the shared checkpointer: several workers, and clear start-up errors."""

import contextlib
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import httpx

from tests.cli.test_api_command import run_agentflow
from tests.conftest import start_server
from tests.polling import eventually
from tests.server.test_observability import sample
from tests.shared.conftest import shared_env


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def test_several_workers_share_threads(database_url, redis_url, tmp_path):
    env = shared_env(database_url, redis_url, f"cli-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, env, args=("--workers", "2"))
    try:
        # Uvicorn's supervisor and its 2 workers.
        eventually(lambda: len(children_of(server.process.pid)) >= 2, what="2 worker processes")
        thread = "many-workers"
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(10):  # new connections each time: the kernel spreads them
                response = httpx.post(
                    f"{server.url}/v1/graph/invoke",
                    json={
                        "messages": ["hi"],
                        "config": {"thread_id": thread},
                        "response_granularity": "full",
                    },
                )
                assert response.status_code == 200
            state = client.get(f"/v1/threads/{thread}/state").json()["data"]["state"]
        assert state["count"] == 10
    finally:
        server.stop()


def test_an_unreachable_database_stops_startup_in_one_line():
    result = run_agentflow(
        "api",
        env={
            "AGENTFLOW_GRAPH": "tests.graphs.versatile:app",
            "CHECKPOINTER": "postgres",
            "DATABASE_URL": "postgresql://postgres:hunter2@127.0.0.1:1/none",
            "AGENTFLOW_PG_TIMEOUT_S": "1",
        },
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert (
        "cannot set up the Postgres checkpointer at postgresql://postgres:***@127.0.0.1:1"
        in lines[0]
    )
    assert "hunter2" not in result.stderr


def test_postgres_without_a_database_url_is_refused():
    result = run_agentflow(
        "api", env={"AGENTFLOW_GRAPH": "tests.graphs.versatile:app", "CHECKPOINTER": "postgres"}
    )
    assert result.returncode != 0
    assert "CHECKPOINTER=postgres needs DATABASE_URL" in result.stderr


def test_a_checkpointer_compiled_into_the_graph_wins_over_the_environment(tmp_path):
    server = start_server(
        tmp_path,
        {
            "AGENTFLOW_GRAPH": "tests.graphs.factories:with_own_checkpointer",
            "CHECKPOINTER": "postgres",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/never-used",
        },
    )
    try:
        response = httpx.post(f"{server.url}/v1/graph/invoke", json={"messages": ["hi"]})
        assert response.status_code == 200
        assert "with InMemoryCheckpointer" in server.log()
    finally:
        server.stop()


def workers_of(pid: int) -> set[int]:
    """Uvicorn's worker processes (not multiprocessing's resource tracker)."""
    return {
        child
        for child in children_of(pid)
        if "spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
    }


def test_runs_in_flight_forget_the_runs_of_a_killed_worker(database_url, redis_url, tmp_path):
    env = shared_env(database_url, redis_url, f"killed-{uuid.uuid4().hex[:8]}")
    server = start_server(tmp_path, env, args=("--workers", "2"))

    def in_flight() -> float:
        return sample(httpx.get(f"{server.url}/metrics").text, "agentflow_runs_in_flight")

    def run() -> None:  # a run that sits in its sync node until its worker is killed
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{server.url}/v1/graph/invoke",
                json={"messages": ["hi"], "initial_state": {"sleep_s": 30}},
                timeout=60,
            )

    requests = [threading.Thread(target=run, daemon=True) for _ in range(4)]
    try:
        first = eventually(
            lambda: len(workers_of(server.process.pid)) == 2 and workers_of(server.process.pid),
            what="2 workers",
        )
        for request in requests:
            request.start()
        eventually(lambda: in_flight() == 4, what="4 runs in flight")
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        # Uvicorn starts two new workers; the dead ones' runs no longer count.
        eventually(
            lambda: len(workers_of(server.process.pid) - first) == 2,
            within_s=60,
            what="2 new workers",
        )
        eventually(lambda: in_flight() == 0, what="no run in flight")
    finally:
        server.stop()
        for request in requests:
            request.join(10)
