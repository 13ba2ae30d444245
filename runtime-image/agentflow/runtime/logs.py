"""Logging: JSON lines in production, plain text in development, both carrying the request,
thread and run a line belongs to. The configuration is handed to Uvicorn so every worker
process logs the same way."""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("agentflow_request_id", default=None)
thread_id_var: ContextVar[str | None] = ContextVar("agentflow_thread_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("agentflow_run_id", default=None)

_CONTEXT = {"request_id": request_id_var, "thread_id": thread_id_var, "run_id": run_id_var}


class ContextFilter(logging.Filter):
    """Copies the request, thread and run ids of the current context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT.items():
            setattr(record, name, var.get())
        return True


# Query parameters that carry credentials: a stream token, or a token a client put there.
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:stream_token|token|access_token|id_token|jwt|api_key|key|password)=)[^&\s]*"
)


class SecretQueryFilter(logging.Filter):
    """Access log lines show a query's credentials as ``***``: a token in a URL must not
    outlive its request in the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    """Uvicorn-like plain lines, with the ids appended when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(
            f"{name}={value}"
            for name in _CONTEXT
            if (value := getattr(record, name, None)) is not None
        )
        return f"{text} [{ids}]" if ids else text


def log_config(level: str, json_lines: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Uvicorn, our loggers and asyncpg, all at ``level``."""
    formatter: dict[str, Any] = (
        {"()": JSONFormatter}
        if json_lines
        else {"()": TextFormatter, "format": "%(levelname)-8s %(name)s: %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "filters": ["context", "secret_query"],
        "stream": "ext://sys.stderr",
    }
    loggers: dict[str, Any] = {
        name: {"handlers": ["default"], "level": level, "propagate": False}
        for name in ("agentflow", "uvicorn", "uvicorn.error", "uvicorn.access")
    }
    # asyncpg's pool logs a traceback each time it fails to reconnect while Postgres is down;
    # our own 503 warnings already say so, once per request, in one line.
    loggers["asyncpg"] = {"handlers": ["default"], "level": "ERROR", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": ContextFilter},
            "secret_query": {"()": SecretQueryFilter},
        },
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": loggers,
    }
