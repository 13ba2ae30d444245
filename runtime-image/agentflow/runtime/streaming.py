"""The streaming HTTP response: SSE and NDJSON bodies, with keep-alive pings and prompt
notice of a client that left.

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
from collections.abc import AsyncGenerator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

SSE_PING = b": ping\n\n"
"""An SSE comment: clients ignore it, proxies with idle timeouts see traffic."""


class StreamResponse(Response):
    """Sends each chunk of ``body`` as it comes and, given ``ping=(data, every_s)``, ``data``
    every ``every_s`` seconds so idle proxies keep the connection. When the client disconnects,
    the body is closed at once, even while it waits for its next chunk: a stream's producer (a
    run to cancel with its stream) learns it in its ``finally``."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        media_type: str,
        *,
        ping: tuple[bytes, float] | None = None,
    ) -> None:
        self.body_iterator = body
        self.ping = ping
        self.client_left = False  # set by the helper task when the disconnect arrives
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        # X-Accel-Buffering: nginx must not buffer the stream.
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        # Cancelled before every exit of the try below, so it can never cancel us after it.
        helper = asyncio.create_task(self._ping_until_disconnect(receive, send, streaming))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
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
            await self.body_iterator.aclose()

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
