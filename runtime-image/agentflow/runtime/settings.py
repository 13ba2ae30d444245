"""The server's settings, read once from the environment.

Names without a prefix (``MODE``, ``LOG_LEVEL``...) are the ones agentflow users and our operator
already set; settings that are ours alone carry the ``AGENTFLOW_`` prefix. docs/configuration.md
has the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class SettingsError(Exception):
    """A setting has a value the server cannot start with; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    mode: Literal["development", "production"] = Field(
        "development",
        validation_alias="MODE",
        description="development shows error details; production hides them.",
    )
    log_level: LogLevel = Field("INFO", validation_alias="LOG_LEVEL")
    graph: str | None = Field(
        None,
        validation_alias="AGENTFLOW_GRAPH",
        description="module:attr of the compiled graph (or of a factory returning one).",
    )
    graph_path: Path = Field(
        Path("agentflow.json"),
        validation_alias="GRAPH_PATH",
        description='agentflow.json read when AGENTFLOW_GRAPH is unset: {"agent": "module:attr"}.',
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        gt=0,
        validation_alias="AGENTFLOW_MAX_BODY_BYTES",
        description="Largest request body accepted; larger ones get 413.",
    )
    thread_pool_size: int = Field(
        64,
        gt=0,
        le=4096,
        validation_alias="AGENTFLOW_THREAD_POOL_SIZE",
        description="Threads that run sync nodes; a sync node waits for a free one.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def is_production(self) -> bool:
        return self.mode == "production"


def load_settings() -> Settings:
    """Read the environment, turning a bad value into one sentence that names the variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]).upper() if item["loc"] else "settings"
            problems.append(f"{name}={item.get('input')!r} is invalid: {item['msg']}")
        raise SettingsError("; ".join(problems)) from None
