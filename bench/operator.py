"""Scenario (g): the operator facing 1,000 AgentGraphs created at once.

    python -m bench.operator --count 1000 --idle 30

The API emulator (tests/kube) serves on a loopback port in a thread of this process, prepared
as the tests' ``kube`` fixture prepares it, plus the JWT Secret every graph reads. The operator
is its own ``agentflow-operator run`` process, so its memory and CPU are its own (its pid is
printed on stderr, for py-spy). Once it watches, the graphs (the example support agent, each
with its own name) are created by concurrent POSTs, and the clock runs until every graph has a
Deployment and ``Accepted=True`` in its status (what reconciliation writes once the spec is
valid and every object is applied).

Figures: how long creating took and how long converging took (both from the first POST); the
operator's peak RSS (VmHWM of /proc/<pid>/status, over its whole life); its CPU (utime + stime
of /proc/<pid>/stat) while converging and during ``idle`` seconds afterwards, as a percentage
of one core; the emulator thread's CPU while converging (is the test double the bottleneck?);
the API requests the operator made per graph, by verb, and per second while idle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench import procfs
from tests.conftest import free_port
from tests.kube.client import DEFAULT_DSN_SECRET, Kube, prepare
from tests.kube.cluster import Cluster
from tests.kube.emulator import EmulatorServer, Recorded
from tests.operator.test_operator import graph, jwt_secret
from tests.polling import NotReached, eventually

NAMESPACE = "agents"  # where graph() puts them
AGENT = "agentflow-bench"  # the user agent of our own requests: all others are the operator's
CONCURRENCY = 16  # POSTs in flight while creating: enough to keep the emulator busy
START_TIMEOUT_S = 60  # for the operator to open its watches
CONVERGE_TIMEOUT_S = 300
POLL_S = 0.25
STOP_TIMEOUT_S = 30
WATCHED = {"agentgraphs", "deployments", "secrets"}  # the operator is ready once it watches these

Row = tuple[str, str]


def run(count: int = 1000, idle_s: float = 30) -> list[Row]:
    """Run the scenario and return its figures as (name, formatted value) rows."""
    bodies = [graph(f"graph-{i:04d}") for i in range(count)]  # built before the clock starts
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as workdir:
        server = EmulatorServer(free_port()).start()
        operator: subprocess.Popen[bytes] | None = None
        log = Path(workdir) / "operator.log"
        try:
            kubeconfig = server.kubeconfig(Path(workdir) / "kubeconfig")
            with httpx.Client(base_url=server.url, headers={"user-agent": AGENT}) as http:
                kube = Kube(server, http)
                prepare(kube)
                jwt_secret(kube)
            operator = start_operator(kubeconfig, log, resync_s=idle_s / 3)
            print(f"operator pid {operator.pid}, emulator in pid {os.getpid()}", file=sys.stderr)
            wait_until_watching(server, operator, log)
            return measure(server, operator, log, bodies, idle_s)
        finally:
            if operator is not None:
                stop(operator)
            server.stop()


def start_operator(kubeconfig: Path, log: Path, resync_s: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET": DEFAULT_DSN_SECRET,
        "AGENTFLOW_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz",
        # Resyncs inside the idle window: what idling costs includes comparing every graph.
        "AGENTFLOW_OPERATOR_RESYNC_S": str(resync_s),
    }
    code = "from agentflow_operator.cli import main; main()"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C on the bench reaches it through stop() only
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_watching(
    server: EmulatorServer, operator: subprocess.Popen[bytes], log: Path
) -> None:
    def watched() -> set[str]:
        return {w.rtype.plural for w in server.emulator.cluster.watchers}

    if not poll_until(lambda: server.call(watched) >= WATCHED, operator, log, START_TIMEOUT_S):
        raise RuntimeError(f"the operator did not watch {sorted(WATCHED)} in {START_TIMEOUT_S} s")


def poll_until(
    done: Callable[[], bool],
    operator: subprocess.Popen[bytes],
    log: Path,
    timeout_s: float,
) -> bool:
    """Poll ``done`` until it holds (True) or ``timeout_s`` passes (False); fail if the
    operator exits meanwhile."""

    def check() -> bool:
        if operator.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the operator exited with {operator.returncode}:\n{tail}")
        return done()

    try:
        return eventually(check, max(timeout_s, 0), "the operator's work", every_s=POLL_S)
    except NotReached:
        return False


@dataclass(frozen=True)
class Mark:
    """Where the clock and the counters stood at one moment."""

    at: float
    operator_cpu_s: float
    emulator_cpu_s: float
    requests: int


def mark(server: EmulatorServer, operator: subprocess.Popen[bytes]) -> Mark:
    return Mark(
        time.monotonic(),
        procfs.cpu_seconds(operator.pid),
        server.call(time.thread_time),  # run in the emulator's thread: that thread's CPU time
        len(server.emulator.requests),
    )


def measure(
    server: EmulatorServer,
    operator: subprocess.Popen[bytes],
    log: Path,
    bodies: list[dict[str, Any]],
    idle_s: float,
) -> list[Row]:
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    start = mark(server, operator)
    asyncio.run(create_all(server.url, bodies))
    created_s = time.monotonic() - start.at
    names = [body["metadata"]["name"] for body in bodies]
    pending = wait_for_convergence(server, operator, log, names, start.at + CONVERGE_TIMEOUT_S)
    converged = mark(server, operator)
    time.sleep(idle_s)
    idled = mark(server, operator)

    converging_s, idle_wall_s = converged.at - start.at, idled.at - converged.at
    if pending:
        sample = ", ".join(pending[:5])
        converged_text = f"not within {CONVERGE_TIMEOUT_S} s: {len(pending):,} left ({sample}...)"
    else:
        converged_text = f"{converging_s:.1f} s"
    recorded = server.emulator.requests
    converging = operator_requests(recorded[start.requests : converged.requests])
    idle_requests = operator_requests(recorded[converged.requests : idled.requests])
    plurals = server.call(lambda: {t.plural for t in server.emulator.cluster.types.values()})
    by_verb = Counter(verb(r, plurals) for r in converging)
    verbs = ", ".join(f"{name} {n / len(bodies):.1f}" for name, n in by_verb.most_common())
    return [
        ("machine", f"{os.cpu_count()} cores, load average {load:.2f} at the start"),
        ("AgentGraphs", f"{len(bodies):,}"),
        (f"created in ({CONCURRENCY} POSTs in flight)", f"{created_s:.1f} s"),
        ("converged in (Accepted=True + Deployment, from the first POST)", converged_text),
        ("operator peak RSS (VmHWM)", f"{procfs.peak_rss_mb(operator.pid):.0f} MB"),
        (
            "operator CPU while converging (of one core)",
            f"{(converged.operator_cpu_s - start.operator_cpu_s) / converging_s:.0%}",
        ),
        (
            "emulator CPU while converging (of one core)",
            f"{(converged.emulator_cpu_s - start.emulator_cpu_s) / converging_s:.0%}",
        ),
        (
            f"operator CPU while idle ({idle_wall_s:.0f} s after converging, a resync of every "
            f"graph each {idle_s / 3:.0f} s)",
            f"{(idled.operator_cpu_s - converged.operator_cpu_s) / idle_wall_s:.1%}",
        ),
        (
            "operator API requests per graph while converging",
            f"{len(converging) / len(bodies):.1f} ({verbs})",
        ),
        ("operator API requests per second while idle", f"{len(idle_requests) / idle_wall_s:.1f}"),
    ]


def wait_for_convergence(
    server: EmulatorServer,
    operator: subprocess.Popen[bytes],
    log: Path,
    names: list[str],
    deadline: float,
) -> list[str]:
    """Poll until every graph converged or ``deadline`` passes; the graphs left."""
    pending = names

    # Read in the emulator's own loop (the cluster is not thread-safe): no API request that
    # the counts would include, no load on the emulator's HTTP path.
    def converged() -> bool:
        nonlocal pending
        pending = server.call(lambda: unconverged(server.emulator.cluster, pending))
        return not pending

    poll_until(converged, operator, log, deadline - time.monotonic())
    return pending


async def create_all(url: str, bodies: list[dict[str, Any]]) -> None:
    """POST every graph, ``CONCURRENCY`` at a time, within ``CONVERGE_TIMEOUT_S``.

    aiohttp, not httpx: this client shares the emulator's process, hence its GIL, and httpx
    spent three times the emulator's own CPU on the same POSTs (its pool checks every
    connection per request), so the emulator waited on the benchmark."""
    path = f"{url}/apis/agentflow.dev/v1alpha1/namespaces/{NAMESPACE}/agentgraphs"
    in_flight = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"user-agent": AGENT}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:

        async def create(body: dict[str, Any]) -> None:
            async with in_flight, http.post(path, json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"creating an AgentGraph failed: {await response.text()}")

        async with asyncio.timeout(CONVERGE_TIMEOUT_S):
            await asyncio.gather(*(create(body) for body in bodies))


def unconverged(cluster: Cluster, names: list[str]) -> list[str]:
    """The graphs without Accepted=True or without a Deployment (run in the emulator's loop)."""
    graphs = cluster.objects.get(("agentflow.dev", "agentgraphs"), {})
    deployments = cluster.objects.get(("apps", "deployments"), {})
    return [
        name
        for name in names
        if not (accepted(graphs.get((NAMESPACE, name))) and (NAMESPACE, name) in deployments)
    ]


def accepted(body: dict[str, Any] | None) -> bool:
    conditions = ((body or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Accepted" and c.get("status") == "True" for c in conditions)


def operator_requests(recorded: list[Recorded]) -> list[Recorded]:
    return [r for r in recorded if r.user_agent != AGENT]


def verb(request: Recorded, plurals: set[str]) -> str:
    """The Kubernetes verb: a GET of a collection is a list (or a watch), of an object a get."""
    if request.method != "GET":
        return request.method.lower()
    if request.query.get("watch") in ("1", "true"):
        return "watch"
    return "list" if request.path.rsplit("/", 1)[-1] in plurals else "get"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1000, help="AgentGraphs to create")
    parser.add_argument(
        "--idle", type=float, default=30, help="seconds idling is measured (three resyncs)"
    )
    args = parser.parse_args()
    rows = run(args.count, args.idle)
    print("| figure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
