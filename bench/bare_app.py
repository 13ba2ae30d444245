"""The ceiling: a bare FastAPI app doing what the benchmark graphs do, with no engine and no
state: ``/v1/graph/invoke`` waits like ``two_nodes`` (a sync wait in the thread pool, then an
async wait) and answers small JSON; ``/events`` streams BENCH_EVENTS SSE events like
``emitter``, each its own write, as a plain StreamingResponse does."""

import asyncio
import os
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

SLEEP_S = float(os.environ.get("BENCH_SLEEP_MS", "10")) / 1000
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))

app = FastAPI()


@app.post("/v1/graph/invoke")
async def invoke(request: Request) -> dict[str, object]:
    await request.json()
    await run_in_threadpool(time.sleep, SLEEP_S)  # FastAPI's own pool (40 threads)
    await asyncio.sleep(SLEEP_S)
    return {"data": {"messages": [{"role": "assistant", "content": "ok"}]}}


@app.post("/events")
async def events(request: Request) -> StreamingResponse:
    await request.json()

    async def body() -> AsyncIterator[bytes]:
        for index in range(EVENTS):
            yield b'event: custom\ndata: {"event":"custom","data":{"token":%d}}\n\n' % index
            await asyncio.sleep(0)
        yield b"event: end\ndata: {}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")
