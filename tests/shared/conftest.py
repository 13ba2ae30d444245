import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server


def shared_env(database_url: str, redis_url: str, graph_id: str) -> dict[str, str]:
    return {
        "AGENTFLOW_GRAPH": "tests.graphs.versatile:app",
        "CHECKPOINTER": "postgres",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AGENTFLOW_GRAPH_ID": graph_id,
    }


@pytest.fixture(scope="module")
def env(database_url: str, redis_url: str) -> dict[str, str]:
    """One graph id per module, so modules never share threads or Redis keys."""
    return shared_env(database_url, redis_url, f"workers-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def workers(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    """Two server processes sharing one Postgres database and one Redis."""
    log_dir: Path = tmp_path_factory.mktemp("workers")
    servers = [start_server(log_dir, env), start_server(log_dir, env)]
    yield servers
    for server in servers:
        server.stop()
