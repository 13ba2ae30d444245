"""The ceiling: a bare FastAPI app doing what the benchmark graph does (a sync wait in the
thread pool, then an async wait, then a small JSON answer), with no engine and no state."""

import asyncio
import os
import time

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

SLEEP_S = float(os.environ.get("BENCH_SLEEP_MS", "10")) / 1000

app = FastAPI()


@app.post("/v1/graph/invoke")
async def invoke(request: Request) -> dict[str, object]:
    await request.json()
    await run_in_threadpool(time.sleep, SLEEP_S)  # FastAPI's own pool (40 threads)
    await asyncio.sleep(SLEEP_S)
    return {"data": {"messages": [{"role": "assistant", "content": "ok"}]}}
