"""Where the emulator must be as strict as kube-apiserver: validation and defaulting of built-in
kinds, CRD cost estimation, admission, RBAC, namespace deletion, pagination and the two
controllers. Each test is something a lenient test double would let through."""

import copy
from pathlib import Path

import httpx
import pytest
import yaml

from tests.kube.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "agentgraphs.agentflow.dev.yaml").read_text())
NS = "/api/v1/namespaces"
CM = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
HPAS = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
MERGE = {"content-type": "application/merge-patch+json"}
RS = "/apis/apps/v1/namespaces/default/replicasets"


@pytest.fixture
def api(emulator: EmulatorServer):
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


def deployment(name: str = "web", replicas: int = 2) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }


# ---------------------------------------------------------------------- built-in kinds


def test_a_deployment_is_defaulted_as_the_api_server_does(api):
    created = api.post(DEPLOYMENTS, json=deployment()).json()
    spec = created["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    container = spec["template"]["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        (
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": "9lives"}, "spec": {"ports": [{"port": 80}]}},
            'metadata.name: Invalid value: "9lives": a DNS-1035 label must consist of lower case',
        ),
        (
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            {
                "metadata": {"name": "both"},
                "spec": {
                    "minAvailable": 1,
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": {"a": "b"}},
                },
            },
            "minAvailable and maxUnavailable cannot be both set",
        ),
        (
            CM,
            {"metadata": {"name": "long", "labels": {"app.kubernetes.io/instance": "x" * 64}}},
            "must be no more than 63 characters",
        ),
        (
            DEPLOYMENTS,
            {
                **deployment(),
                "metadata": {"name": "nosel"},
                "spec": {**deployment()["spec"], "selector": {"matchLabels": {"app": "other"}}},
            },
            "`selector` does not match template `labels`",
        ),
    ],
)
def test_cross_field_rules_and_names_are_enforced(api, path, body, fragment):
    refused = api.post(path, json=body)
    assert refused.status_code == 422, refused.text
    assert fragment in refused.json()["message"]


def test_the_selector_of_a_deployment_is_immutable(api):
    api.post(DEPLOYMENTS, json=deployment())
    moved = deployment()
    moved["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    moved["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    refused = api.put(f"{DEPLOYMENTS}/web", json=moved)
    assert refused.status_code == 422
    assert "field is immutable" in refused.json()["message"]


def test_unknown_fields_and_wrong_types_of_built_in_kinds(api):
    typo = deployment()
    typo["spec"]["replica"] = 3
    strict = api.post(DEPLOYMENTS, json=typo, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert 'unknown field "spec.replica"' in strict.json()["message"]
    dropped = api.post(DEPLOYMENTS, json=typo).json()  # the default: dropped, not stored
    assert "replica" not in dropped["spec"]
    wrong = deployment("typed")
    wrong["spec"]["replicas"] = "three"
    assert api.post(DEPLOYMENTS, json=wrong).status_code == 400


# ---------------------------------------------------------------------- CRDs


def test_a_cel_rule_the_cost_estimator_refuses(api):
    expensive = copy.deepcopy(CRD)
    spec = expensive["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    spec["x-kubernetes-validations"] = [
        {"rule": "self.tags.all(t, t.matches('^[a-z]+$'))", "message": "lowercase tags"}
    ]
    refused = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=expensive)
    assert refused.status_code == 422
    assert "estimated rule cost exceeds budget" in refused.json()["message"]
    spec["properties"]["tags"]["maxItems"] = 10
    spec["properties"]["tags"]["items"]["maxLength"] = 20
    accepted = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=expensive)
    assert accepted.status_code == 201, accepted.text


# ---------------------------------------------------------------------- lists and namespaces


def test_lists_are_paginated(api):
    for index in range(5):
        api.post(CM, json={"metadata": {"name": f"cm-{index}"}})
    names, token, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"continue": token} if token else {})}
        page = api.get(CM, params=params).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        pages += 1
        token = page["metadata"].get("continue")
        if not token:
            break
    assert names == [f"cm-{i}" for i in range(5)]
    assert pages == 3


def test_a_namespace_waits_for_the_finalizers_of_its_content(api):
    api.post(NS, json={"metadata": {"name": "doomed"}})
    held = {"metadata": {"name": "held", "finalizers": ["example.com/cleanup"]}}
    api.post(f"{NS}/doomed/configmaps", json=held)
    api.post(f"{NS}/doomed/configmaps", json={"metadata": {"name": "free"}})
    terminating = api.delete(f"{NS}/doomed").json()
    assert terminating["status"]["phase"] == "Terminating"
    assert api.get(f"{NS}/doomed/configmaps/free").status_code == 404
    assert api.get(f"{NS}/doomed/configmaps/held").json()["metadata"]["deletionTimestamp"]
    late = api.post(f"{NS}/doomed/configmaps", json={"metadata": {"name": "late"}})
    assert late.status_code == 403
    assert "being terminated" in late.json()["message"]
    assert api.get(f"{NS}/doomed").status_code == 200  # still there
    api.patch(
        f"{NS}/doomed/configmaps/held", json={"metadata": {"finalizers": None}}, headers=MERGE
    )
    assert api.get(f"{NS}/doomed").status_code == 404


# ---------------------------------------------------------------------- RBAC and admission


