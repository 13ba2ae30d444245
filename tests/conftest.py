"""Shared fixtures: real server processes on loopback ports."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.kube.client import Kube, prepare
from tests.kube.emulator import EmulatorServer
from tests.polling import NotReached, eventually

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30

# What no server log may ever show: a bearer token (a JWT), a password inside a URL, and the
# secrets each server was given (collected by start_server).
_TOKEN = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")
_URL_PASSWORD = re.compile(r"\b[a-z+]+://[^/\s:@]+:(?!\*\*\*@)[^@\s/]+@")
_SECRET_NAMES = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")
_SERVER_LOGS: list[Path] = []
_GIVEN_SECRETS: set[str] = set()


def _secrets_in(env: dict[str, str]) -> set[str]:
    secrets = {value for name, value in env.items() if _SECRET_NAMES.search(name)}
    for name in ("DATABASE_URL", "REDIS_URL"):
        if (url := env.get(name)) and (password := urlsplit(url).password):
            secrets.add(password)
    return {secret for secret in secrets if len(secret) >= 6}


def leaks_in(log: str, secrets: set[str]) -> list[str]:
    """What in a log should never be there."""
    found = [match.group(0) for match in (*_TOKEN.finditer(log), *_URL_PASSWORD.finditer(log))]
    return found + [f"the secret {secret[:3]}..." for secret in secrets if secret in log]


# The tiers (README "Testing"): marked here from where a test lives and what it uses, so a new
# test lands in the right tier without remembering to mark it.
_CLUSTER_DIRS = {"cluster", "operator", "kube", "chart"}
_SLOW_DIRS = {"cluster", "shared", "browser", "compat", "images", "chart"}
# Modules whose every test starts processes, one per case, or waits on signals.
_SLOW_MODULES = {"test_settings.py", "test_operator_process.py", "test_startup_and_shutdown.py"}
_SERVICE_FIXTURES = {"database_url", "redis_url", "own_postgres", "own_redis"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).relative_to(ROOT / "tests").parts[0]
        if folder in _CLUSTER_DIRS:
            item.add_marker(pytest.mark.cluster)
        if folder in _SLOW_DIRS or Path(item.path).name in _SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_server_log() -> Iterator[None]:
    """Once the whole suite ran: not one log of the servers it started holds a token, a
    password or a secret it was given, whatever the test did to it."""
    yield
    leaks = {
        str(path): found
        for path in _SERVER_LOGS
        if path.exists() and (found := leaks_in(path.read_text(errors="replace"), _GIVEN_SECRETS))
    }
    assert not leaks, f"secrets in server logs: {leaks}"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def agentflow_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "agentflow", *args]


def start_server(
    log_dir: Path,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    cwd: Path = ROOT,
    descriptors: int | None = None,
) -> Server:
    """Start ``agentflow api`` on a free loopback port and wait until /healthz answers; with
    ``descriptors``, under that limit of open files (soft and hard), as a container may be."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    limit = [] if descriptors is None else ["prlimit", f"--nofile={descriptors}", "--"]
    _SERVER_LOGS.append(log_path)
    _GIVEN_SECRETS.update(_secrets_in(env or {}))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*limit, *agentflow_command("api", "--host", "127.0.0.1", "--port", str(port), *args)],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)

    def answering() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
        return httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200

    try:
        eventually(
            answering, STARTUP_TIMEOUT_S, "the server answering", ignoring=(httpx.TransportError,)
        )
    except NotReached as error:
        server.stop()
        raise RuntimeError(f"{error}:\n{server.log()}") from None
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server of tests/graphs/versatile.py for the whole session."""
    running = start_server(
        tmp_path_factory.mktemp("server"), {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"}
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of this test session's own on the machine's Postgres."""
    from tests.services import create_database, drop_database

    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    from tests.services import check_redis

    return check_redis()


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    """An emulated Kubernetes API with the AgentGraph CRD, two namespaces and the operator's
    default DSN Secret; KUBECONFIG points at it."""
    server = EmulatorServer(free_port()).start()
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "kubeconfig")))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        client = Kube(server, http)
        prepare(client)
        yield client
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A Postgres server of the test's own, to stop and restart at will."""
    from tests.services import OwnPostgres

    server = OwnPostgres(free_port())
    server.start()
    yield server
    server.remove()
