"""A graph's queue depth as one SQL statement, for what reads the shared database from outside
the runtime: KEDA's PostgreSQL scaler (the operator writes it into the graph's ScaledObject).
It counts the rows of :class:`agentflow.runstore.postgres.PgRunStore`'s table, so it lives
beside it, and a test runs it against that table."""

from __future__ import annotations


def queue_depth_sql(graph_id: str) -> str:
    """``SELECT`` the number of the graph's background runs pending or running: the work its
    replicas have to do. A literal statement (scalers take no parameters): the graph id is
    quoted as an SQL string."""
    quoted = graph_id.replace("'", "''")
    return (
        f"SELECT count(*) FROM agentflow_runs WHERE graph_id = '{quoted}'"
        " AND status IN ('pending', 'running')"
    )
