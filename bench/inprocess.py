"""CPU per request inside the app, without Uvicorn or wrk: for before/after comparisons of a
change, where the load figures of ``bench/run`` move with the machine's speed more than with
the change (a shared 2-core VM varies by 20% from one minute to the next).

    python -m bench.inprocess [--requests 3000] [--kind invoke|stream]

Sends the request a real client sends (``{"messages": ["hi"]}``, a new thread each, 20 in
flight) through httpx's ASGI transport to the agentflow app serving ``bench.graphs:two_nodes``
with 0 ms waits, then the same requests to the bare reference app (``bench/bare_app.py``), and
prints the process CPU time per request of each. To compare two commits, run it from each
checkout in turn, several times, and compare the agentflow/bare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import httpx
from fastapi import FastAPI

os.environ.setdefault("BENCH_SLEEP_MS", "0")
os.environ.setdefault("AGENTFLOW_GRAPH", "bench.graphs:two_nodes")
os.environ.setdefault("LOG_LEVEL", "WARNING")

IN_FLIGHT = 20


async def cpu_ms_per_request(app: FastAPI, path: str, requests: int) -> float:
    """Send ``requests`` POSTs of ``{"messages": ["hi"]}`` to ``path``, ``IN_FLIGHT`` at a
    time; the process CPU milliseconds per request (the app's lifespan excluded)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            slots = asyncio.Semaphore(IN_FLIGHT)

            async def one(index: int) -> None:
                body: dict[str, Any] = {"messages": ["hi"], "config": {"thread_id": f"t{index}"}}
                async with slots:
                    response = await client.post(path, json=body)
                    await response.aread()
                    if response.status_code != 200:
                        raise RuntimeError(f"{path} answered {response.status_code}")

            await one(-1)  # warm-up: first-request imports and caches
            started = time.process_time()
            await asyncio.gather(*(one(index) for index in range(requests)))
            return (time.process_time() - started) * 1000 / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--kind", choices=["invoke", "stream"], default="invoke")
    args = parser.parse_args()
    from agentflow.runtime.app import create_app
    from bench.bare_app import app as bare

    path = f"/v1/graph/{args.kind}"
    ours = asyncio.run(cpu_ms_per_request(create_app(), path, args.requests))
    # The bare app's stream is /events (BENCH_EVENTS events): its invoke is the reference.
    reference = asyncio.run(cpu_ms_per_request(bare, "/v1/graph/invoke", args.requests))
    print(f"agentflow {args.kind}: {ours:.3f} ms CPU per request")
    print(f"bare FastAPI invoke: {reference:.3f} ms CPU per request")
    print(f"agentflow / bare: {ours / reference:.2f}")


if __name__ == "__main__":
    main()
