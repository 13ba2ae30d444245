"""`agentflow-operator run` as a real process: restarts duplicate nothing and catch up."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.operator.conftest import Kube
from tests.operator.test_operator import graph, jwt_secret
from tests.polling import eventually


def start_operator(log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET": "agentflow-system/checkpointer",
        # Its own port: nothing else on this machine may hold the default 8080.
        "AGENTFLOW_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz",
    }
    code = "from agentflow_operator.cli import main; main()"
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def test_a_restarted_operator_duplicates_nothing_and_catches_up(kube: Kube, tmp_path: Path):
    log = tmp_path / "operator.log"
    jwt_secret(kube)
    operator = start_operator(log)
    try:
        kube.create(graph(), "agentgraphs")
        eventually(
            lambda: kube.get("apps/v1", "deployments", "agents", "support-agent"),
            what="the Deployment",
        )
    finally:
        assert stop(operator) == 0, log.read_text()

    # While no operator runs, the spec changes.
    kube.patch(
        "agentflow.dev/v1alpha1", "agentgraphs", "agents", "support-agent", {"spec": {"workers": 4}}
    )
    operator = start_operator(log)
    try:

        def args() -> list[str]:
            return kube.get("apps/v1", "deployments", "agents", "support-agent")["spec"][
                "template"
            ]["spec"]["containers"][0]["args"]

        eventually(lambda: args()[-1] == "4", what="the change made while the operator was down")
        deployments = kube.http.get("/apis/apps/v1/namespaces/agents/deployments").json()["items"]
        assert len(deployments) == 1
    finally:
        assert stop(operator) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_a_namespaced_operator_serves_only_its_namespaces(kube: Kube, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AGENTFLOW_OPERATOR_WATCH_NAMESPACES", "agents")
    jwt_secret(kube)
    outside = graph("outside")
    outside["metadata"]["namespace"] = "default"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "support-agent-jwt", "namespace": "default"},
            "stringData": {"secret": "x" * 64},
        },
        "secrets",
    )
    operator = start_operator(tmp_path / "operator.log")
    try:
        kube.create(outside, "agentgraphs")
        kube.create(graph("inside"), "agentgraphs")
        eventually(
            lambda: kube.get("apps/v1", "deployments", "agents", "inside"),
            what="the watched namespace served",
        )
        assert kube.get("apps/v1", "deployments", "default", "outside") is None
    finally:
        assert stop(operator) == 0


def test_two_operators_on_one_machine_each_answer_liveness_on_their_own_port(
    kube: Kube, tmp_path: Path
):
    """The liveness address is a setting (it was fixed at 0.0.0.0:8080: a second operator
    died on start)."""
    import httpx

    first, second = free_port(), free_port()
    operators = []
    for port in (first, second):
        env = {
            **os.environ,
            "AGENTFLOW_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{port}/healthz",
        }
        code = "from agentflow_operator.cli import main; main()"
        log = (tmp_path / f"operator-{port}.log").open("ab")
        operators.append(
            subprocess.Popen([sys.executable, "-c", code, "run"], env=env, stdout=log, stderr=log)
        )
    try:
        for port in (first, second):

            def alive(port: int = port) -> bool:
                try:
                    return (
                        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                    )
                except httpx.HTTPError:
                    return False

            eventually(alive, what=f"liveness on {port}")
        assert all(operator.poll() is None for operator in operators)
    finally:
        for operator in operators:
            assert stop(operator) == 0
