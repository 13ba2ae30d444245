"""Logging set-up handed to Uvicorn, so every worker process logs the same way."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def log_config(level: str) -> dict[str, Any]:
    """Uvicorn's own configuration plus the ``agentflow`` logger, all at ``level``."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["agentflow"] = {"handlers": ["default"], "level": level, "propagate": False}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        config["loggers"][name]["level"] = level
    # asyncpg's pool logs a traceback each time it fails to reconnect while Postgres is down;
    # our own 503 warnings already say so, once per request, in one line.
    config["loggers"]["asyncpg"] = {"handlers": ["default"], "level": "ERROR", "propagate": False}
    return config
