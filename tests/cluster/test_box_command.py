"""`python -m devbox`, as a person runs it: it comes up, says where things are,
shows progress, and tears down on Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT


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
    lines = []
    deadline = time.monotonic() + 120
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.startswith("Ready=True") or time.monotonic() > deadline:
                break
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=90)
    output = "\n".join(lines) + rest
    assert "a local SIMULATION of Kubernetes" in output
    assert "export KUBECONFIG=" in output
    assert "Service support-agent: http://127.0.0.1:" in output
    assert "Ready=True (3/3 replicas ready), processes: 3" in output
    assert "tearing down" in output
    assert process.returncode == 0
