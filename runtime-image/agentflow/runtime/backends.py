"""Builds the checkpoint store, the thread leases and the run broker the settings ask for."""

from __future__ import annotations

import logging

from agentflow.checkpoint import Checkpointer, InMemoryCheckpointer
from agentflow.leases import InMemoryLeases, ThreadLeases
from agentflow.runstore import InMemoryRunStore, RunStore
from agentflow.runtime.broker import LocalRunBroker, RunBroker
from agentflow.runtime.loader import GraphRef
from agentflow.runtime.settings import Settings

logger = logging.getLogger("agentflow.runtime")


def graph_id_of(settings: Settings, ref: GraphRef) -> str:
    """``AGENTFLOW_GRAPH_ID``, or the graph's ``module:attr``."""
    return settings.graph_id or str(ref)


def build_checkpointer(settings: Settings, graph_id: str) -> Checkpointer:
    """The checkpointer of ``CHECKPOINTER`` (for graphs compiled without one)."""
    if settings.checkpointer == "memory":
        return InMemoryCheckpointer(max_history=settings.checkpoint_history)
    from agentflow.checkpoint.postgres import PgCheckpointer

    assert settings.database_url is not None  # Settings requires it for postgres
    return PgCheckpointer(
        settings.database_url,
        graph_id=graph_id,
        pool_min=settings.pg_pool_min,
        pool_max=settings.pg_pool_max,
        timeout_s=settings.pg_timeout_s,
        max_history=settings.checkpoint_history,
    )


def build_leases(settings: Settings, store: Checkpointer) -> ThreadLeases:
    """Leases where the threads are: in their Postgres database, shared by every process;
    otherwise in this process."""
    try:
        from agentflow.checkpoint.postgres import PgCheckpointer
    except ImportError:  # no asyncpg: no Postgres store either
        return InMemoryLeases()
    if isinstance(store, PgCheckpointer):
        from agentflow.leases.postgres import PgLeases

        return PgLeases(store.database, graph_id=store.graph_id, lease_s=settings.lease_s)
    return InMemoryLeases()


def build_run_store(store: Checkpointer) -> RunStore:
    """Background runs where the threads are: in their Postgres database, claimed by every
    process; otherwise in this process."""
    try:
        from agentflow.checkpoint.postgres import PgCheckpointer
    except ImportError:  # no asyncpg: no Postgres store either
        return InMemoryRunStore()
    if isinstance(store, PgCheckpointer):
        from agentflow.runstore.postgres import PgRunStore

        return PgRunStore(store.database, graph_id=store.graph_id)
    return InMemoryRunStore()


def build_broker(settings: Settings, graph_id: str, checkpointer: Checkpointer) -> RunBroker:
    """Redis when ``REDIS_URL`` is set; otherwise this process only."""
    if settings.redis_url:
        from agentflow.runtime.redis_broker import RedisRunBroker

        return RedisRunBroker(
            settings.redis_url,
            graph_id=graph_id,
            timeout_s=settings.redis_timeout_s,
            max_connections=settings.redis_pool_max,
            max_followers=settings.redis_max_followers,
            max_events=settings.stream_max_events,
            retain_s=settings.stream_retain_s,
        )
    if not isinstance(checkpointer, InMemoryCheckpointer):
        logger.warning(
            "REDIS_URL is not set: threads are shared, but joining a run's stream and stopping "
            "a run work only on the worker executing it"
        )
    return LocalRunBroker(
        retain_s=settings.stream_retain_s,
        max_events=settings.stream_max_events,
        max_bytes=settings.stream_max_bytes,
    )
