"""The API emulator's own semantics, checked through raw HTTP the way clients see them."""

import json
from pathlib import Path

import httpx
import pytest
import yaml

from tests.kube.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "agentgraphs.agentflow.dev.yaml").read_text())
CM = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
GRAPHS = "/apis/agentflow.dev/v1alpha1/namespaces/default/agentgraphs"
MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture
def api(emulator: EmulatorServer):
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


def configmap(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def deployment(name: str = "web") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
                },
            },
        },
    }


def test_create_get_list_with_selectors_and_conflicts(api):
    first = api.post(CM, json=configmap("one", tier="web")).json()
    api.post(CM, json=configmap("two", tier="db"))
    assert first["metadata"]["uid"]
    assert first["metadata"]["resourceVersion"]
    assert api.get(f"{CM}/one").json()["data"] == {"k": "v"}

    def names(selector):
        return [
            i["metadata"]["name"]
            for i in api.get(CM, params={"labelSelector": selector}).json()["items"]
        ]

    assert names("tier=web") == ["one"]
    assert names("tier in (web,db)") == ["one", "two"]
    assert names("tier!=web") == ["two"]
    again = api.post(CM, json=configmap("one"))
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"
    missing = api.post("/api/v1/namespaces/nowhere/configmaps", json=configmap("x"))
    assert missing.status_code == 404
    assert 'namespaces "nowhere" not found' in missing.json()["message"]


def test_stale_writes_are_conflicts_and_generation_tracks_spec(api):
    assert api.post(DEPLOYMENTS, json=deployment()).json()["metadata"]["generation"] == 1
    created = api.get(f"{DEPLOYMENTS}/web").json()  # the controller annotated its revision
    stale = json.loads(json.dumps(created))
    created["spec"]["replicas"] = 2
    updated = api.put(f"{DEPLOYMENTS}/web", json=created).json()
    assert updated["metadata"]["generation"] == 2
    stale["spec"]["replicas"] = 5
    conflict = api.put(f"{DEPLOYMENTS}/web", json=stale)
    assert conflict.status_code == 409
    assert "the object has been modified" in conflict.json()["message"]
    labelled = api.patch(
        f"{DEPLOYMENTS}/web", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE
    ).json()
    assert labelled["metadata"]["generation"] == 2  # metadata is not spec


def test_status_is_only_written_through_its_subresource(api):
    api.post(DEPLOYMENTS, json={**deployment(), "status": {"replicas": 9}})
    assert "status" not in api.get(f"{DEPLOYMENTS}/web").json()  # dropped on create
    api.patch(f"{DEPLOYMENTS}/web", json={"status": {"replicas": 3}}, headers=MERGE)
    assert "status" not in api.get(f"{DEPLOYMENTS}/web").json()  # ignored on the main resource
    written = api.patch(
        f"{DEPLOYMENTS}/web/status",
        json={"status": {"readyReplicas": 1}, "spec": {"replicas": 7}},
        headers=MERGE,
    ).json()
    assert written["status"] == {"readyReplicas": 1}
    assert written["spec"]["replicas"] == 1
    assert written["metadata"]["generation"] == 1


def test_strategic_merge_patch_merges_named_lists(api):
    api.post(DEPLOYMENTS, json=deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
    patched = api.patch(
        f"{DEPLOYMENTS}/web",
        json=patch,
        headers={"content-type": "application/strategic-merge-patch+json"},
    ).json()
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "a:1"), ("b", "b:2")]
    replaced = api.patch(f"{DEPLOYMENTS}/web", json=patch, headers=MERGE).json()
    assert (
        len(replaced["spec"]["template"]["spec"]["containers"]) == 1
    )  # merge patch replaces lists


