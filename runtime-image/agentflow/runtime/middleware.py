"""Pure ASGI middleware (no per-request task or body copy, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentflow.ids import new_id
from agentflow.runtime.errors import ErrorInfo
from agentflow.runtime.logs import request_id_var
from agentflow.runtime.responses import error_response

_GOOD_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if sane) in
    ``scope["state"]["request_id"]`` and echoes it in the ``X-Request-ID`` response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given if _GOOD_REQUEST_ID.fullmatch(given) else new_id().encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        token = request_id_var.set(request_id.decode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class RequestSizeLimitMiddleware:
    """Refuses headers over ``max_header_bytes`` with 431 before the app sees them, and bodies
    over ``max_bytes`` with 413: at once when Content-Length says so, and while reading
    otherwise (chunked uploads), before the app buffers them.

    The body error is raised as an HTTPException from ``receive`` because FastAPI re-raises
    those from body parsing, so the app's one error handler renders it like every other error.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if header_bytes > self.max_header_bytes:
            message = (
                f"the request headers take {header_bytes} bytes, over the limit of "
                f"{self.max_header_bytes}"
            )
            response = error_response(Request(scope), ErrorInfo(431, "headers_too_large", message))
            await response(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            receive = self._refuse
        else:
            receive = self._counting(receive)
        await self.app(scope, receive, send)

    async def _refuse(self) -> Message:
        raise BodyTooLarge(self.max_bytes)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        return counted


class SecurityHeadersMiddleware:
    """Adds security headers to every response: ``nosniff`` always; in production also
    no framing, no referrer, no caching, a Content-Security-Policy that forbids everything (an
    API answers JSON, never pages; the docs pages, when on, are exempt), and HSTS when the
    request came over TLS (directly or as ``X-Forwarded-Proto: https`` from a proxy)."""

    _DOCS = ("/docs", "/redoc", "/openapi.json")

    def __init__(self, app: ASGIApp, production: bool) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff")]
        if self.production:
            extra += [
                (b"x-frame-options", b"DENY"),
                (b"referrer-policy", b"no-referrer"),
                (b"cache-control", b"no-store"),
            ]
            if not scope["path"].startswith(self._DOCS):
                extra.append(
                    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
                )
            forwarded = Headers(scope=scope).get("x-forwarded-proto", "")
            if scope.get("scheme") == "https" or forwarded.split(",")[0].strip() == "https":
                extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(name, value) for name, value in extra if name not in present]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JSONRefusalCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight is a JSON error like every other refusal,
    and grants no CORS header at all."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        origin = request_headers.get("origin", "")
        reasons = []
        if not self.is_allowed_origin(origin):
            reasons.append(f"origin {origin!r} is not allowed")
        method = request_headers.get("access-control-request-method", "")
        if method not in self.allow_methods:
            reasons.append(f"method {method!r} is not allowed")
        if not reasons:
            reasons.append("the requested headers are not all allowed")
        message = "CORS preflight refused: " + "; ".join(reasons)
        scope: Scope = {"type": "http", "headers": [], "state": {}}
        return error_response(Request(scope), ErrorInfo(403, "cors_refused", message))
