"""The real operator (kopf) running against the emulated cluster of the ``kube`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kopf.testing import KopfRunner

from tests.kube.client import ROOT, Kube

__all__ = ["ROOT", "Kube"]


@pytest.fixture
def operator(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    monkeypatch.setenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", "agentflow-system/checkpointer")
    monkeypatch.setenv(
        "AGENTFLOW_OPERATOR_DEFAULT_REDIS_URL", "redis://redis.agentflow-system:6379/0"
    )
    args = ["run", "--all-namespaces", "--standalone", "-m", "agentflow_operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output
