"""The server's settings, read once from the environment.

Names without a prefix (``MODE``, ``LOG_LEVEL``...) are the ones agentflow users and our operator
already set; settings that are ours alone carry the ``AGENTFLOW_`` prefix. docs/configuration.md
has the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
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
    checkpointer: Literal["memory", "postgres"] = Field(
        "memory",
        validation_alias="CHECKPOINTER",
        description="Where threads live for a graph compiled without a checkpointer.",
    )
    database_url: str | None = Field(
        None, validation_alias="DATABASE_URL", description="Postgres DSN (postgres checkpointer)."
    )
    redis_url: str | None = Field(
        None,
        validation_alias="REDIS_URL",
        description="Redis, to join streams and stop runs across workers.",
    )
    graph_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        validation_alias="AGENTFLOW_GRAPH_ID",
        description="Keeps this graph's threads apart in a shared database (default: module:attr).",
    )
    pg_pool_min: int = Field(1, ge=0, validation_alias="AGENTFLOW_PG_POOL_MIN")
    pg_pool_max: int = Field(10, ge=1, validation_alias="AGENTFLOW_PG_POOL_MAX")
    pg_timeout_s: float = Field(
        5.0,
        gt=0,
        validation_alias="AGENTFLOW_PG_TIMEOUT_S",
        description="Connect, pool-acquire and statement timeout: past it a request gets 503.",
    )
    redis_pool_max: int = Field(50, ge=1, validation_alias="AGENTFLOW_REDIS_POOL_MAX")
    redis_timeout_s: float = Field(2.0, gt=0, validation_alias="AGENTFLOW_REDIS_TIMEOUT_S")
    lease_s: float = Field(
        30.0,
        gt=0,
        le=300,
        validation_alias="AGENTFLOW_RUN_LEASE_S",
        description="A thread held by a worker that vanished is free again after this at most.",
    )
    enqueue_timeout_s: float = Field(
        300.0,
        gt=0,
        validation_alias="AGENTFLOW_ENQUEUE_TIMEOUT_S",
        description="How long multitask_strategy=enqueue waits for a busy thread.",
    )
    checkpoint_history: int = Field(
        100,
        ge=1,
        validation_alias="AGENTFLOW_CHECKPOINT_HISTORY",
        description="Checkpoints kept per thread; older ones are pruned.",
    )
    stream_retain_s: float = Field(
        600.0,
        gt=0,
        validation_alias="AGENTFLOW_STREAM_RETAIN_S",
        description="How long a finished run's events can still be joined.",
    )

    @model_validator(mode="after")
    def _postgres_needs_a_database(self) -> Settings:
        if self.checkpointer == "postgres" and not self.database_url:
            raise ValueError("CHECKPOINTER=postgres needs DATABASE_URL (a Postgres DSN)")
        if self.pg_pool_min > self.pg_pool_max:
            raise ValueError("AGENTFLOW_PG_POOL_MIN must not exceed AGENTFLOW_PG_POOL_MAX")
        return self

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
            if not item["loc"]:  # a rule spanning several variables names them itself
                problems.append(str(item["msg"]).removeprefix("Value error, "))
                continue
            field = str(item["loc"][0])
            name = _ENV_NAMES.get(field, field.upper())
            shown = "" if field in _SECRETS else f"={item.get('input')!r}"
            problems.append(f"{name}{shown} is invalid: {item['msg']}")
        raise SettingsError("; ".join(problems)) from None


# Values never repeated in messages: they may carry passwords.
_SECRETS = {"database_url", "redis_url"}
_ENV_NAMES = {name: str(field.validation_alias) for name, field in Settings.model_fields.items()}
