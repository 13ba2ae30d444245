"""Pure ASGI middleware (no per-request task or body copy, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import re
import time

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentflow.ids import new_id
from agentflow.runtime.errors import ErrorInfo, report
from agentflow.runtime.logs import request_id_var
from agentflow.runtime.metrics import Metrics
from agentflow.runtime.responses import error_response

_GOOD_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class ExchangeMiddleware:
    """What every HTTP exchange gets, in one pass (one wrapper of ``send``, not one per
    concern: each costs every response, and every event of a stream):

    * an id: the caller's ``X-Request-ID`` if sane, else a new one, in
      ``scope["state"]["request_id"]`` and the logs' context, echoed in ``X-Request-ID``;
    * security headers: ``nosniff`` always; in production also no framing, no referrer, no
      caching, a Content-Security-Policy that forbids everything (an API answers JSON, never
      pages; the docs pages, when on, are exempt), and HSTS when the request came over TLS
      (directly or as ``X-Forwarded-Proto: https`` from a proxy);
    * ``Vary: Origin``, since the CORS headers depend on the Origin;
    * the request counted and timed by route template (never the concrete path, so the number
      of metric series stays bounded).

    Headers the app set itself are kept.
    """

    _DOCS = ("/docs", "/redoc", "/openapi.json")

    def __init__(self, app: ASGIApp, metrics: Metrics, production: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.production = production
        self.always = [(b"x-content-type-options", b"nosniff"), (b"vary", b"Origin")]
        if production:
            self.always += [
                (b"x-frame-options", b"DENY"),
                (b"referrer-policy", b"no-referrer"),
                (b"cache-control", b"no-store"),
            ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"")
        request_id = given if _GOOD_REQUEST_ID.fullmatch(given) else new_id().encode()
        scope.setdefault("state", {})["request_id"] = request_id_text = request_id.decode()
        token = request_id_var.set(request_id_text)
        extra = [(b"x-request-id", request_id), *self.always]
        if self.production:
            extra += self._production_extra(scope["path"], scope.get("scheme"), headers)
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(name, value) for name, value in extra if name not in present]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:  # noqa: BLE001 - a bug: answered and logged here, once
            # Not re-raised: Starlette's outermost middleware would log it a second time,
            # and Uvicorn a third.
            info = report(error, production=self.production)
            if not response_started:
                await error_response(Request(scope), info)(scope, receive, send_with_headers)
        finally:
            request_id_var.reset(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            elapsed = time.perf_counter() - started
            self.metrics.request_seconds.labels(method, route).observe(elapsed)

    def _production_extra(
        self, path: str, scheme: str | None, headers: dict[bytes, bytes]
    ) -> list[tuple[bytes, bytes]]:
        extra = []
        if not path.startswith(self._DOCS):
            extra.append(
                (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
            )
        forwarded = headers.get(b"x-forwarded-proto", b"").decode("latin-1")
        if scheme == "https" or forwarded.split(",")[0].strip() == "https":
            extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        return extra


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


class JSONRefusalCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight is a JSON error like every other refusal,
    and grants no CORS header at all; and a request without an ``Origin`` (not a CORS
    request: servers, curl, other services) passes straight through, since there is nothing
    to add to its answer (its ``Vary: Origin`` comes from :class:`ExchangeMiddleware`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(name == b"origin" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

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
