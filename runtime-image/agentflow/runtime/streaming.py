"""Streaming over HTTP: the two wire formats (Server-Sent Events and NDJSON) and the response
that sends them, with keep-alive pings and prompt notice of a client that left.

Why not sse-starlette's ``EventSourceResponse``: it runs every response in an anyio task group
of three or four tasks (stream, pings, disconnect listener, shutdown watcher), which cost about
a third of the throughput of a short stream (docs/benchmarks.md). This response runs the stream
in the request's own task and one helper task that both pings and listens for the disconnect.
A shutdown watcher is not needed here: on SIGTERM the service stops its runs after the grace
period, which ends their streams, and Uvicorn's graceful-shutdown timeout (longer than that
grace) cancels whatever is still open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from agentflow.graph.types import StreamChunk

SSE_MEDIA_TYPE = "text/event-stream"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
SSE_PING = b": ping\n"
"""An SSE comment line: clients ignore it, proxies with idle timeouts see traffic. Without a
blank line after it: a blank line ends an event, and some clients (httpx-sse 0.4) then report
an empty event carrying the previous event's id."""


def encode_sse(chunk: StreamChunk, index: int | None) -> bytes:
    """One Server-Sent Event: ``id: <index>``, ``event: <type>``, ``data: <StreamChunk JSON>``,
    blank line. The id is the chunk's position in the run, so a client that lost the stream can
    join it again after the last id it saw; a chunk that is no event of the run's log (a
    ``gap``, how a joined stream broke off) has no position and no id. JSON never contains a
    raw newline, so one ``data:`` line always suffices."""
    return b"".join(
        (
            b"" if index is None else b"id: %d\n" % index,
            b"event: ",
            chunk.event.encode(),
            b"\ndata: ",
            chunk.json(),
            b"\n\n",
        )
    )


def encode_ndjson(chunk: StreamChunk) -> bytes:
    """One StreamChunk JSON object per line, agentflow's streaming format."""
    return chunk.json() + b"\n"


class StreamResponse(StreamingResponse):
    """Sends each chunk of ``body`` as it comes and, given ``ping=(data, every_s)``, ``data``
    every ``every_s`` seconds so idle proxies keep the connection. When the client disconnects,
    the body is closed at once, even while it waits for its next chunk: a stream's producer (a
    run to cancel with its stream) learns it in its ``finally``."""

    media_type = "text/event-stream"  # what /openapi.json names (NDJSON is per request)

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        media_type: str,
        *,
        ping: tuple[bytes, float] | None = None,
    ) -> None:
        # X-Accel-Buffering: nginx must not buffer the stream.
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        super().__init__(body, media_type=media_type, headers=headers)
        self.chunks = body  # the generator itself: closed at once when the client leaves
        self.ping = ping
        self.client_left = False  # set by the helper task when the disconnect arrives

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        # Cancelled before every exit of the try below, so it can never cancel us after it.
        helper = asyncio.create_task(self._ping_until_disconnect(receive, send, streaming))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            helper.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.client_left:
                raise  # cancelled from outside (shutdown): not ours to swallow
            streaming.uncancel()
        except OSError:
            pass  # the client left while we wrote (Uvicorn's ClientDisconnected is an OSError)
        finally:
            helper.cancel()
            await self.chunks.aclose()

    async def _ping_until_disconnect(
        self, receive: Receive, send: Send, streaming: asyncio.Task[None]
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(None if self.ping is None else self.ping[1]):
                    message = await receive()
            except TimeoutError:
                assert self.ping is not None
                try:
                    await send(
                        {"type": "http.response.body", "body": self.ping[0], "more_body": True}
                    )
                except OSError:
                    break
                continue
            if message["type"] == "http.disconnect":
                break
        self.client_left = True
        streaming.cancel()


def prefers_ndjson(accept: str) -> bool:
    """Whether an ``Accept`` header asks for NDJSON over SSE, ``q`` values honoured: NDJSON
    when it is acceptable (q > 0) and no less wanted than ``text/event-stream``."""
    weights: dict[str, float] = {}
    for item in accept.split(","):
        media_type, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media_type.lower()] = max(weight, weights.get(media_type.lower(), 0.0))
    ndjson = weights.get(NDJSON_MEDIA_TYPE, 0.0)
    sse = max(weights.get(SSE_MEDIA_TYPE, 0.0), weights.get("text/*", 0.0))
    return ndjson > 0 and ndjson >= sse


def stream_response(
    request: Request, batches: AsyncIterator[list[StreamChunk]], first_index: int = 0
) -> StreamResponse:
    """Server-Sent Events by default; ``Accept: application/x-ndjson`` gets one StreamChunk JSON
    per line instead. Each batch (the events ready together) is one write; ``first_index``
    numbers the first chunk (SSE ids)."""
    sent = request.app.state.metrics.stream_events

    def count(batch: list[StreamChunk]) -> None:
        for chunk in batch:
            sent.labels(chunk.event).inc()

    if prefers_ndjson(request.headers.get("accept", "")):

        async def lines() -> AsyncGenerator[bytes, None]:
            async for batch in batches:
                count(batch)
                yield b"".join(encode_ndjson(chunk) for chunk in batch)

        return StreamResponse(lines(), NDJSON_MEDIA_TYPE)

    async def events() -> AsyncGenerator[bytes, None]:
        index = first_index
        async for batch in batches:
            count(batch)
            parts = []
            for chunk in batch:
                parts.append(encode_sse(chunk, index if chunk.positioned else None))
                index += _positions_taken(chunk)
            yield b"".join(parts)

    return StreamResponse(
        events(), SSE_MEDIA_TYPE, ping=(SSE_PING, request.app.state.settings.sse_ping_s)
    )


def _positions_taken(chunk: StreamChunk) -> int:
    """How far a chunk moves the run's position: one, or the chunks a gap stands for."""
    if chunk.positioned:
        return 1
    return int(chunk.data["missed"]) if chunk.event == "gap" else 0