def test_watch_replays_from_a_resource_version_and_410s_when_too_old(api, emulator):
    first = api.post(CM, json=configmap("a")).json()
    api.post(CM, json=configmap("b"))
    api.delete(f"{CM}/a")
    since = first["metadata"]["resourceVersion"]
    with api.stream(
        "GET", CM, params={"watch": "true", "resourceVersion": since, "timeoutSeconds": "1"}
    ) as stream:
        events = [json.loads(line) for line in stream.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    emulator.call(lambda: emulator.emulator.cluster.history.clear())
    api.post(CM, json=configmap("c"))
    with api.stream("GET", CM, params={"watch": "true", "resourceVersion": since}) as stream:
        gone = [json.loads(line) for line in stream.iter_lines() if line]
    assert gone[0]["type"] == "ERROR"
    assert gone[0]["object"]["code"] == 410


def test_finalizers_hold_deletion_and_owners_take_dependents_along(api):
    owner = api.post(
        CM, json={**configmap("owner"), "metadata": {"name": "owner", "finalizers": ["test/hold"]}}
    ).json()
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    api.post(CM, json={"metadata": {"name": "child", "ownerReferences": [ref]}})
    held = api.delete(f"{CM}/owner").json()
    assert held["metadata"]["deletionTimestamp"]
    assert api.get(f"{CM}/child").status_code == 200
    api.patch(f"{CM}/owner", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert api.get(f"{CM}/owner").status_code == 404
    assert api.get(f"{CM}/child").status_code == 404  # garbage collected


def test_crds_are_served_defaulted_validated_and_scalable(api):
    assert (
        api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD).status_code
        == 201
    )
    groups = [g["name"] for g in api.get("/apis").json()["groups"]]
    assert "agentflow.dev" in groups
    resources = api.get("/apis/agentflow.dev/v1alpha1").json()["resources"]
    assert {r["name"] for r in resources} >= {
        "agentgraphs",
        "agentgraphs/status",
        "agentgraphs/scale",
    }

    graph = {
        "apiVersion": "agentflow.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": "g"},
        "spec": {"graph": "a.b:c", "replicas": 2},
    }
    created = api.post(GRAPHS, json=graph).json()
    assert created["spec"]["workers"] == 1
    assert created["spec"]["mode"] == "production"
    both = {
        **graph,
        "metadata": {"name": "h"},
        "spec": {"graph": "a:b", "autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
    }
    refused = api.post(GRAPHS, json=both)
    assert refused.status_code == 422
    assert "minReplicas must not exceed maxReplicas" in refused.json()["message"]
    bad = api.post(
        GRAPHS, json={**graph, "metadata": {"name": "i"}, "spec": {"graph": "not valid"}}
    )
    assert bad.status_code == 422
    assert "spec.graph" in bad.json()["message"]

    scale = api.get(f"{GRAPHS}/g/scale").json()
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 2
    api.patch(f"{GRAPHS}/g/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert api.get(f"{GRAPHS}/g").json()["spec"]["replicas"] == 5


def test_tables_for_kubectl_get(api):
    api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD)
    api.post(GRAPHS, json={"metadata": {"name": "g"}, "spec": {"graph": "a:b"}})
    api.patch(
        f"{GRAPHS}/g/status",
        json={
            "status": {
                "url": "http://g",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Available",
                        "message": "1/1",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        },
        headers=MERGE,
    )
    table = api.get(
        GRAPHS, headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ).json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Reason",
        "Replicas",
        "URL",
        "Age",
    ]
    assert table["rows"][0]["cells"][:3] == ["g", "True", "Available"]


def test_injected_faults(api, emulator):
    emulator.emulator.inject("GET", r"/configmaps$", 503, times=1)
    assert api.get(CM).status_code == 503
    assert api.get(CM).status_code == 200


def test_streaming_lists_end_their_initial_events_with_a_bookmark(api):
    api.post(CM, json=configmap("a"))
    query = {
        "watch": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
    }
    with api.stream("GET", CM, params=query) as stream:
        events = [json.loads(line) for line in stream.iter_lines() if line]
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "a"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
