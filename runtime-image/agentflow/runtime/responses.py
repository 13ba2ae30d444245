"""The JSON response class (orjson) and the two shapes every answer takes: data or error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse

from agentflow.runtime.errors import ErrorInfo
from agentflow.runtime.schemas import envelope, response_metadata


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
