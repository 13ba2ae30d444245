"""What the operator does when something refuses: the spec, the API server (422), RBAC (403),
a Secret it may not read. Each becomes ``Accepted=False`` with a reason and a Warning Event,
the old objects keep serving, nothing half-built appears, and a fix is picked up."""

from pathlib import Path

import pytest
from kopf.testing import KopfRunner

from tests.kube.client import Kube
from tests.operator.test_operator import (
    AG,
    condition,
    deployment_of,
    graph,
    jwt_secret,
    warnings,
)
from tests.polling import eventually

RUN = ["run", "--all-namespaces", "--standalone", "-m", "agentflow_operator.handlers"]


def refused(kube: Kube, name: str = "support-agent") -> dict:
    return eventually(
        lambda: (c := condition(kube, name, "Accepted")) and c["status"] == "False" and c,
        what=f"{name} refused",
    )


def test_a_name_that_cannot_name_a_service_is_refused_at_once(kube, operator):
    jwt_secret(kube)
    kube.create(graph("9lives"), "agentgraphs")
    verdict = refused(kube, "9lives")
    assert verdict["reason"] == "InvalidName"
    assert "DNS-1035" in verdict["message"]
    assert '"9lives"' in verdict["message"]
    eventually(lambda: warnings(kube, "InvalidName"), what="a Warning Event")
    assert deployment_of(kube, "9lives") is None  # nothing half-built


def test_an_object_the_api_server_refuses_is_reported_and_the_old_one_keeps_serving(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    eventually(
        lambda: (c := condition(kube, "support-agent", "Accepted")) and c["status"] == "True"
    )
    before = deployment_of(kube)["spec"]["template"]

    # A pod label value the CRD takes but a Deployment cannot carry (over 63 characters).
    patch = {"spec": {"podLabels": {"team": "x" * 64}}}
    kube.patch(AG, "agentgraphs", "agents", "support-agent", patch)
    verdict = refused(kube)
    assert verdict["reason"] == "Invalid"
    assert verdict["message"].startswith("the API server refused Deployment agents/support-agent:")
    assert "must be no more than 63 characters" in verdict["message"]
    eventually(lambda: warnings(kube, "Invalid"), what="a Warning Event")
    assert deployment_of(kube)["spec"]["template"] == before  # the old pods keep serving
    ready = condition(kube, "support-agent", "Ready")
    assert ready["reason"] != "DeploymentMissing"  # it reports the Deployment that is there

    kube.patch(AG, "agentgraphs", "agents", "support-agent", {"spec": {"podLabels": None}})
    eventually(
        lambda: condition(kube, "support-agent", "Accepted")["status"] == "True",
        what="accepted after the fix",
    )


def test_a_secret_without_the_label_is_named_with_the_command_that_fixes_it(kube, operator):
    jwt_secret(kube, watched=False)
    kube.create(graph(), "agentgraphs")
    verdict = refused(kube)
    assert verdict["reason"] == "SecretNotWatched"
    assert (
        "kubectl label secret -n agents support-agent-jwt agentflow.dev/watched=true"
        in verdict["message"]
    )
    kube.patch(
        "v1",
        "secrets",
        "agents",
        "support-agent-jwt",
        {"metadata": {"labels": {"agentflow.dev/watched": "true"}}},
    )
    eventually(
        lambda: condition(kube, "support-agent", "Accepted")["status"] == "True",
        what="accepted once labelled",
    )


def rbac(kube: Kube, rules: list[dict]) -> None:
    """A ServiceAccount agentflow-system/operator bound cluster-wide to ``rules``."""
    base = "/apis/rbac.authorization.k8s.io/v1"
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "operator"},
            "rules": rules,
        },
        "clusterroles",
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "operator"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "operator",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "operator", "namespace": "agentflow-system"}
        ],
    }
    assert kube.http.post(f"{base}/clusterrolebindings", json=binding).status_code == 201


def rule(group: str, resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


EVERYTHING_BUT_SERVICES = [
    rule("agentflow.dev", ["agentgraphs"], ["get", "list", "watch", "patch"]),
    rule("agentflow.dev", ["agentgraphs/status"], ["get", "patch"]),
    rule("agentflow.dev", ["agentgraphs/finalizers"], ["update"]),
    rule("apps", ["deployments"], ["get", "list", "watch", "create", "patch", "delete"]),
    rule("", ["secrets"], ["get", "list", "watch", "create", "patch", "delete"]),
    rule("", ["services"], ["get", "list", "watch"]),  # may not write them
    rule("policy", ["poddisruptionbudgets"], ["get", "list", "watch", "create", "patch", "delete"]),
    rule(
        "autoscaling",
        ["horizontalpodautoscalers"],
        ["get", "list", "watch", "create", "patch", "delete"],
    ),
    rule("", ["events"], ["create"]),
    rule("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"]),
    rule("", ["namespaces"], ["list", "watch"]),
]


def test_a_write_rbac_forbids_is_a_condition_not_a_silent_loop(kube, monkeypatch, tmp_path: Path):
    rbac(kube, EVERYTHING_BUT_SERVICES)
    account = kube.server.kubeconfig(tmp_path / "operator", ("agentflow-system", "operator"))
    monkeypatch.setenv("KUBECONFIG", str(account))
    monkeypatch.setenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", "agentflow-system/checkpointer")
    # The operator may read the shared DSN Secret of its own namespace.
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "dsn", "namespace": "agentflow-system"},
            "rules": [{**rule("", ["secrets"], ["get"]), "resourceNames": ["checkpointer"]}],
        },
        "roles",
    )
    kube.http.post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/agentflow-system/rolebindings",
        json={
            "metadata": {"name": "dsn"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dsn"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "operator", "namespace": "agentflow-system"}
            ],
        },
    )
    jwt_secret(kube)
    with KopfRunner(RUN, timeout=60) as runner:
        kube.create(graph(), "agentgraphs")
        verdict = refused(kube)
        assert verdict["reason"] == "Forbidden"
        assert 'cannot patch resource "services"' in verdict["message"]
        eventually(lambda: warnings(kube, "Forbidden"), what="a Warning Event")
    assert runner.exception is None, runner.output


@pytest.mark.parametrize("legacy", [False, True], ids=["no finalizer", "legacy finalizer"])
def test_deleting_a_graph_never_waits_for_the_operator(kube, monkeypatch, legacy):
    monkeypatch.setenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", "agentflow-system/checkpointer")
    jwt_secret(kube)
    body = graph()
    if legacy:  # what operators before this one put on every graph
        body["metadata"]["finalizers"] = ["agentflow.dev/operator"]
    kube.create(body, "agentgraphs")
    with KopfRunner(RUN, timeout=60) as runner:
        eventually(
            lambda: (c := condition(kube, "support-agent", "Accepted")) and c["status"] == "True"
        )
        live = kube.get(AG, "agentgraphs", "agents", "support-agent")
        assert not live["metadata"].get("finalizers")  # released, if it had one
    assert runner.exception is None, runner.output

    # The operator is gone (uninstalled, crash-looping...): deletion still completes.
    kube.delete(AG, "agentgraphs", "agents", "support-agent")
    assert kube.get(AG, "agentgraphs", "agents", "support-agent") is None
    assert deployment_of(kube) is None  # garbage collected through owner references
    kube.delete("v1", "namespaces", None, "agents")
    assert kube.get("v1", "namespaces", None, "agents") is None
