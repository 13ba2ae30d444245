"""The runtime image without a Docker engine: its Dockerfile's COPY and RUN steps replayed into
a staging folder (a fresh virtualenv installed exactly as the image installs it), and its
entrypoint started as an unprivileged user that can write nothing but /tmp, as in a container
with a read-only root filesystem."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port
from tests.images.dockerfile import Stage, exec_form, read
from tests.polling import eventually

RUNTIME_DOCKERFILE = ROOT / "runtime-image" / "Dockerfile"
# The image's Python is a system one (/usr/local in python:*-slim), readable by any user; the
# machine's own may sit in root's home. Debian's python3 plays the base image's part.
BASE_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def copy_into(sources: list[str], destination: Path, context: Path) -> None:
    """A Dockerfile COPY: a source folder's contents (never the folder itself) go to the
    destination; a file goes into it when it is a folder, else becomes it."""
    for item in sources:
        for origin in sorted(context.glob(item)) if "*" in item else [context / item]:
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    destination,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                )
            else:
                target = destination / origin.name if destination.is_dir() else destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, target)


def run_steps(stage: Stage, root: Path, workdir: Path) -> None:
    """A stage's RUN steps, with its absolute paths moved under ``root``."""
    for command in stage.all("RUN"):
        command = command.replace("/opt/agentflow", str(root / "opt" / "agentflow")).replace(
            "python -m venv", f"{BASE_PYTHON} -m venv"
        )
        env = {**os.environ, "PATH": f"{root / 'opt' / 'agentflow' / 'bin'}:{os.environ['PATH']}"}
        subprocess.run(
            command, shell=True, cwd=workdir, check=True, capture_output=True, timeout=600, env=env
        )


def stage_runtime() -> Path:
    """The runtime image's filesystem (its /opt/agentflow) under a new folder; returns it."""
    root = Path(tempfile.mkdtemp(prefix="agentflow-image-"))
    build = read(RUNTIME_DOCKERFILE)[1][0]
    source = root / "src"
    for sources, destination in build.copies():
        target = source / destination.removeprefix("./")
        if destination.endswith("/") or destination in (".", "./"):
            target.mkdir(parents=True, exist_ok=True)  # a folder: sources go in by name
        copy_into(sources, target, ROOT)
    run_steps(build, root, source)
    (root / "app").mkdir()
    return root


def lock(root: Path) -> None:
    """Readable by everyone, writable by root only."""
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(root)], check=True)


@contextlib.contextmanager
def running(root: Path, env: dict[str, str]) -> Iterator[Container]:
    """The staged image serving until the block ends; then it must drain and exit 0."""
    container = Container(root, env)
    try:
        container.wait_ready()
        yield container
    finally:
        code = container.stop()
    assert code == 0, container.output()


class Container:
    """The staged image's entrypoint, run as nobody on a loopback port."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        final = read(RUNTIME_DOCKERFILE)[1][-1]
        image_env = final.env()
        venv_bin = root / "opt" / "agentflow" / "bin"
        image_env["PATH"] = (
            image_env["PATH"]
            .replace("/opt/agentflow/bin", str(venv_bin))
            .replace("$PATH", os.environ["PATH"])
        )
        self.port = free_port()
        # Loopback only (tests never bind elsewhere), on a free port.
        environment = {
            **image_env,
            **env,
            "AGENTFLOW_HOST": "127.0.0.1",
            "AGENTFLOW_PORT": str(self.port),
        }
        entrypoint = exec_form(final.all("ENTRYPOINT")[-1])
        workdir = root / final.all("WORKDIR")[-1].lstrip("/")
        # As root, drop to nobody with no process in between: the server itself gets SIGTERM,
        # as PID 1 of a container would.
        nobody = pwd.getpwnam("nobody")
        drop = (
            {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            if os.geteuid() == 0
            else {}
        )
        self.process = subprocess.Popen(
            [str(venv_bin / entrypoint[0]), *entrypoint[1:]],
            cwd=workdir,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **drop,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, within_s: float = 60) -> None:

        def ready() -> bool:
            assert self.process.poll() is None, self.output()
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200

        eventually(
            ready, within_s, "the staged image ready", every_s=0.2, ignoring=(httpx.TransportError,)
        )

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(30)

    def output(self) -> str:
        return self.process.stdout.read().decode() if self.process.stdout else ""
