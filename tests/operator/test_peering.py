"""Two operator replicas: only one acts; when it stops, the other takes over.

Each replica connects as a ServiceAccount of its own, so the emulator's request log (as the
API server's audit log) tells which replica wrote what: the test fails if both act.
"""

from pathlib import Path

import yaml
from kopf.testing import KopfRunner

from tests.operator.conftest import Kube
from tests.operator.test_operator import graph, jwt_secret
from tests.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--all-namespaces", "-m", "agentflow_operator.handlers"]
REPLICAS = "agentflow-system"


def replica_may_do_anything(kube: Kube) -> None:
    """RBAC for the replicas' ServiceAccounts (the chart's own rules are tested elsewhere)."""
    rule = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "replicas"},
            "rules": [rule],
        },
        "clusterroles",
    )
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "replicas"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "replicas",
            },
            "subjects": [
                {
                    "kind": "Group",
                    "name": f"system:serviceaccounts:{REPLICAS}",
                    "apiGroup": "rbac.authorization.k8s.io",
                }
            ],
        },
        "clusterrolebindings",
    )


def writers(kube: Kube, start: int) -> set[str]:
    """Which replicas wrote anything but the peering object since request ``start``."""
    replica = f"system:serviceaccount:{REPLICAS}:"
    return {
        r.user.removeprefix(replica)
        for r in kube.server.emulator.requests[start:]
        if r.user.startswith(replica) and r.method != "GET" and "kopfpeerings" not in r.path
    }


def test_only_the_highest_priority_replica_acts_and_a_standby_takes_over(
    kube: Kube, monkeypatch, tmp_path
):
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
    replica_may_do_anything(kube)
    monkeypatch.setenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", "agentflow-system/checkpointer")
    jwt_secret(kube)

    def peers() -> int:
        peering = kube.get("kopf.dev/v1", "clusterkopfpeerings", None, "agentflow") or {}
        return len(peering.get("status") or {})

    def connected(name: str) -> bool:
        """Whether the replica has made requests with its own credentials (it has read them
        before the next replica's are set)."""
        user = f"system:serviceaccount:{REPLICAS}:{name}"
        return any(r.user == user for r in kube.server.emulator.requests)

    def start_replica(name: str, priority: int) -> KopfRunner:
        # Each replica reads its settings and credentials once, as it starts.
        kubeconfig = kube.server.kubeconfig(tmp_path / name, (REPLICAS, name))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.setenv("AGENTFLOW_OPERATOR_PRIORITY", str(priority))
        return KopfRunner(RUN, timeout=60)

    with start_replica("standby", 100) as standby:
        eventually(lambda: peers() == 1 and connected("standby"), what="the standby registered")
        with start_replica("active", 200) as active:
            eventually(
                lambda: peers() == 2 and connected("active"), what="both replicas registered"
            )
            start = len(kube.server.emulator.requests)
            kube.create(graph("first"), "agentgraphs")
            eventually(
                lambda: kube.get("apps/v1", "deployments", "agents", "first"),
                what="the first graph served",
            )
            eventually(
                lambda: (
                    (kube.get("agentflow.dev/v1alpha1", "agentgraphs", "agents", "first") or {})
                    .get("status", {})
                    .get("observedGeneration")
                ),
                what="the first graph's status",
            )
            assert writers(kube, start) == {"active"}
        assert active.exception is None
        # The active replica stopped; the standby resumes and serves new graphs.
        start = len(kube.server.emulator.requests)
        kube.create(graph("second"), "agentgraphs")
        eventually(
            lambda: kube.get("apps/v1", "deployments", "agents", "second"),
            within_s=60,
            what="the standby taking over",
        )
        assert writers(kube, start) == {"standby"}
        deployments = kube.http.get("/apis/apps/v1/namespaces/agents/deployments").json()["items"]
        assert sorted(d["metadata"]["name"] for d in deployments) == ["first", "second"]
    assert standby.exception is None
