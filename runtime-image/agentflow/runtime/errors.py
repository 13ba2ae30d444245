"""Errors of the runtime, and how every error the server can meet becomes an API error (each
:class:`~agentflow.errors.AgentflowError` says its own status and code).

An API error is ``{"error": {"code", "message", "details"?}, "metadata": {...}}`` with an HTTP
status. ``code`` is stable for programs; ``message`` is a sentence for people. 5xx messages are
replaced by a generic sentence in production, where exception text could leak internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from agentflow.errors import AgentflowError
from agentflow.graph.errors import NodeError

logger = logging.getLogger("agentflow.runtime")


class InvalidRequestError(AgentflowError):
    status, code = 422, "invalid_request"


class ThreadNotFoundError(AgentflowError):
    status, code = 404, "thread_not_found"


class MessageNotFoundError(AgentflowError):
    status, code = 404, "message_not_found"


class RunNotFoundError(AgentflowError):
    status, code = 404, "run_not_found"


class RunStoppedError(AgentflowError):
    status, code = 409, "run_stopped"

    def __init__(self, message: str, *, by_shutdown: bool = False) -> None:
        super().__init__(message)
        self.by_shutdown = by_shutdown  # the server stopped it, not a stop request


class ShuttingDownError(AgentflowError):
    status, code = 503, "shutting_down"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    status: int
    code: str
    message: str
    details: Any = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


def describe(error: BaseException, *, production: bool) -> ErrorInfo:
    """The API error for an exception. Unknown exceptions are 500s that name nothing internal."""
    status, code = (error.status, error.code) if isinstance(error, AgentflowError) else (500, "")
    if code in ("", "internal_error"):
        return ErrorInfo(500, "internal_error", "the server met an unexpected error; see its log")
    if status >= 500 and production:
        where = f" in node '{error.node}'" if isinstance(error, NodeError) else ""
        return ErrorInfo(status, code, f"the graph failed{where}; see the server log")
    return ErrorInfo(status, code, str(error))


def report(error: BaseException, *, production: bool) -> ErrorInfo:
    """:func:`describe` the error for a response, and log it, once: a 500 with its traceback
    (the graph failed, or a bug or a broken dependency of ours; the response never carries
    one), a 503 as one warning line (a backing service is down: an operational condition, not
    a bug). The log line carries the request's, thread's and run's ids (logs.py)."""
    info = describe(error, production=production)
    if info.status == 503:
        logger.warning("%s: %s", info.code, error)
    elif info.status >= 500:
        logger.error("%s: %s", info.code, error, exc_info=error)
    return info
