"""Scenario (h): background runs through the durable queue, against invokes of the same request.

    python -m bench.queue --runs 2000

Two ``agentflow api`` replicas (one worker each) share a fresh Postgres database and Redis, and
serve ``bench.graphs:tool_and_model`` with 0 ms waits (the queue's cost, not the nodes', is
measured). The request is the one agentflow's client sends (a content-block message, a new
thread each). In the same run:

1. background: ``runs`` POSTs to ``/v1/graph/runs`` (``CONCURRENCY`` in flight, alternating
   replicas), then the clock runs until the database shows every run ended. Figures from the
   database's own timestamps: runs finished per second (first submission to last end), and
   claim latency (submission to first claim) p50 / p99;
2. the same number of invokes to the same two replicas (durable threads, no queue);
3. the reference: the same invokes to one in-memory worker;
4. resumption: one replica (room for 20) runs 20 runs of ``two_nodes`` with 2 s waits; 3 s
   in (the first step kept, the second under way) it is SIGKILLed beside a second replica
   (default poll interval); the clock runs from the kill until every run ended. The work left
   at the kill is the second step, 2 s: the rest is noticing the dead worker and claiming.

Claim latency is shown twice: for the burst of (1), where it is mostly time spent waiting for
room (each worker executes ``AGENTFLOW_MAX_RUNS_PER_WORKER`` runs at once), and for runs
submitted one at a time to a queue at rest.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import asyncpg

from bench.run import REDIS_URL, Server, agentflow, fresh_database, running

CONCURRENCY = 64
TIMEOUT_S = 600
POLL_S = 0.1
BASE_PORT = 8621
AT_REST = 200  # runs submitted one at a time, for the claim latency of a queue at rest


async def all_run_ids(database_url: str, graph_id: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT run_id FROM agentflow_runs WHERE graph_id = $1", graph_id)
    finally:
        await conn.close()
    return [row["run_id"] for row in rows]


def body() -> dict[str, object]:
    return {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "config": {"thread_id": uuid.uuid4().hex},
    }


async def post_all(urls: list[str], count: int) -> float:
    """POST ``count`` bodies, ``CONCURRENCY`` at a time, round-robin over ``urls``; the seconds
    it took. Any answer but 200/202 fails the benchmark."""
    targets = itertools.cycle(urls)
    in_flight = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:

        async def one(url: str) -> None:
            async with in_flight, http.post(url, json=body()) as response:
                if response.status not in (200, 202):
                    raise RuntimeError(f"{url} answered {response.status}: {await response.text()}")
                await response.read()

        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.gather(*(one(next(targets)) for _ in range(count)))
        return time.monotonic() - started


async def one_at_a_time(urls: list[str], count: int) -> list[str]:
    """Submit ``count`` runs one after the other (alternating replicas), each waited for to its
    end: the queue at rest, where a run meets a worker with room. Their run ids."""
    run_ids = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        for url in itertools.islice(itertools.cycle(urls), count):
            async with http.post(f"{url}/v1/graph/runs", json=body()) as response:
                run = (await response.json())["data"]
            wait = f"{url}/v1/threads/{run['thread_id']}/runs/{run['run_id']}/wait"
            async with http.get(wait, params={"timeout": "30"}) as response:
                if (await response.json())["data"]["status"] != "success":
                    raise RuntimeError(f"run {run['run_id']} did not succeed")
            run_ids.append(run["run_id"])
    return run_ids


async def claim_latencies(database_url: str, run_ids: list[str]) -> list[float]:
    """Submission to first claim, in ms, of these runs (sorted), from the table's timestamps."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms"
            " FROM agentflow_runs WHERE run_id = ANY($1::text[])",
            run_ids,
        )
    finally:
        await conn.close()
    return sorted(float(row["ms"]) for row in rows)


def percentiles(sorted_ms: list[float]) -> str:
    p99 = sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * 0.99))]
    return f"{statistics.median(sorted_ms):,.1f} / {p99:,.1f} ms"


