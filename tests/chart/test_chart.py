"""The Helm chart, rendered by a real helm: lint, values schema, golden files, upstream
Kubernetes schemas, applied with kubectl to the API emulator, and RBAC that covers every
request the real operator makes."""

import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kopf.testing import KopfRunner

from tests.golden import assert_golden
from tests.operator.conftest import Kube
from tests.operator.test_operator import condition, graph, jwt_secret
from tests.polling import eventually
from tests.tools import helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agentflow-operator"
GOLDEN = Path(__file__).parent / "golden"
NAMESPACE = "agentflow-system"
KUBERNETES_MINORS = ["1.31.0", "1.37.0"]

MODES = {
    "cluster": [],
    "namespaced": ["--set", "watchNamespaces={agents,team-b}"],
    "shared-postgres": [
        "--set",
        "graphDefaults.dsnSecret=agentflow-system/checkpointer",
        "--set",
        "graphDefaults.redisUrl=redis://redis:6379/0",
    ],
    "quickstart": ["--set", "bundled.postgres.enabled=true", "--set", "bundled.redis.enabled=true"],
}


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120)


def render(mode: str, *extra: str) -> list[dict]:
    result = run_helm(
        "template", "agentflow", str(CHART), "--namespace", NAMESPACE, *MODES[mode], *extra
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_chart_carries_the_generated_crds():
    for name in ("agentgraphs.agentflow.dev.yaml", "kopf-peering.yaml"):
        assert (CHART / "files" / name).read_text() == (ROOT / "crds" / name).read_text(), (
            f"charts/agentflow-operator/files/{name} is stale: copy it from crds/"
        )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_lint(mode):
    result = run_helm("lint", "--strict", str(CHART), *MODES[mode])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", sorted(MODES))
def test_golden(mode):
    rendered = yaml.safe_dump_all(render(mode), sort_keys=False)
    path = GOLDEN / f"{mode}.yaml"
    assert_golden(path, rendered)


@pytest.mark.parametrize("minor", KUBERNETES_MINORS)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_rendered_objects_are_valid_kubernetes(mode, minor):
    for obj in render(mode):
        kubernetes_validate.validate(obj, minor, strict=True)


def test_crds_are_kept_on_uninstall_and_can_be_left_out():
    crds = [o for o in render("cluster") if o["kind"] == "CustomResourceDefinition"]
    assert {c["metadata"]["name"] for c in crds} == {
        "agentgraphs.agentflow.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    without = run_helm("template", "a", str(CHART), "--set", "crds.install=false")
    assert "CustomResourceDefinition" not in without.stdout


def test_rbac_modes():
    cluster = {o["kind"] for o in render("cluster")}
    assert {"ClusterRole", "ClusterRoleBinding"} <= cluster
    assert "Role" not in cluster
    namespaced = render("namespaced")
    roles = [o for o in namespaced if o["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["agents", "team-b"]
    cluster_roles = [o for o in namespaced if o["kind"] == "ClusterRole"]
    assert [r["rules"] for r in cluster_roles] == [
        [
            {
                "apiGroups": ["apiextensions.k8s.io"],
                "resources": ["customresourcedefinitions"],
                "verbs": ["list", "watch"],
            },
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        ]
    ]


def test_secrets_are_only_read_unless_the_operator_copies_the_shared_dsn():
    def secret_verbs(mode: str, *values: str) -> set[str]:
        rules = [r for o in render(mode, *values) if o["kind"] == "ClusterRole" for r in o["rules"]]
        return {v for r in rules if "secrets" in r.get("resources", []) for v in r["verbs"]}

    assert secret_verbs("cluster") == {"get", "list", "watch"}
    assert {"create", "patch", "delete"} <= secret_verbs("shared-postgres")


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (["--set", "replicaCount=0"], "replicaCount"),
        (["--set", "logLevel=LOUD"], "logLevel"),
        (["--set", "watchNamespaces={Not_A_Namespace}"], "watchNamespaces"),
        (["--set", "graphDefaults.dsnSecret=no-slash"], "dsnSecret"),
        (["--set", "replicas=3"], "replicas"),  # a typo of replicaCount
    ],
)
def test_bad_values_are_refused_at_install(values, complaint):
    result = run_helm("template", "a", str(CHART), *values)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def kubectl_apply(objects: list[dict], path: Path) -> None:
    path.write_text(yaml.safe_dump_all(objects))
    result = subprocess.run(
        ["kubectl", "apply", "-f", str(path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_the_operator_needs_nothing_its_rbac_does_not_grant(
    mode, kube: Kube, tmp_path: Path, monkeypatch
):
    """The operator runs as the chart's ServiceAccount and the emulator enforces the chart's
    RBAC on every request (and OwnerReferencesPermissionEnforcement, as OpenShift does)."""
    # With the shared Postgres, so the scenario exercises every kind the operator owns.
    objects = render(mode, "--set", "graphDefaults.dsnSecret=agentflow-system/checkpointer")
    kube.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}, "namespaces"
    )
    kubectl_apply(objects, tmp_path / "chart.yaml")  # the chart applies cleanly
    operator = next(o for o in objects if o["kind"] == "Deployment")
    env = {
        e["name"]: e["value"] for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    account = operator["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = kube.server.kubeconfig(tmp_path / "operator", (NAMESPACE, account))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    namespaces = (
        env["AGENTFLOW_OPERATOR_WATCH_NAMESPACES"].split(",")
        if env["AGENTFLOW_OPERATOR_WATCH_NAMESPACES"]
        else []
    )
    scope = [arg for ns in namespaces for arg in ("--namespace", ns)] or ["--all-namespaces"]
    jwt_secret(kube)
    with KopfRunner(["run", *scope, "-m", "agentflow_operator.handlers"], timeout=60) as runner:
        kube.create(graph(), "agentgraphs")
        eventually(
            lambda: (c := condition(kube, "support-agent", "Accepted")) and c["status"] == "True",
            what="the graph accepted",
        )
        kube.patch(
            "v1",
            "secrets",
            "agents",
            "support-agent-jwt",
            {"stringData": {"secret": "rotated" * 9}},
        )
        autoscaled = {"spec": {"autoscaling": {"maxReplicas": 4}}}
        kube.patch("agentflow.dev/v1alpha1", "agentgraphs", "agents", "support-agent", autoscaled)
        eventually(
            lambda: kube.get(
                "autoscaling/v2", "horizontalpodautoscalers", "agents", "support-agent"
            ),
            what="the HPA",
        )
        fixed = {"spec": {"autoscaling": None, "replicas": 1}}
        kube.patch("agentflow.dev/v1alpha1", "agentgraphs", "agents", "support-agent", fixed)
        eventually(
            lambda: (
                kube.get("autoscaling/v2", "horizontalpodautoscalers", "agents", "support-agent")
                is None
            ),
            what="the HPA gone",
        )
        kube.delete("agentflow.dev/v1alpha1", "agentgraphs", "agents", "support-agent")
    assert runner.exception is None
    # The operator's own requests (kopf's and the kubernetes client's), not the test's or kubectl's.
    denied = [
        m
        for agent, m in kube.server.emulator.denied
        if not agent.startswith(("python-httpx", "kubectl"))
    ]
    assert denied == [], "the chart's RBAC refused: " + "; ".join(sorted(set(denied)))
