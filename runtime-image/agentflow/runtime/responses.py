"""The JSON response class (orjson) and the two shapes every answer takes: data or error."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse

from agentflow.graph.types import StreamChunk
from agentflow.runtime.errors import ErrorInfo
from agentflow.runtime.publisher import (
    NDJSON_MEDIA_TYPE,
    SSE_MEDIA_TYPE,
    encode_ndjson,
    encode_sse,
)
from agentflow.runtime.schemas import envelope, response_metadata
from agentflow.runtime.streaming import SSE_PING, StreamResponse


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def ok(request: Request, data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(envelope(data, request_id(request)), status_code=status_code)


def error_response(
    request: Request, info: ErrorInfo, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": info.to_dict(), "metadata": response_metadata(request_id(request))}
    return JSONResponse(body, status_code=info.status, headers=headers)


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

    if NDJSON_MEDIA_TYPE in request.headers.get("accept", ""):

        async def lines() -> AsyncGenerator[bytes, None]:
            async for batch in batches:
                count(batch)
                yield b"".join(encode_ndjson(chunk) for chunk in batch)

        return StreamResponse(lines(), NDJSON_MEDIA_TYPE)

    async def events() -> AsyncGenerator[bytes, None]:
        index = first_index
        async for batch in batches:
            count(batch)
            yield b"".join(encode_sse(chunk, index + offset) for offset, chunk in enumerate(batch))
            index += len(batch)

    return StreamResponse(
        events(), SSE_MEDIA_TYPE, ping=(SSE_PING, request.app.state.settings.sse_ping_s)
    )
