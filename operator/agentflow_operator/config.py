"""The operator's own configuration, from its environment (set by the Helm chart)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_RUNTIME_IMAGE = "ghcr.io/agentflow/runtime:0.1.0"


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTFLOW_OPERATOR_", frozen=True)

    watch_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated namespaces to watch; all namespaces when empty.",
    )
    default_image: str = Field(
        DEFAULT_RUNTIME_IMAGE, description="Runtime image of graphs that name none."
    )
    default_mode: Literal["development", "production"] = Field("production")
    default_dsn_secret: str | None = Field(
        None,
        pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$",
        description="namespace/name of the Secret with the shared Postgres DSN, for graphs with "
        "no checkpointer of their own: referenced by graphs of its namespace, copied next to "
        "the others (pods read Secrets of their own namespace only).",
    )
    default_dsn_secret_key: str = Field("dsn", description="Key of the DSN in that Secret.")
    default_redis_url: str | None = Field(None, pattern=r"^rediss?://", description="Shared Redis.")
    shutdown_grace_s: int = Field(
        30, ge=0, le=3600, description="Grace the runtime gives open streams on SIGTERM."
    )
    dsn_refresh_s: float = Field(
        30, gt=0, le=3600, description="How often the default DSN Secret is read again."
    )
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    liveness_endpoint: str = Field(
        "http://0.0.0.0:8080/healthz",
        description="Where the operator answers liveness probes (kopf's endpoint); empty "
        "turns it off.",
    )
    workers: int = Field(
        8, ge=1, le=64, description="Graphs reconciled at once (each in its own thread)."
    )
    resync_s: float = Field(
        300,
        gt=0,
        le=86400,
        description="How often every graph is compared with the watch caches, a safety net "
        "for missed events: costs no API request while nothing drifted.",
    )
    retry_base_s: float = Field(
        2, gt=0, le=60, description="First wait before a failed reconcile is retried."
    )
    retry_max_s: float = Field(
        300, gt=0, le=3600, description="Longest wait between retries (the wait doubles)."
    )
    list_chunk_size: int = Field(
        500, ge=1, le=10000, description="Objects per page when the operator lists a kind."
    )
    peering: str = Field("agentflow", description="kopf peering name shared by operator replicas.")
    priority: int | None = Field(
        None, ge=0, description="Peering priority (the highest acts); random when unset."
    )

    @field_validator("default_dsn_secret", "default_redis_url", "priority", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # how Helm templates render an unset default

    @field_validator("watch_namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
