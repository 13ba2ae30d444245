"""Server-side apply in the emulator, checked through raw HTTP as clients see it: field
ownership, removal of fields a manager stops applying, conflicts between managers, merge of
associative lists by their keys, and what the API server does with defaults and quantities."""

import httpx
import pytest
import yaml

from tests.kube.emulator import EmulatorServer

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"content-type": "application/apply-patch+yaml"}
MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture
def api(emulator: EmulatorServer):
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


def config(**pod: object) -> dict:
    """A Deployment as an operator applies it (no replicas unless given)."""
    replicas = pod.pop("replicas", None)
    spec: dict = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "web:1",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    }
                ],
                **pod,
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def apply(api, body: dict, manager: str = "operator", force: bool = True, path: str = "web"):
    params = {"fieldManager": manager, "force": "true" if force else "false"}
    return api.patch(
        f"{DEPLOYMENTS}/{path}", content=yaml.safe_dump(body), headers=APPLY, params=params
    )


def managers(obj: dict) -> dict[str, dict]:
    return {
        (e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
        for e in obj["metadata"]["managedFields"]
    }


def test_apply_creates_and_owns_exactly_the_applied_fields(api):
    created = apply(api, config(replicas=2))
    assert created.status_code == 201, created.text
    body = created.json()
    fields = managers(body)[("operator", "Apply", "")]
    assert fields["f:spec"]["f:replicas"] == {}
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert container["f:env"] == {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}}
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in container["f:ports"]
    # Defaults are the server's: nobody owns them.
    assert body["spec"]["revisionHistoryLimit"] == 10
    assert "f:revisionHistoryLimit" not in fields["f:spec"]


def current_version(api) -> str:
    """After the Deployment controller has annotated the revision."""
    return api.get(f"{DEPLOYMENTS}/web").json()["metadata"]["resourceVersion"]


def test_the_same_apply_twice_changes_nothing(api):
    apply(api, config(replicas=2))
    before = current_version(api)
    second = apply(api, config(replicas=2)).json()
    assert second["metadata"]["resourceVersion"] == before


def test_a_field_the_manager_stops_applying_is_removed(api):
    apply(api, config(nodeSelector={"pool": "agents"}, serviceAccountName="app"))
    without = apply(api, config()).json()
    pod = without["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert "serviceAccountName" not in pod


def test_a_merge_patch_of_the_whole_object_would_have_kept_it(api):
    """What the operator did before server-side apply: the omitted key survives."""
    apply(api, config(nodeSelector={"pool": "agents"}))
    patched = api.patch(f"{DEPLOYMENTS}/web", json=config(), headers=MERGE).json()
    assert patched["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "agents"}


def test_removing_replicas_resets_them_to_the_default_unless_another_manager_holds_them(api):
    apply(api, config(replicas=5))
    assert apply(api, config()).json()["spec"]["replicas"] == 1  # the default, not 5
    apply(api, config(replicas=5))
    hand_over = {**config(), "spec": {"replicas": 5}}
    apply(api, hand_over, manager="handover", force=False)
    kept = apply(api, config()).json()
    assert kept["spec"]["replicas"] == 5
    assert ("handover", "Apply", "") in managers(kept)


def test_another_managers_change_conflicts_unless_forced(api):
    apply(api, config(replicas=2))
    scaled = api.patch(
        f"{DEPLOYMENTS}/web/scale",
        json={"spec": {"replicas": 7}},
        headers=MERGE,
        params={"fieldManager": "kube-controller-manager"},
    )
    assert scaled.status_code == 200
    owners = managers(api.get(f"{DEPLOYMENTS}/web").json())
    assert owners[("kube-controller-manager", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in owners[("operator", "Apply", "")]["f:spec"]  # taken over

    refused = apply(api, config(replicas=2), force=False)
    assert refused.status_code == 409
    assert (
        refused.json()["message"]
        == 'Apply failed with 1 conflict: conflict with "kube-controller-manager" with subresource "scale" using apps/v1: .spec.replicas'
    )
    assert apply(api, config(replicas=2), force=True).json()["spec"]["replicas"] == 2


def test_an_edit_takes_ownership_of_what_it_changed(api):
    apply(api, config())
    edited = config()
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    api.patch(
        f"{DEPLOYMENTS}/web", json=edited, headers=MERGE, params={"fieldManager": "kubectl-edit"}
    )
    owners = managers(api.get(f"{DEPLOYMENTS}/web").json())
    web = 'k:{"name":"web"}'
    edit = owners[("kubectl-edit", "Update", "")]
    assert edit["f:spec"]["f:template"]["f:spec"]["f:containers"][web] == {"f:image": {}}
    ours = owners[("operator", "Apply", "")]["f:spec"]["f:template"]["f:spec"]["f:containers"][web]
    assert "f:image" not in ours


def test_associative_lists_merge_by_key(api):
    apply(api, config())
    sidecar = config()
    sidecar["spec"]["template"]["spec"]["containers"] = [{"name": "sidecar", "image": "proxy:1"}]
    merged = apply(api, sidecar, manager="injector").json()
    names = [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "sidecar"]  # the operator's container is still there


def test_apply_needs_a_field_manager_and_declared_fields(api):
    missing = api.patch(f"{DEPLOYMENTS}/web", content=yaml.safe_dump(config()), headers=APPLY)
    assert missing.status_code == 422
    assert "fieldManager: Required value" in missing.json()["message"]
    typo = config()
    typo["spec"]["replica"] = 3
    refused = apply(api, typo)
    assert refused.status_code == 422
    assert ".spec.replica: field not declared in schema" in refused.json()["message"]


def test_duplicate_keys_in_an_applied_list_are_refused(api):
    doubled = config()
    doubled["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MODE", "value": "a"},
        {"name": "MODE", "value": "b"},
    ]
    refused = apply(api, doubled)
    assert refused.status_code == 422
    assert 'duplicate entries for key [name="MODE"]' in refused.json()["message"]


def test_quantities_come_back_canonical_and_an_unchanged_apply_stays_a_no_op(api):
    resources = {"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"memory": "2Gi"}}
    body = config()
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    first = apply(api, body).json()
    assert first["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "1",
        "memory": "1Gi",
    }
    before = current_version(api)
    again = apply(api, body).json()
    assert again["metadata"]["resourceVersion"] == before
