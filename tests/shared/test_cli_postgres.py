"""`agentflow api` with the shared checkpointer: several workers, and clear start-up errors."""

import subprocess
import uuid

import httpx

from tests.cli.test_api_command import run_agentflow
from tests.conftest import start_server
from tests.polling import eventually
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
