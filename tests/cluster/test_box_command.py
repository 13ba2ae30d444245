"""`python -m devbox`, as a person runs it: it comes up, says where things are,
shows progress, and tears down on Ctrl-C."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.polling import NotReached, eventually


def test_the_box_command_starts_reports_and_stops(database_url, redis_url):
    env = {
        **os.environ,
        "AGENTFLOW_TEST_DATABASE_URL": database_url,
        "AGENTFLOW_TEST_REDIS_URL": redis_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:  # in a thread: the wait below has a deadline even if nothing is printed
        assert process.stdout is not None
        lines.extend(line.rstrip() for line in process.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    answer = None
    try:
        eventually(
            lambda: any(line.startswith("Ready=True") for line in lines) or process.poll(),
            within_s=120,
            what="Ready=True",
        )
        answer = invoke_as_printed(lines)
    except NotReached:
        pass  # the assertions below say what was missing
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=90)
        finally:
            process.kill()  # a no-op once it exited: never outlive the test
            reader.join(10)
    output = "\n".join(lines)
    assert "a local SIMULATION of Kubernetes" in output
    assert "export KUBECONFIG=" in output
    assert "Service support-agent: http://127.0.0.1:" in output
    assert "Ready=True (3/3 replicas ready), processes: 3" in output
    assert "tearing down" in output
    assert process.returncode == 0
    assert answer is not None
    assert answer.status_code == 200, answer.text  # the printed token works
    kubeconfig = next(line for line in lines if "export KUBECONFIG=" in line).split("=", 1)[1]
    assert not Path(kubeconfig).parent.exists()  # its temporary folder is gone


def invoke_as_printed(lines: list[str]) -> httpx.Response:
    """What the printed curl line does, with the printed URL and token."""
    url = next(line for line in lines if line.startswith("Service support-agent: ")).split()[-1]
    token = next(line for line in lines if "export TOKEN=" in line).split("=", 1)[1]
    return httpx.post(
        f"{url}/v1/graph/invoke",
        json={"messages": ["Where is my order 1002?"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
