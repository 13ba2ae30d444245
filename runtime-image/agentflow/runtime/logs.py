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
    return config
