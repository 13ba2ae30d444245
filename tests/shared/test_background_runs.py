"""Background runs across replicas on real Postgres and Redis: every run finishes exactly
once, and the runs of a replica killed or drained mid-run are resumed on another from their last
checkpoint (the nodes they had finished are not run again)."""

import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.polling import eventually
from tests.shared.conftest import shared_env


def replica_env(database_url: str, redis_url: str, graph_id: str, trace: Path) -> dict[str, str]:
    return {
        **shared_env(database_url, redis_url, graph_id),
        "AGENTFLOW_GRAPH": "tests.graphs.durable:app",
        "AGENTFLOW_TEST_TRACE": str(trace),
        "AGENTFLOW_RUN_POLL_S": "0.5",
    }


def submit(server: Server, thread_id: str, sleep_s: float) -> dict[str, Any]:
    body = {"initial_state": {"sleep_s": sleep_s}, "config": {"thread_id": thread_id}}
    response = httpx.post(f"{server.url}/v1/graph/runs", json=body, timeout=10)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def wait_for_all(server: Server, runs: list[dict[str, Any]], timeout_s: float) -> list[dict]:
    """Every run as it ended (failing the test if one did not end within ``timeout_s``)."""
    ended: dict[str, dict[str, Any]] = {}

    def all_ended() -> bool:
        for run in runs:
            if run["run_id"] in ended:
                continue
            path = f"{server.url}/v1/threads/{run['thread_id']}/runs/{run['run_id']}"
            found = httpx.get(path, timeout=10).json()["data"]
            if found["status"] not in ("pending", "running"):
                ended[run["run_id"]] = found
        return len(ended) == len(runs)

    eventually(all_ended, timeout_s, "every background run ended")
    return [ended[run["run_id"]] for run in runs]


def trace_of(trace: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Per run: (node, what, pid) in the order the nodes wrote them."""
    lines: dict[str, list[tuple[str, str, int]]] = {}
    for line in trace.read_text().splitlines():
        run_id, node, what, pid = line.split()
        lines.setdefault(run_id, []).append((node, what, int(pid)))
    return lines


def test_runs_submitted_to_two_replicas_all_finish_exactly_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    env = replica_env(database_url, redis_url, f"bg-{uuid.uuid4().hex[:8]}", trace)
    replicas = [start_server(tmp_path, env), start_server(tmp_path, env)]
    try:
        runs = [submit(replicas[i % 2], f"thread-{i}", 0) for i in range(200)]
        ended = wait_for_all(replicas[0], runs, 120)
    finally:
        for replica in replicas:
            replica.stop()
    assert Counter(run["status"] for run in ended) == {"success": 200}
    assert {run["attempts"] for run in ended} == {1}
    executed = trace_of(trace)
    once = [("first", "done"), ("slow", "started"), ("slow", "done"), ("last", "done")]
    for run in runs:
        assert [(node, what) for node, what, _ in executed[run["run_id"]]] == once
    workers = Counter(pid for lines in executed.values() for _, _, pid in lines[:1])
    assert len(workers) == 2  # both replicas took a share


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "attempts"),
    [
        (signal.SIGKILL, 2),  # it dies: its claims lapse with its liveness lock, and count
        (signal.SIGTERM, 1),  # it drains: it hands its runs back, not counted as an attempt
    ],
)
def test_the_runs_of_a_stopped_replica_resume_on_another_from_their_last_checkpoint(
    database_url: str, redis_url: str, tmp_path: Path, stop: signal.Signals, attempts: int
) -> None:
    trace = tmp_path / "trace"
    env = replica_env(database_url, redis_url, f"bg-{uuid.uuid4().hex[:8]}", trace)
    doomed = start_server(
        tmp_path,
        {**env, "AGENTFLOW_MAX_RUNS_PER_WORKER": "20", "AGENTFLOW_SHUTDOWN_GRACE_S": "0.5"},
    )
    survivor: Server | None = None
    try:
        runs = [submit(doomed, f"thread-{i}", 4) for i in range(20)]

        def all_in_slow() -> bool:
            started = trace_of(trace) if trace.exists() else {}
            return (
                sum(
                    ("slow", "started") in [(n, w) for n, w, _ in lines]
                    for lines in started.values()
                )
                == 20
            )

        eventually(all_in_slow, 30, "all 20 runs in their slow node on the doomed replica")
        survivor = start_server(tmp_path, env)
        doomed.process.send_signal(stop)
        doomed.process.wait(10)
        ended = wait_for_all(survivor, runs, 60)
    finally:
        doomed.stop()
        if survivor is not None:
            survivor.stop()
    assert Counter(run["status"] for run in ended) == {"success": 20}
    assert {run["attempts"] for run in ended} == {attempts}
    assert all(run["result"]["values"]["trail"] == ["first", "slow", "last"] for run in ended)
    executed = trace_of(trace)
    for run in runs:
        lines = executed[run["run_id"]]
        assert [(node, what, pid == doomed.process.pid) for node, what, pid in lines] == [
            ("first", "done", True),  # kept in a checkpoint: not run again
            ("slow", "started", True),  # cut off
            ("slow", "started", False),
            ("slow", "done", False),
            ("last", "done", False),
        ]
