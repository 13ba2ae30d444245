"""Uvicorn's HTTP/1.1 protocol with the bounds a server facing untrusted clients needs and
Uvicorn leaves out: a deadline and a size cap for each request's head, and a cap on open
connections that sheds the connections waiting longest for a request first.

Without them a client holds a connection forever by sending half a request (slowloris), no
token needed, and enough such connections exhaust the process's file descriptors: nobody
else is served. With them a half-sent request gets 408 after ``AGENTFLOW_HEADER_TIMEOUT_S``,
and past ``AGENTFLOW_MAX_CONNECTIONS`` a new connection displaces the oldest one that has no
request in progress (streams and requests being answered are never cut for it).

Selected with ``uvicorn.run(http=GuardedHttpProtocol)``; the limits come from the settings
(the environment), read once per worker process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agentflow.runtime.errors import ErrorInfo
from agentflow.runtime.settings import load_settings

logger = logging.getLogger("agentflow.server")

# Descriptors kept free for everything but client connections: the Postgres and Redis pools,
# log files, the graph's own files and sockets.
DESCRIPTORS_RESERVED = 256
# Room for the request line (the URL) on top of the headers' own limit: between the two the
# app's 431 answers (it names the headers' size); past this the head is refused unread.
REQUEST_LINE_ROOM = 16 * 1024
# How long a refused connection is still read from before it is closed (see _refuse).
LINGER_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    head_timeout_s: float
    max_head_bytes: int


@functools.cache
def connection_limits() -> ConnectionLimits:
    """This process's limits: the settings', with the connection cap lowered to what the
    descriptor limit allows (raised to its hard limit first, as Go's runtime does)."""
    settings = load_settings()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    allowed = max(soft - DESCRIPTORS_RESERVED, 1)
    if settings.max_connections > allowed:
        logger.warning(
            "AGENTFLOW_MAX_CONNECTIONS=%d is more than this process's descriptor limit (%d) "
            "allows: at most %d connections",
            settings.max_connections,
            soft,
            allowed,
        )
    return ConnectionLimits(
        max_connections=min(settings.max_connections, allowed),
        head_timeout_s=settings.header_timeout_s,
        max_head_bytes=settings.max_header_bytes + REQUEST_LINE_ROOM,
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. It is *waiting* from the moment it opens, and again after each
    response on a kept-alive connection, until a request's head has arrived."""

    # This process's waiting connections, oldest first (a dict keeps insertion order).
    _waiting: ClassVar[dict[GuardedHttpProtocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = connection_limits()
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            if not self._waiting:  # every connection is busy with a request: refuse this one
                message = (
                    f"the server holds {self.limits.max_connections} connections, all busy, "
                    "its limit (AGENTFLOW_MAX_CONNECTIONS): retry later"
                )
                self._refuse(ErrorInfo(503, "too_many_connections", message))
                return
            next(iter(self._waiting))._shed()
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered already: what the client still sends is read and dropped
        super().data_received(data)
        if self in self._waiting and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(
                    ErrorInfo(
                        431,
                        "headers_too_large",
                        f"the request's head is over {self.limits.max_head_bytes} bytes",
                    )
                )

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Uvicorn armed its keep-alive timer: the connection waits for its next request.
        if self.timeout_keep_alive_task is not None:
            self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait_for_head(self) -> None:
        self._head_bytes = 0
        self._waiting[self] = None
        self._head_deadline = self.loop.call_later(self.limits.head_timeout_s, self._too_slow)

    def _stop_waiting(self) -> None:
        self._waiting.pop(self, None)
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _too_slow(self) -> None:
        if self._head_bytes == 0:  # idle, no request begun: nothing to answer
            self._shed()
            return
        timeout = self.limits.head_timeout_s
        message = f"the request's head did not arrive within {timeout:g} s"
        self._refuse(ErrorInfo(408, "request_timeout", message))

    def _shed(self) -> None:
        self._stop_waiting()
        self.transport.close()

    def _refuse(self, info: ErrorInfo) -> None:
        """Answer a connection whose request is not served (its head never arrived, is too
        large, or there is no room for it), and close."""
        self._stop_waiting()
        body = orjson.dumps({"error": info.to_dict()})
        head = (
            f"HTTP/1.1 {info.status} {_REASONS[info.status]}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        # Close only a moment later, reading meanwhile: closing with the client's request
        # unread would reset the connection, and the client could lose the answer with it.
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


_REASONS = {
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
