"""The one error hierarchy of agentflow.

Every error raised on purpose, by the engine, a checkpoint store, a broker or the server, is an
:class:`AgentflowError`: its message is a sentence that names what went wrong (it travels as-is
into HTTP error bodies and logs), and it carries how a server answers it: the HTTP ``status``
and a ``code`` that programs can rely on. Nothing else maps errors to answers.
"""

from __future__ import annotations


class AgentflowError(Exception):
    """Base of every error agentflow raises on purpose."""

    status: int = 500
    code: str = "internal_error"
