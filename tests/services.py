"""The real Postgres and Redis the tests use, each test session in a database of its own.

They run on every machine of this project (and in CI). When they are missing, the tests that
need them fail with a message saying so: they never skip silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis

DATABASE_URL = os.environ.get(
    "AGENTFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(statement: str) -> None:
    try:
        conn = await asyncpg.connect(DATABASE_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        raise RuntimeError(
            f"Postgres is needed at {DATABASE_URL} (AGENTFLOW_TEST_DATABASE_URL) and is not "
            f"reachable: {error}"
        ) from error
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database() -> str:
    """A fresh, empty database; returns its URL."""
    name = f"agentflow_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return with_database(DATABASE_URL, name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def check_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except redis.RedisError as error:
        raise RuntimeError(
            f"Redis is needed at {REDIS_URL} (AGENTFLOW_TEST_REDIS_URL) and is not reachable: "
            f"{error}"
        ) from error
    return REDIS_URL


class OwnPostgres:
    """A Postgres server of the test's own (initdb in a temporary folder, a free port), so a
    test can stop and restart it without disturbing anything else."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.data_dir = Path(tempfile.mkdtemp(prefix="agentflow-pg-"))
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        bin_dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bin_dirs:
            raise RuntimeError("Postgres server binaries (/usr/lib/postgresql/*/bin) are missing")
        self.bin = Path(bin_dirs[-1])
        # initdb and postgres refuse to run as root: run them as the postgres user then.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.data_dir, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data_dir / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir / "data"),
            "-o",
            options,
            "-l",
            str(self.data_dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")

    def _processes(self) -> list[int]:
        postmaster = int((self.data_dir / "data" / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """Stall the server (SIGSTOP to all its processes): connections hang, nothing fails."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def remove(self) -> None:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            self.thaw()
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class OwnRedis:
    """A redis-server of the test's own on a free port, to stop and start at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
