"""The real Postgres and Redis the tests use, each test session in a database of its own.

They run on every machine of this project (and in CI). When they are missing, the tests that
need them fail with a message saying so: they never skip silently.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis

DATABASE_URL = os.environ.get(
    "AGENTFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(statement: str) -> None:
    try:
        conn = await asyncpg.connect(DATABASE_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        raise RuntimeError(
            f"Postgres is needed at {DATABASE_URL} (AGENTFLOW_TEST_DATABASE_URL) and is not "
            f"reachable: {error}"
        ) from error
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database() -> str:
    """A fresh, empty database; returns its URL."""
    name = f"agentflow_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return with_database(DATABASE_URL, name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def check_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except redis.RedisError as error:
        raise RuntimeError(
            f"Redis is needed at {REDIS_URL} (AGENTFLOW_TEST_REDIS_URL) and is not reachable: "
            f"{error}"
        ) from error
    return REDIS_URL
