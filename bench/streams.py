"""A minimal HTTP/1.1 streaming client on raw sockets, fast enough not to be what is measured:
one stream read to its end (events per second, time to first byte and first event), and many
streams held open at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

CUSTOM_EVENT = b"event: custom"


def _request(port: int, path: str, body: dict[str, object], close: bool) -> bytes:
    payload = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode() + payload


@dataclass
class StreamTiming:
    first_byte_s: float
    first_event_s: float
    total_s: float
    events: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.total_s


async def read_one(port: int, path: str, body: dict[str, object], timeout_s: float) -> StreamTiming:
    """Send one stream request and read the response to its end (the server closes it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    first_byte = first_event = 0.0
    try:
        async with asyncio.timeout(timeout_s):
            started = time.perf_counter()
            writer.write(_request(port, path, body, close=True))
            while data := await reader.read(1 << 16):
                now = time.perf_counter() - started
                first_byte = first_byte or now
                received += data
                if not first_event and CUSTOM_EVENT in received:
                    first_event = now
            total = time.perf_counter() - started
    finally:
        writer.close()
    if not received.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the stream was refused: {bytes(received[:300])!r}")
    return StreamTiming(first_byte, first_event, total, received.count(CUSTOM_EVENT))


async def hold_open(
    port: int, path: str, bodies: list[dict[str, object]], timeout_s: float
) -> list[asyncio.StreamWriter]:
    """Open one stream per body and wait until each has its response headers; the streams
    stay open until the returned writers are closed."""

    connecting = asyncio.Semaphore(100)  # a burst, not a thousand SYNs at once

    async def open_one(body: dict[str, object]) -> asyncio.StreamWriter:
        async with connecting:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(port, path, body, close=False))
            head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"a stream was refused: {head[:300]!r}")
        return writer

    async with asyncio.timeout(timeout_s):
        return list(await asyncio.gather(*(open_one(body) for body in bodies)))
