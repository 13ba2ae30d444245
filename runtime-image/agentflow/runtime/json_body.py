"""The one JSON decoder policy for request bodies: strict JSON (orjson: no NaN or Infinity, no
lone surrogates, valid UTF-8, at most 1,024 levels deep) and no NUL character in any string,
which Postgres cannot store. Whatever breaks it is a 400 ``invalid_json`` naming the problem
and where; what passes can be stored by every checkpoint store.

FastAPI parses bodies with ``Request.json()`` (the standard library's decoder, which takes NaN
and lone surrogates, and fails on deep nesting with a RecursionError): routes of
:class:`StrictJSONRoute` get :class:`StrictJSONRequest` instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

_NUL_ESCAPE = b"\\u0000"


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = orjson.loads(body)  # its JSONDecodeError is json's: a 400 upstream
            if _NUL_ESCAPE in body and _holds_nul(self._json):
                position = body.index(_NUL_ESCAPE)
                raise json.JSONDecodeError(
                    "strings may not contain NUL (\\u0000)", body.decode(errors="replace"), position
                )
        return self._json


def _holds_nul(value: Any) -> bool:
    """Whether a NUL is in any string (keys too): the escape seen in the raw body may be a
    backslash and ``u0000`` in plain text."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