async def queue_figures(database_url: str, graph_id: str, count: int) -> dict[str, float]:
    """Wait until ``count`` runs of ``graph_id`` ended; the queue's figures from the table."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            ended = await conn.fetchval(
                "SELECT count(*) FROM agentflow_runs WHERE graph_id = $1 AND ended_at IS NOT NULL",
                graph_id,
            )
            if ended >= count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ended} of {count} background runs ended")
            await asyncio.sleep(POLL_S)
        rows = await conn.fetch(
            "SELECT status, extract(epoch FROM created_at) AS created,"
            " extract(epoch FROM started_at) AS started, extract(epoch FROM ended_at) AS ended"
            " FROM agentflow_runs WHERE graph_id = $1",
            graph_id,
        )
    finally:
        await conn.close()
    failed = [row["status"] for row in rows if row["status"] != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} background runs did not succeed: {failed[:5]}")
    span = float(max(row["ended"] for row in rows) - min(row["created"] for row in rows))
    return {"runs_per_s": count / span}


@contextmanager
def replicas(servers: list[Server]) -> Iterator[None]:
    with running(servers[0]), running(servers[1]):
        yield


RESUMED = 20  # runs in flight on the replica killed
RESUME_WAIT_MS = 2000  # each of two_nodes' two steps
KILL_AFTER_S = 3.0  # after the runs started: the first step kept, the second under way


async def statuses(database_url: str, graph_id: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM agentflow_runs WHERE graph_id = $1 GROUP BY status",
            graph_id,
        )
    finally:
        await conn.close()
    return {row["status"]: int(row["n"]) for row in rows}


def resumption(database: str) -> float:
    """Seconds from the SIGKILL of a replica running ``RESUMED`` runs to the end of all of them
    on another replica (each resumed from its checkpoint)."""
    graph_id = f"bench-resume-{uuid.uuid4().hex[:8]}"
    env = {
        "CHECKPOINTER": "postgres",
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "AGENTFLOW_GRAPH_ID": graph_id,
    }
    doomed, survivor = (
        agentflow(
            name,
            BASE_PORT + 3 + i,
            "two_nodes",
            sleep_ms=RESUME_WAIT_MS,
            env={**env, "AGENTFLOW_MAX_RUNS_PER_WORKER": str(RESUMED)},
        )
        for i, name in enumerate(("doomed", "survivor"))
    )
    with running(doomed) as process:
        asyncio.run(post_all([f"http://127.0.0.1:{doomed.port}/v1/graph/runs"], RESUMED))
        deadline = time.monotonic() + 60
        while asyncio.run(statuses(database, graph_id)).get("running", 0) < RESUMED:
            if time.monotonic() > deadline:
                raise RuntimeError("the runs did not all start on the doomed replica")
            time.sleep(POLL_S)
        time.sleep(KILL_AFTER_S)
        with running(survivor):
            killed = time.monotonic()
            os.killpg(process.pid, signal.SIGKILL)
            while asyncio.run(statuses(database, graph_id)).get("success", 0) < RESUMED:
                if time.monotonic() - killed > TIMEOUT_S:
                    raise RuntimeError("the killed replica's runs did not all finish")
                time.sleep(POLL_S)
            return time.monotonic() - killed


def run(count: int) -> list[tuple[str, str]]:
    database = asyncio.run(fresh_database())
    graph_id = f"bench-queue-{uuid.uuid4().hex[:8]}"
    shared = {
        "CHECKPOINTER": "postgres",
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "AGENTFLOW_GRAPH_ID": graph_id,
    }
    pair = [
        agentflow(f"replica {i}", BASE_PORT + i, "tool_and_model", sleep_ms=0, env=shared)
        for i in range(2)
    ]
    memory = agentflow("agentflow memory", BASE_PORT + 2, "tool_and_model", sleep_ms=0)
    with replicas(pair):
        submitted_s = asyncio.run(
            post_all([f"http://127.0.0.1:{s.port}/v1/graph/runs" for s in pair], count)
        )
        queue = asyncio.run(queue_figures(database, graph_id, count))
        burst_ids = asyncio.run(all_run_ids(database, graph_id))
        at_rest_ids = asyncio.run(
            one_at_a_time([f"http://127.0.0.1:{s.port}" for s in pair], AT_REST)
        )
        invoked_s = asyncio.run(
            post_all([f"http://127.0.0.1:{s.port}/v1/graph/invoke" for s in pair], count)
        )
    with running(memory):
        reference_s = asyncio.run(
            post_all([f"http://127.0.0.1:{memory.port}/v1/graph/invoke"], count)
        )
    resumed_s = resumption(database)
    reference = count / reference_s
    shared_invoke = count / invoked_s
    return [
        ("runs (each figure)", f"{count:,}, {CONCURRENCY} requests in flight"),
        ("background: submitted (202) per second, 2 replicas", f"{count / submitted_s:,.0f}"),
        (
            "background: finished per second, 2 replicas (first submission to last end)",
            f"{queue['runs_per_s']:,.0f} ({queue['runs_per_s'] / reference:.0%} of the reference)",
        ),
        (
            "background: claim latency p50 / p99, the burst above (queueing included)",
            percentiles(asyncio.run(claim_latencies(database, burst_ids))),
        ),
        (
            f"background: claim latency p50 / p99, {AT_REST} runs one at a time",
            percentiles(asyncio.run(claim_latencies(database, at_rest_ids))),
        ),
        (
            "invoke, the same 2 replicas (Postgres + Redis)",
            f"{shared_invoke:,.0f} runs/s ({shared_invoke / reference:.0%} of the reference)",
        ),
        ("reference: invoke, 1 in-memory worker", f"{reference:,.0f} runs/s"),
        (
            f"resumption: {RESUMED} runs of a SIGKILLed replica all finished on another, after",
            f"{resumed_s:.1f} s ({RESUME_WAIT_MS / 1000:g} s of work was left)",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="runs per figure")
    args = parser.parse_args()
    print("| figure | value |")
    print("|---|---|")
    for name, value in run(args.runs):
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
