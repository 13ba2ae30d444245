"""Runs the benchmark scenarios and prints markdown tables; load figures are measured twice.

    bash bench/run                      # every scenario
    bash bench/run --quick              # 5 s per load measurement instead of 10
    bash bench/run --only invoke,events # some scenarios

Scenarios (the performance issues' letters):
    headline  the request agentflow's client sends (content blocks, a new thread each), a graph
              adding two messages, default settings (access log on), 10 ms and 0 ms waits,
              invoke and stream, 64 connections, with the server's CPU per request
    invoke    (a) the two-node graph (10 ms sync + 10 ms async), invoke, 20 and 64 connections
    overhead  (b) the same graph with 0 ms waits: pure overhead, 20 connections
    stream    (c) the two-node graph over SSE, 20 and 64 connections
    events    (d) one SSE client reading a node's 10,000 custom events
    postgres  (e) PgCheckpointer + Redis with 2 workers, invoke and stream, 64 connections
    idle      (f) 1,000 SSE streams held open: server memory and CPU
    operator  (g) 1,000 AgentGraphs in the API emulator (bench/operator.py)
    queue     (h) background runs through the durable queue, 2 replicas (bench/queue.py)

Each server runs on a loopback port, is warmed up, loaded by wrk (bench/post.lua: JSON POSTs,
a new thread per request), then stopped by pid. Ratios compare with the bare FastAPI app
(bench/bare_app.py) doing the same waits, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import procfs, streams

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "post.lua"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
INVOKE, STREAM = "/v1/graph/invoke", "/v1/graph/stream"
IDLE_STREAMS = 1000


@dataclass(frozen=True)
class Server:
    name: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    port: int
    sleep_ms: int = 10  # what each of the graph's two waits takes (the reference's too)
    bare: bool = False


def bare(port: int, sleep_ms: int) -> Server:
    command = (sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port))
    # uvicorn at warning: no access log line per request, like our servers below.
    return Server(
        "bare FastAPI",
        (*command, "--log-level", "warning"),
        (("BENCH_SLEEP_MS", str(sleep_ms)),),
        port,
        sleep_ms,
        bare=True,
    )


def agentflow(
    name: str,
    port: int,
    graph: str,
    workers: int = 1,
    sleep_ms: int = 10,
    env: dict[str, str] | None = None,
    defaults: bool = False,
) -> Server:
    """A server at log level warning (no access line per request), or with ``defaults`` the
    settings a user gets (info, with the access log)."""
    command = (sys.executable, "-m", "agentflow", "api", "--port", str(port))
    settings = {
        "AGENTFLOW_GRAPH": f"bench.graphs:{graph}",
        **({} if defaults else {"LOG_LEVEL": "WARNING"}),
        "BENCH_SLEEP_MS": str(sleep_ms),
        **(env or {}),
    }
    return Server(
        name, (*command, "--workers", str(workers)), tuple(settings.items()), port, sleep_ms
    )


@dataclass
class Figure:
    server: Server
    scenario: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float  # server CPU (all its processes) per request
    body: str  # the request: plain or blocks


@dataclass
class Results:
    load: list[Figure] = field(default_factory=list)
    # By title: a header and its rows, in the order the tables were first added.
    tables: dict[str, tuple[list[str], list[list[str]]]] = field(default_factory=dict)


@contextmanager
def running(server: Server) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        server.command,
        cwd=ROOT,
        env={**os.environ, **dict(server.env)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(server.port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{server.name} did not start")
            time.sleep(0.2)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):  # a scenario may have killed it
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code < 500
    except httpx.TransportError:
        return False


def wrk(
    port: int, path: str, connections: int, seconds: int, body: str = "plain"
) -> tuple[float, float, float, int]:
    """req/s, p50 and p99 ms, errors; ``body`` is ``plain`` (``["hi"]``) or ``blocks`` (the
    message as agentflow's client sends it)."""
    result = subprocess.run(
        [
            *("wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"),
            *("-s", str(LUA), f"http://127.0.0.1:{port}{path}"),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        env={**os.environ, "BENCH_BODY": body},
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


def load(server: Server, path: str, connection_counts: list[int], body: str = "plain") -> Step:
    """wrk against ``path`` at each connection count: a warm-up, then ``repeats`` figures,
    each with the server's CPU per request."""

    def measure(process: subprocess.Popen[bytes], options: Options, results: Results) -> None:
        scenario = "invoke" if path == INVOKE else "stream"
        if server.sleep_ms != 10:
            scenario += f", {server.sleep_ms} ms waits"
        if body == "blocks":
            scenario += ", client's request"
        for connections in connection_counts:
            wrk(server.port, path, connections, 2, body)
            for _ in range(options.repeats):
                cpu_before = procfs.tree_cpu_seconds(process.pid)
                rps, p50, p99, errors = wrk(server.port, path, connections, options.seconds, body)
                cpu = procfs.tree_cpu_seconds(process.pid) - cpu_before
                cpu_ms = cpu * 1000 / max(rps * options.seconds, 1)
                figure = Figure(server, scenario, connections, rps, p50, p99, errors, cpu_ms, body)
                results.load.append(figure)

    return server, f"{path} {connection_counts} {body}", measure


def events(server: Server, path: str, body: dict[str, object]) -> Step:
    """One client reads a stream of custom events to its end, five times."""

    def measure(process: subprocess.Popen[bytes], options: Options, results: Results) -> None:
        asyncio.run(streams.read_one(server.port, path, body, timeout_s=60))  # warm-up
        timings = [
            asyncio.run(streams.read_one(server.port, path, body, timeout_s=60)) for _ in range(5)
        ]
        rows = [
            [
                server.name,
                f"{timing.events:,}",
                f"{timing.events_per_s:,.0f}",
                f"{timing.first_byte_s * 1000:.1f}",
                f"{timing.first_event_s * 1000:.1f}",
            ]
            for timing in timings
        ]
        header = ["server", "events", "events/s", "first byte ms", "first event ms"]
        _add_rows(results, "(d) custom events to one SSE client", header, rows)

    return server, "events", measure


def idle_streams(server: Server) -> Step:
    """Opens IDLE_STREAMS streams whose node waits, then watches the server sit with them."""

    def measure(process: subprocess.Popen[bytes], options: Options, results: Results) -> None:
        before = procfs.rss_mb(process.pid)
        bodies: list[dict[str, object]] = [
            {"messages": ["hi"], "config": {"thread_id": f"idle-{os.getpid()}-{index}"}}
            for index in range(IDLE_STREAMS)
        ]

        async def hold() -> list[str]:
            writers = await streams.hold_open(server.port, STREAM, bodies, timeout_s=120)
            await asyncio.sleep(2)  # let the runs settle into their wait
            cpu_before, started = procfs.cpu_seconds(process.pid), time.monotonic()
            await asyncio.sleep(options.idle_s)
            cpu = (procfs.cpu_seconds(process.pid) - cpu_before) / (time.monotonic() - started)
            held = procfs.rss_mb(process.pid)
            for writer in writers:
                writer.close()
            return [f"{len(writers):,}", f"{before:.0f}", f"{held:.0f}", f"{cpu:.1%}"]

        header = ["streams open", "RSS before MB", "RSS with them MB", "CPU while idle"]
        _add_rows(results, "(f) idle SSE streams held open", header, [asyncio.run(hold())])

    return server, "idle", measure


def _add_rows(results: Results, title: str, header: list[str], rows: list[list[str]]) -> None:
    results.tables.setdefault(title, (header, []))[1].extend(rows)


@dataclass
class Options:
    seconds: int
    repeats: int
    idle_s: float


Measure = Callable[[subprocess.Popen[bytes], Options, Results], None]
Step = tuple[Server, str, Measure]


def scenarios(database_url: str) -> dict[str, list[Step]]:
    bare_10 = bare(8601, 10)
    memory_10 = agentflow("agentflow memory", 8602, "two_nodes")
    postgres = {"CHECKPOINTER": "postgres", "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    shared = agentflow("agentflow postgres, 2 workers", 8603, "two_nodes", workers=2, env=postgres)
    bare_0 = bare(8604, 0)
    memory_0 = agentflow("agentflow memory", 8605, "two_nodes", sleep_ms=0)
    body: dict[str, object] = {"messages": ["hi"]}
    reference = load(bare_10, INVOKE, [20, 64])
    invoke = load(memory_10, INVOKE, [20, 64])
    # The headline: the request agentflow's client sends (a content-block message, a new
    # thread each), a graph whose turn adds two messages, the server's default settings.
    real_10 = agentflow("agentflow defaults", 8608, "tool_and_model", defaults=True)
    real_0 = agentflow("agentflow defaults", 8609, "tool_and_model", sleep_ms=0, defaults=True)
    return {
        "headline": [
            load(bare_10, INVOKE, [64], "blocks"),
            load(real_10, INVOKE, [64], "blocks"),
            load(real_10, STREAM, [64], "blocks"),
            load(bare_0, INVOKE, [64], "blocks"),
            load(real_0, INVOKE, [64], "blocks"),
        ],
        "invoke": [reference, invoke],
        "overhead": [load(bare_0, INVOKE, [20]), load(memory_0, INVOKE, [20])],
        "stream": [reference, load(memory_10, STREAM, [20, 64])],
        "events": [
            events(bare_10, "/events", body),
            events(agentflow("agentflow memory", 8606, "emitter"), STREAM, body),
        ],
        "postgres": [reference, invoke, load(shared, INVOKE, [64]), load(shared, STREAM, [64])],
        "idle": [idle_streams(agentflow("agentflow memory", 8607, "waiter"))],
    }


def plan(
    chosen: list[str], steps_by_scenario: dict[str, list[Step]]
) -> dict[Server, list[Measure]]:
    """The chosen scenarios' measurements by server (so each server starts once), each
    measurement once even when several scenarios need it (the bare reference)."""
    by_server: dict[Server, dict[str, Measure]] = {}
    for name in chosen:
        for server, what, measure in steps_by_scenario[name]:
            by_server.setdefault(server, {}).setdefault(what, measure)
    return {server: list(measures.values()) for server, measures in by_server.items()}


async def fresh_database() -> str:
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute('DROP DATABASE IF EXISTS "agentflow_bench" WITH (FORCE)')
    await conn.execute('CREATE DATABASE "agentflow_bench"')
    await conn.close()
    return DATABASE_URL.rsplit("/", 1)[0] + "/agentflow_bench"


def main() -> None:
    every = [
        *("headline", "invoke", "overhead", "stream", "events", "postgres", "idle"),
        *("queue", "operator"),
    ]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per load measurement")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=",".join(every), help="comma-separated scenarios")
    args = parser.parse_args()
    chosen = args.only.split(",")
    if unknown := set(chosen) - set(every):
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {every}")
    # A thousand open streams need a thousand sockets here and in the server (which inherits).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    options = Options(5 if args.quick else 10, args.repeats, idle_s=10)
    database = asyncio.run(fresh_database()) if "postgres" in chosen else DATABASE_URL
    results = Results()
    own_scripts = {"queue", "operator"}  # scenarios that start their own servers
    servers = plan([name for name in chosen if name not in own_scripts], scenarios(database))
    for server, measures in servers.items():
        with running(server) as process:
            for measure in measures:
                measure(process, options, results)
    if "queue" in chosen:
        from bench import queue as queue_bench

        rows = [[name, value] for name, value in queue_bench.run(2000)]
        _add_rows(results, "(h) background runs through the durable queue", ["", ""], rows)
    if "operator" in chosen:
        from bench import operator as operator_bench  # needs the test extras (the emulator)

        rows = [[name, value] for name, value in operator_bench.run()]
        _add_rows(results, "(g) operator: AgentGraphs created at once", ["", ""], rows)
    print_results(results)


def print_results(results: Results) -> None:
    if results.load:
        print_load_table(results.load)
    for title, (header, rows) in results.tables.items():
        print(f"\n{title}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")


def print_load_table(figures: list[Figure]) -> None:
    """One row per measurement; the ratio is to the bare reference's mean with the same waits
    and request at the same concurrency."""
    reference: dict[tuple[int, int, str], list[float]] = {}
    for figure in figures:
        if figure.server.bare:
            key = (figure.server.sleep_ms, figure.connections, figure.body)
            reference.setdefault(key, []).append(figure.rps)
    print("| server | scenario | conns | req/s | p50 ms | p99 ms | errors | CPU ms/req | vs bare |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        same = reference.get((f.server.sleep_ms, f.connections, f.body))
        ratio = f"{f.rps / statistics.mean(same):.0%}" if same else "-"
        print(
            f"| {f.server.name} | {f.scenario} | {f.connections} | {f.rps:,.0f} "
            f"| {f.p50_ms:.1f} | {f.p99_ms:.1f} | {f.errors} | {f.cpu_ms:.2f} | {ratio} |"
        )


if __name__ == "__main__":
    main()
