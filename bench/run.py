"""Runs the benchmark scenarios and prints one table (markdown), each figure measured twice.

    bash bench/run            # everything
    bash bench/run --quick    # 5 s per measurement instead of 10

Each server runs on a loopback port, is warmed up, loaded by wrk (bench/post.lua: JSON POSTs,
a new thread per request), then stopped by pid. Ratios compare with the bare FastAPI app
(bench/bare_app.py) measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "post.lua"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BARE = "bare FastAPI"


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    path: str = "/v1/graph/invoke"


@dataclass
class Figure:
    server: str
    scenario: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def agentflow(port: int, workers: int, extra: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    command = [
        sys.executable,
        "-m",
        "agentflow",
        "api",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    # The same logging as the reference (uvicorn at warning: no access log line per request).
    return command, {"AGENTFLOW_GRAPH": "bench.graphs:two_nodes", "LOG_LEVEL": "WARNING", **extra}


def start(server: Server) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        server.command,
        cwd=ROOT,
        env={**os.environ, **server.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/docs", timeout=1).status_code < 500:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{server.name} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk(port: int, path: str, connections: int, seconds: int) -> tuple[float, float, float, int]:
    result = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, errors + (int(non2xx.group(1)) if non2xx else 0)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(
    server: Server, scenario: str, connections: int, seconds: int, repeats: int
) -> list[Figure]:
    wrk(server.port, server.path, connections, 2)  # warm-up
    figures = []
    for _ in range(repeats):
        rps, p50, p99, errors = wrk(server.port, server.path, connections, seconds)
        figures.append(Figure(server.name, scenario, connections, rps, p50, p99, errors))
    return figures


async def fresh_database() -> str:
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute('DROP DATABASE IF EXISTS "agentflow_bench" WITH (FORCE)')
    await conn.execute('CREATE DATABASE "agentflow_bench"')
    await conn.close()
    return DATABASE_URL.rsplit("/", 1)[0] + "/agentflow_bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 s per measurement")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", help="run only the servers whose name contains this")
    args = parser.parse_args()
    seconds = 5 if args.quick else 10
    database = asyncio.run(fresh_database())
    postgres = {"CHECKPOINTER": "postgres", "DATABASE_URL": database, "REDIS_URL": REDIS_URL}

    bare = Server(
        BARE,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            "8601",
            "--log-level",
            "warning",
        ],
        {},
        8601,
    )
    memory = Server("agentflow memory", *agentflow(8602, 1, {}), 8602)
    memory_stream = Server("agentflow memory", *agentflow(8602, 1, {}), 8602, "/v1/graph/stream")
    shared = Server("agentflow postgres, 2 workers", *agentflow(8603, 2, postgres), 8603)
    shared_stream = Server(
        "agentflow postgres, 2 workers", *agentflow(8603, 2, postgres), 8603, "/v1/graph/stream"
    )
    plan = [
        (bare, "invoke", [64]),
        (memory, "invoke", [64]),
        (memory_stream, "stream", [64]),
        (shared, "invoke", [64]),
        (shared_stream, "stream", [64]),
    ]
    if args.only:
        plan = [step for step in plan if args.only in step[0].name or step[0].name == BARE]
    figures: list[Figure] = []
    for server, scenario, connection_counts in plan:
        process = start(server)
        try:
            for connections in connection_counts:
                figures += measure(server, scenario, connections, seconds, args.repeats)
        finally:
            stop(process)
    print_table(figures)


def print_table(figures: list[Figure]) -> None:
    """One markdown row per measurement; the ratio is to bare's mean at the same concurrency."""
    bare: dict[int, list[float]] = {}
    for figure in figures:
        if figure.server == BARE:
            bare.setdefault(figure.connections, []).append(figure.rps)
    print("| server | scenario | conns | req/s | p50 ms | p99 ms | errors | vs bare |")
    print("|---|---|---|---|---|---|---|---|")
    for f in figures:
        reference = bare.get(f.connections)
        ratio = f"{f.rps / (sum(reference) / len(reference)):.0%}" if reference else "-"
        print(
            f"| {f.server} | {f.scenario} | {f.connections} | {f.rps:,.0f} | {f.p50_ms:.1f} "
            f"| {f.p99_ms:.1f} | {f.errors} | {ratio} |"
        )


if __name__ == "__main__":
    main()