def as_account(emulator: EmulatorServer, name: str) -> httpx.Client:
    token = f"serviceaccount:default:{name}"
    return httpx.Client(
        base_url=emulator.url, timeout=10, headers={"authorization": f"Bearer {token}"}
    )


def grant(api, name: str, rules: list[dict]) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    api.post(f"{rbac}/roles", json={"metadata": {"name": name}, "rules": rules})
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}],
    }
    api.post(f"{rbac}/rolebindings", json=binding)


def test_rbac_decides_each_request(api, emulator):
    with as_account(emulator, "reader") as reader:
        denied = reader.get(CM)
        assert denied.status_code == 403
        assert denied.json()["message"] == (
            'configmaps is forbidden: User "system:serviceaccount:default:reader" cannot list '
            'resource "configmaps" in API group "" in the namespace "default"'
        )
        grant(api, "reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}])
        assert reader.get(CM).status_code == 200
        assert reader.post(CM, json={"metadata": {"name": "x"}}).status_code == 403


def test_block_owner_deletion_needs_update_on_the_owners_finalizers(api, emulator):
    api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD)
    graphs = "/apis/agentflow.dev/v1alpha1/namespaces/default/agentgraphs"
    owner = api.post(graphs, json={"metadata": {"name": "g"}, "spec": {"graph": "a:b"}}).json()
    ref = {
        "apiVersion": "agentflow.dev/v1alpha1",
        "kind": "AgentGraph",
        "name": "g",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    child = {"metadata": {"name": "child", "ownerReferences": [ref]}}
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "delete"]}]
    grant(api, "writer", rules)
    with as_account(emulator, "writer") as writer:
        refused = writer.post(CM, json=child)
        assert refused.status_code == 403
        assert (
            "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on"
            in refused.json()["message"]
        )
        finalizers = {
            "apiGroups": ["agentflow.dev"],
            "resources": ["agentgraphs/finalizers"],
            "verbs": ["update"],
        }
        role = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/writer"
        api.patch(role, json={"rules": [*rules, finalizers]}, headers=MERGE)
        assert writer.post(CM, json=child).status_code == 201


# ---------------------------------------------------------------------- controllers


def replicasets(api) -> list[dict]:
    return api.get(RS).json()["items"]


def test_a_new_pod_template_is_a_new_revision_and_scaling_is_not(api):
    api.post(DEPLOYMENTS, json=deployment())
    [first] = replicasets(api)
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert first["spec"]["replicas"] == 2
    api.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 5}}, headers=MERGE)
    [same] = replicasets(api)
    assert same["metadata"]["name"] == first["metadata"]["name"]
    assert same["spec"]["replicas"] == 5
    annotated = {"spec": {"template": {"metadata": {"annotations": {"rolled": "1"}}}}}
    api.patch(f"{DEPLOYMENTS}/web", json=annotated, headers=MERGE)
    revisions = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
        for rs in replicasets(api)
    }
    assert revisions == {"1": 0, "2": 5}
    live = api.get(f"{DEPLOYMENTS}/web").json()
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def hpa(name: str = "web", low: int = 2, high: int = 6) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
        },
    }


def test_the_autoscaler_keeps_bounds_and_leaves_a_target_at_zero_alone(api, emulator):
    api.post(DEPLOYMENTS, json=deployment(replicas=1))
    api.post(HPAS, json=hpa())
    assert api.get(f"{DEPLOYMENTS}/web").json()["spec"]["replicas"] == 2  # up to minReplicas
    emulator.call(lambda: emulator.emulator.cluster.controllers.recommend("default", "web", 9))
    assert api.get(f"{DEPLOYMENTS}/web").json()["spec"]["replicas"] == 6  # capped at max

    api.post(DEPLOYMENTS, json=deployment("idle", replicas=0))
    api.post(HPAS, json=hpa("idle"))
    assert api.get(f"{DEPLOYMENTS}/idle").json()["spec"]["replicas"] == 0
    status = api.get(f"{HPAS}/idle").json()["status"]
    active = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "ScalingDisabled")


def test_a_selector_watch_sees_objects_enter_and_leave_its_selection(api):
    api.post(CM, json={"metadata": {"name": "x"}})
    version = api.get(CM).json()["metadata"]["resourceVersion"]
    api.patch(f"{CM}/x", json={"metadata": {"labels": {"watched": "true"}}}, headers=MERGE)
    api.patch(f"{CM}/x", json={"metadata": {"labels": {"watched": None}}}, headers=MERGE)
    query = {
        "watch": "true",
        "resourceVersion": version,
        "labelSelector": "watched=true",
        "timeoutSeconds": "1",
    }
    with api.stream("GET", CM, params=query) as stream:
        events = [yaml.safe_load(line)["type"] for line in stream.iter_lines() if line]
    assert events == ["ADDED", "DELETED"]


def test_a_dry_run_writes_nothing(api):
    """kube-apiserver checks a dry run and stores nothing; the emulator does not emulate it,
    so it refuses it instead of writing the object."""
    answer = api.post(f"{CM}?dryRun=All", json={"metadata": {"name": "dry"}, "data": {}})
    assert answer.status_code == 400
    assert "dryRun is not emulated" in answer.json()["message"]
    assert api.get(f"{CM}/dry").status_code == 404
