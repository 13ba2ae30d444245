"""Errors of the runtime, and how every error the server can meet becomes an API error.

An API error is ``{"error": {"code", "message", "details"?}, "metadata": {...}}`` with an HTTP
status. ``code`` is stable for programs; ``message`` is a sentence for people. 5xx messages are
replaced by a generic sentence in production, where exception text could leak internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from agentflow.checkpoint.base import (
    CheckpointerError,
    ConcurrentUpdateError,
    StateNotSerializableError,
    ThreadLockedError,
)
from agentflow.graph.errors import (
    GraphError,
    GraphRecursionError,
    InterruptPendingError,
    InvalidUpdateError,
    NodeError,
    NothingToResumeError,
    RoutingError,
)
from agentflow.runtime.broker import BrokerUnavailableError, RunNotFoundError

logger = logging.getLogger("agentflow.runtime")


class RuntimeAPIError(Exception):
    status = 500
    code = "internal_error"


class InvalidRequestError(RuntimeAPIError):
    status, code = 422, "invalid_request"


class ThreadNotFoundError(RuntimeAPIError):
    status, code = 404, "thread_not_found"


class NoActiveRunError(RuntimeAPIError):
    status, code = 404, "no_active_run"


class RunStoppedError(RuntimeAPIError):
    status, code = 409, "run_stopped"


class ShuttingDownError(RuntimeAPIError):
    status, code = 503, "shutting_down"


_ENGINE_ERRORS: dict[type[Exception], tuple[int, str]] = {
    InvalidUpdateError: (422, "invalid_input"),
    InterruptPendingError: (409, "interrupt_pending"),
    NothingToResumeError: (409, "nothing_to_resume"),
    GraphRecursionError: (500, "recursion_limit_reached"),
    NodeError: (500, "node_failed"),
    RoutingError: (500, "routing_failed"),
    StateNotSerializableError: (500, "state_not_serializable"),
    CheckpointerError: (503, "checkpointer_unavailable"),
    ThreadLockedError: (409, "thread_busy"),
    ConcurrentUpdateError: (409, "concurrent_update"),
    RunNotFoundError: (404, "run_not_found"),
    BrokerUnavailableError: (503, "broker_unavailable"),
}


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
    if isinstance(error, RuntimeAPIError):
        status, code = error.status, error.code
    else:
        status, code = next(
            (known for kind, known in _ENGINE_ERRORS.items() if isinstance(error, kind)),
            (500, "internal_error"),
        )
    if code == "internal_error":
        return ErrorInfo(500, code, "the server met an unexpected error; see its log")
    if status >= 500 and production:
        where = f" in node '{error.node}'" if isinstance(error, NodeError) else ""
        return ErrorInfo(status, code, f"the graph failed{where}; see the server log")
    return ErrorInfo(status, code, str(error))


def report(error: BaseException, *, production: bool) -> ErrorInfo:
    """:func:`describe` the error for a response, and log it: a 500 with its traceback (a bug
    or a broken dependency of ours; the response never carries one), a 503 as one warning line
    (a backing service is down: an operational condition, not a bug). Failures of a graph's
    run are logged by the service with the run's ids, so they are not logged twice here."""
    info = describe(error, production=production)
    if info.status == 503:
        logger.warning("%s: %s", info.code, error)
    elif info.status >= 500 and not isinstance(error, GraphError):
        logger.error("%s: %s", info.code, error, exc_info=error)
    return info
