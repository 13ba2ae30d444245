"""Two operator replicas: only one acts; when it stops, the other takes over."""

import time
from pathlib import Path

import yaml
from kopf.testing import KopfRunner

from tests.operator.conftest import Kube, eventually
from tests.operator.test_operator import graph, jwt_secret

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--all-namespaces", "-m", "agentflow_operator.handlers"]


def test_only_the_highest_priority_replica_acts_and_a_standby_takes_over(kube: Kube, monkeypatch):
    for crd in yaml.safe_load_all((ROOT / "crds" / "kopf-peering.yaml").read_text()):
        kube.create(crd, "customresourcedefinitions")
    kube.create(
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": "agentflow"},
        },
        "clusterkopfpeerings",
    )
    monkeypatch.setenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", "agentflow-system/checkpointer")
    jwt_secret(kube)

    def peers() -> int:
        peering = kube.get("kopf.dev/v1", "clusterkopfpeerings", None, "agentflow") or {}
        return len(peering.get("status") or {})

    monkeypatch.setenv("AGENTFLOW_OPERATOR_PRIORITY", "100")
    with KopfRunner(RUN, timeout=60) as standby:
        eventually(lambda: peers() == 1, what="the first replica registered")  # it read 100
        monkeypatch.setenv("AGENTFLOW_OPERATOR_PRIORITY", "200")
        with KopfRunner(RUN, timeout=60):
            eventually(lambda: peers() == 2, what="both replicas in the peering object")
            time.sleep(1)  # let the lower-priority replica notice and pause
            kube.create(graph("first"), "agentgraphs")
            eventually(
                lambda: kube.get("apps/v1", "deployments", "agents", "first"),
                what="the first graph served",
            )
        # The active replica stopped; the standby resumes and serves new graphs.
        kube.create(graph("second"), "agentgraphs")
        eventually(
            lambda: kube.get("apps/v1", "deployments", "agents", "second"),
            within_s=60,
            what="the standby taking over",
        )
        deployments = kube.http.get("/apis/apps/v1/namespaces/agents/deployments").json()["items"]
        assert sorted(d["metadata"]["name"] for d in deployments) == ["first", "second"]
    assert standby.exception is None
