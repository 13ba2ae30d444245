"""The server's settings, read once from the environment.

Names without a prefix (``MODE``, ``LOG_LEVEL``...) are the ones agentflow users and our operator
already set; settings that are ours alone carry the ``AGENTFLOW_`` prefix. docs/configuration.md
has the table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"]
HMAC_ALGORITHMS = {"HS256", "HS384", "HS512"}
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")


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
    origins: Annotated[list[str], NoDecode] = Field(
        ["*"],
        validation_alias="ORIGINS",
        description="Comma-separated CORS origins (scheme://host[:port]), or * for any.",
    )
    cors_allow_credentials: bool = Field(
        False,
        validation_alias="CORS_ALLOW_CREDENTIALS",
        description="Let browsers send cookies/credentials cross-origin (never with ORIGINS=*).",
    )
    jwt_secret_key: SecretStr | None = Field(
        None,
        validation_alias="JWT_SECRET_KEY",
        description="Turns on JWT auth for /v1/*; the HMAC secret for HS256/384/512.",
    )
    jwt_public_key: SecretStr | None = Field(
        None,
        validation_alias="JWT_PUBLIC_KEY",
        description="PEM public key for RS256/ES256 tokens (turns on JWT auth too).",
    )
    jwt_algorithm: JwtAlgorithm = Field("HS256", validation_alias="JWT_ALGORITHM")
    stream_token_secret: SecretStr | None = Field(
        None,
        validation_alias="AGENTFLOW_STREAM_TOKEN_SECRET",
        description="Signs the short-lived tokens a browser's EventSource joins a run with "
        "(default: derived from JWT_SECRET_KEY; needed with RS256/ES256). The same on every "
        "replica.",
    )
    stream_token_ttl_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        validation_alias="AGENTFLOW_STREAM_TOKEN_TTL_S",
        description="How long a stream token is valid (EventSource reconnects reuse it).",
    )
    jwt_issuer: str | None = Field(None, validation_alias="JWT_ISSUER")
    jwt_audience: str | None = Field(None, validation_alias="JWT_AUDIENCE")
    docs_enabled: bool | None = Field(
        None,
        validation_alias="AGENTFLOW_DOCS",
        description="Serve /docs and /openapi.json (default: on in development only).",
    )
    max_header_bytes: int = Field(
        16 * 1024,
        gt=0,
        validation_alias="AGENTFLOW_MAX_HEADER_BYTES",
        description="Largest total size of a request's headers; larger gets 431.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        validation_alias="AGENTFLOW_HEADER_TIMEOUT_S",
        description="How long a connection may take to send a request's head (line and "
        "headers); a half-sent one then gets 408 and is closed, an idle one is closed.",
    )
    max_connections: int = Field(
        4096,
        gt=0,
        validation_alias="AGENTFLOW_MAX_CONNECTIONS",
        description="Open connections per worker process; past it a new connection displaces "
        "the one waiting longest for a request (never one being answered or streaming).",
    )
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        validation_alias="AGENTFLOW_SHUTDOWN_GRACE_S",
        description="On SIGTERM, how long runs may go on before they are stopped.",
    )
    sse_ping_s: float = Field(
        15.0,
        gt=0,
        validation_alias="AGENTFLOW_SSE_PING_S",
        description="How often an SSE stream sends a comment line, so idle proxies keep it.",
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
    redis_max_followers: int = Field(
        100,
        ge=1,
        validation_alias="AGENTFLOW_REDIS_MAX_FOLLOWERS",
        description="Joined run streams one worker follows at once, each on a Redis "
        "connection of its own pool; a joiner past it gets 503.",
    )
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
    max_runs_per_worker: int = Field(
        10,
        ge=0,
        le=1000,
        validation_alias="AGENTFLOW_MAX_RUNS_PER_WORKER",
        description="Background runs one worker process executes at once (0: it executes "
        "none, other replicas do).",
    )
    max_pending_runs: int = Field(
        10_000,
        ge=1,
        validation_alias="AGENTFLOW_MAX_PENDING_RUNS",
        description="Background runs of the graph that may wait at once; past it, submitting "
        "gets 503 queue_full.",
    )
    run_poll_s: float = Field(
        1.0,
        gt=0,
        le=60,
        validation_alias="AGENTFLOW_RUN_POLL_S",
        description="How often a worker with room looks for pending runs, and for runs of "
        "dead workers to resume.",
    )
    run_max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        validation_alias="AGENTFLOW_RUN_MAX_ATTEMPTS",
        description="Workers a background run may be claimed by (each resuming it from its "
        "last checkpoint) before it ends with run_abandoned.",
    )
    run_retain_s: float = Field(
        7 * 86400.0,
        gt=0,
        validation_alias="AGENTFLOW_RUN_RETAIN_S",
        description="How long an ended background run can still be read.",
    )
    webhook_allowed_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="AGENTFLOW_WEBHOOK_ALLOWED_URLS",
        description="Comma-separated URL prefixes a run's webhook may start with "
        "(scheme://host[:port]/path); empty: webhooks are refused.",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        validation_alias="AGENTFLOW_WEBHOOK_SECRET",
        description="Signs webhook deliveries (HMAC-SHA256); required with "
        "AGENTFLOW_WEBHOOK_ALLOWED_URLS.",
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, le=300, validation_alias="AGENTFLOW_WEBHOOK_TIMEOUT_S"
    )
    webhook_max_in_flight: int = Field(
        50,
        ge=1,
        le=1000,
        validation_alias="AGENTFLOW_WEBHOOK_MAX_IN_FLIGHT",
        description="Webhook deliveries one worker makes at once (and its connections for "
        "them); the others wait their turn.",
    )
    webhook_max_attempts: int = Field(
        5,
        ge=1,
        le=50,
        validation_alias="AGENTFLOW_WEBHOOK_MAX_ATTEMPTS",
        description="Deliveries tried per webhook (waiting 1, 2, 4... s between them, at most "
        "60 s) before it is marked failed.",
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
    stream_max_events: int = Field(
        10_000,
        ge=10,
        validation_alias="AGENTFLOW_STREAM_MAX_EVENTS",
        description="Events of one run kept for joiners (in memory, or about as many in "
        "Redis), and buffered for a stream's client that reads slower than the run writes; "
        "the oldest beyond are dropped, and a 'gap' event says how many.",
    )
    stream_max_bytes: int = Field(
        8 * 1024 * 1024,
        ge=64 * 1024,
        validation_alias="AGENTFLOW_STREAM_MAX_BYTES",
        description="Bytes of one run's events kept in memory for joiners (without Redis).",
    )

    @field_validator("origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        value = _comma_separated(value)
        if isinstance(value, list):
            for origin in value:
                if origin != "*" and not _ORIGIN.fullmatch(str(origin)):
                    raise ValueError(
                        f"{origin!r} is not an origin: write scheme://host[:port] "
                        "(http or https, no path, no trailing slash) or *"
                    )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.origins:
            raise ValueError(
                "CORS_ALLOW_CREDENTIALS=true cannot go with ORIGINS=* (browsers refuse it, and "
                "it would let any site act as your users): list the allowed origins in ORIGINS"
            )
        hmac = self.jwt_algorithm in HMAC_ALGORITHMS
        if hmac and self.jwt_public_key is not None and self.jwt_secret_key is None:
            raise ValueError(
                f"JWT_ALGORITHM={self.jwt_algorithm} verifies with JWT_SECRET_KEY, not "
                "JWT_PUBLIC_KEY: set JWT_SECRET_KEY, or JWT_ALGORITHM=RS256/ES256"
            )
        if not hmac and self.auth_enabled and self.jwt_public_key is None:
            raise ValueError(
                f"JWT_ALGORITHM={self.jwt_algorithm} verifies with a public key: set "
                "JWT_PUBLIC_KEY to its PEM"
            )
        return self

    @field_validator("webhook_allowed_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        value = _comma_separated(value)
        if isinstance(value, list):
            return [_url_prefix(str(prefix)) for prefix in value]
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        if self.webhook_allowed_urls and self.webhook_secret is None:
            raise ValueError(
                "AGENTFLOW_WEBHOOK_ALLOWED_URLS needs AGENTFLOW_WEBHOOK_SECRET: every delivery "
                "is signed, so receivers can tell it came from this server"
            )
        return self

    @model_validator(mode="after")
    def _postgres_needs_a_database(self) -> Settings:
        if self.checkpointer == "postgres" and not self.database_url:
            raise ValueError("CHECKPOINTER=postgres needs DATABASE_URL (a Postgres DSN)")
        if self.pg_pool_min > self.pg_pool_max:
            raise ValueError("AGENTFLOW_PG_POOL_MIN must not exceed AGENTFLOW_PG_POOL_MAX")
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value, ("postgres", "postgresql"))

    @field_validator("jwt_secret_key", "jwt_public_key", "stream_token_secret", "webhook_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty value (an unset variable in a compose file) is a mistake: it must neither
        # turn auth off silently nor sign with an empty key.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty: set a key, or unset the variable")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value, ("redis", "rediss", "unix"))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def auth_enabled(self) -> bool:
        return self.jwt_secret_key is not None or self.jwt_public_key is not None

    @property
    def serve_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    def unsafe_defaults(self) -> list[str]:
        """What a production deployment should not run with, one sentence each."""
        warnings = []
        if "*" in self.origins:
            warnings.append("ORIGINS=* lets any web page call this API from a browser")
        if not self.auth_enabled:
            warnings.append("no JWT_SECRET_KEY or JWT_PUBLIC_KEY: the API is open to anyone")
        secret = self.jwt_secret_key
        if secret is not None and self.jwt_algorithm in HMAC_ALGORITHMS:
            minimum = int(self.jwt_algorithm[2:]) // 8  # RFC 7518 3.2: at least the hash size
            if len(secret.get_secret_value().encode()) < minimum:
                warnings.append(
                    f"JWT_SECRET_KEY is shorter than {minimum} bytes, the least RFC 7518 "
                    f"allows for {self.jwt_algorithm}: use a longer secret"
                )
        if self.serve_docs:
            warnings.append("AGENTFLOW_DOCS is on: /docs and /openapi.json are public")
        return warnings


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
            field = str(item["loc"][0])  # the variable's name (or the setting's)
            name = ENV_NAMES.get(field, field)
            secret = name in {ENV_NAMES[setting] for setting in _SECRETS}
            shown = "" if secret else f"={item.get('input')!r}"
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}{shown} is invalid: {message}")
        raise SettingsError("; ".join(problems)) from None


def _checked_url(value: str, schemes: tuple[str, ...]) -> str:
    """A connection URL whose shape the drivers accept, or a ValueError that never repeats it
    (it holds a password): the drivers' own errors would print it."""
    example = f"{schemes[0]}://user:password@host:port/..."
    parts = urlsplit(value)
    if parts.scheme not in schemes or not value.startswith(f"{parts.scheme}://"):
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if parts.scheme != "unix" and not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"names no host: the form is {example}")
    if parts.netloc.count("@") > 1:
        raise ValueError("has more than one '@': percent-encode one in the password (%40)")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    return value


def _comma_separated(value: object) -> object:
    """A variable's comma-separated items as a list (other values as given)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _url_prefix(prefix: str) -> str:
    """An allowed webhook URL prefix, ending with its path's ``/`` at least, so that
    ``https://hooks.example.com`` cannot let ``https://hooks.example.com.evil.net`` through."""
    parts = urlsplit(prefix)
    if parts.username is not None:  # not repeated: it would repeat the password
        raise ValueError("a webhook URL prefix must not carry credentials")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{prefix!r} is not a webhook URL prefix: write http(s)://host[:port]/path, "
            "without credentials"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{prefix!r} has a query or fragment: a prefix is a URL up to a path")
    return prefix if parts.path else f"{prefix}/"


# Values never repeated in messages: they may carry passwords.
_SECRETS = {
    "webhook_secret",
    "webhook_allowed_urls",  # a prefix might carry credentials (refused, but not repeated)
    "database_url",
    "redis_url",
    "jwt_secret_key",
    "jwt_public_key",
    "stream_token_secret",
}
# The environment contract: setting -> the variable that sets it. The operator names the
# variables it writes into pods from here, so the two cannot drift apart.
ENV_NAMES = {name: str(field.validation_alias) for name, field in Settings.model_fields.items()}
