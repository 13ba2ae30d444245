"""Why a graph could not be reconciled. Each error's message is a sentence for people; its
reason, one CamelCase word for programs (the Accepted condition and the Event carry both)."""

from __future__ import annotations


class ReconcileError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Refused(ReconcileError):
    """The graph asks for something that cannot be done as it is: its spec is invalid, a
    Secret it names is missing, or the API server refused an object (422, 403...). Retried
    with backoff, but it takes a change somewhere to succeed."""


class ApiUnavailable(ReconcileError):
    """The API server failed to answer (5xx, a timeout, a dropped connection, a conflict):
    retried with backoff, nothing to fix on the graph."""
