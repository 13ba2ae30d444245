"""The real operator against the emulated cluster: apply an AgentGraph, watch it converge."""

import copy

import yaml

from tests.operator.conftest import ROOT, Kube
from tests.polling import eventually

AG = "agentflow.dev/v1alpha1"


def graph(name: str = "support-agent", **spec) -> dict:
    base = next(
        d
        for d in yaml.safe_load_all((ROOT / "examples" / "agentgraph.yaml").read_text())
        if d["kind"] == "AgentGraph"
    )
    body = copy.deepcopy(base)
    body["metadata"] = {"name": name, "namespace": "agents"}
    body["spec"].update(spec)
    return body


def jwt_secret(kube: Kube, value: str = "first-secret" * 6, watched: bool = True) -> None:
    labels = {"agentflow.dev/watched": "true"} if watched else {}
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "support-agent-jwt", "namespace": "agents", "labels": labels},
            "stringData": {"secret": value},
        },
        "secrets",
    )


def condition(kube: Kube, name: str, kind: str) -> dict | None:
    body = kube.get(AG, "agentgraphs", "agents", name) or {}
    return next(
        (c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == kind), None
    )


def env_of(deployment: dict) -> dict:
    return {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def roll_out(kube: Kube, name: str, ready: int) -> None:
    """Act as the Deployment controller: report the rollout done with ``ready`` pods."""
    deployment = kube.get("apps/v1", "deployments", "agents", name)
    assert deployment is not None
    wanted = deployment["spec"].get("replicas", 1)
    kube.patch(
        "apps/v1",
        "deployments",
        "agents",
        name,
        {
            "status": {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": wanted,
                "readyReplicas": ready,
                "updatedReplicas": wanted,
                "availableReplicas": ready,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if ready else "False",
                        "reason": "MinimumReplicasAvailable",
                    },
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }
        },
        sub="status",
    )


def test_an_applied_graph_gets_its_objects_and_an_honest_status(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    accepted = eventually(lambda: condition(kube, "support-agent", "Accepted"), what="Accepted")
    assert accepted["status"] == "True", accepted
    deployment = kube.get("apps/v1", "deployments", "agents", "support-agent")
    env = env_of(deployment)
    assert env["AGENTFLOW_GRAPH"] == "support_agent.graph:app"
    assert env["AGENTFLOW_GRAPH_ID"] == "agents/support-agent"
    assert env["CHECKPOINTER"] == "postgres"
    assert env["DATABASE_URL"] == {
        "secretKeyRef": {"name": "support-agent-checkpointer", "key": "DATABASE_URL"}
    }
    assert env["JWT_SECRET_KEY"] == {"secretKeyRef": {"name": "support-agent-jwt", "key": "secret"}}
    assert deployment["spec"]["replicas"] == 3
    assert kube.get("v1", "services", "agents", "support-agent") is not None
    assert (
        kube.get("policy/v1", "poddisruptionbudgets", "agents", "support-agent")["spec"][
            "minAvailable"
        ]
        == 2
    )
    assert kube.get("v1", "secrets", "agents", "support-agent-checkpointer") is not None
    ready = condition(kube, "support-agent", "Ready")
    assert ready["status"] == "False"  # nothing runs yet: never Ready on faith

    roll_out(kube, "support-agent", ready=3)
    ready = eventually(
        lambda: (c := condition(kube, "support-agent", "Ready")) and c["status"] == "True" and c,
        what="Ready",
    )
    assert ready["message"] == "3/3 replicas ready"
    status = kube.get(AG, "agentgraphs", "agents", "support-agent")["status"]
    assert status["url"] == "http://support-agent.agents.svc.cluster.local:80"
    assert status["readyReplicas"] == 3
    assert (
        status["selector"]
        == "app.kubernetes.io/name=agentflow-runtime,app.kubernetes.io/instance=support-agent"
    )

    roll_out(kube, "support-agent", ready=0)
    eventually(
        lambda: condition(kube, "support-agent", "Ready")["status"] == "False",
        what="not Ready again",
    )


def warnings(kube: Kube, reason: str) -> list[dict]:
    """The Warning Events of the agents namespace with this reason."""
    events = kube.http.get("/api/v1/namespaces/agents/events").json()["items"]
    return [e for e in events if e.get("type") == "Warning" and e.get("reason") == reason]


def deployment_of(kube: Kube, name: str = "support-agent") -> dict | None:
    return kube.get("apps/v1", "deployments", "agents", name)


def test_scaling_autoscaling_and_suspend(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    eventually(lambda: deployment_of(kube), what="the Deployment")

    kube.patch(AG, "agentgraphs", "agents", "support-agent", {"spec": {"replicas": 5}}, sub="scale")
    eventually(lambda: deployment_of(kube)["spec"]["replicas"] == 5, what="5 replicas")

    kube.patch(
        AG,
        "agentgraphs",
        "agents",
        "support-agent",
        {"spec": {"replicas": None, "autoscaling": {"minReplicas": 2, "maxReplicas": 6}}},
    )
    hpa = eventually(
        lambda: kube.get("autoscaling/v2", "horizontalpodautoscalers", "agents", "support-agent"),
        what="the HPA",
    )
    assert hpa["spec"]["minReplicas"] == 2
    # The autoscaler owns replicas now: scaling the Deployment itself is not undone.
    kube.patch("apps/v1", "deployments", "agents", "support-agent", {"spec": {"replicas": 4}})
    kube.patch(
        AG, "agentgraphs", "agents", "support-agent", {"metadata": {"labels": {"touch": "1"}}}
    )
    eventually(
        lambda: condition(kube, "support-agent", "Accepted")["observedGeneration"] >= 3,
        what="a new reconcile",
    )
    assert deployment_of(kube)["spec"]["replicas"] == 4

    kube.patch(
        AG, "agentgraphs", "agents", "support-agent", {"spec": {"autoscaling": None, "replicas": 2}}
    )
    eventually(
        lambda: (
            kube.get("autoscaling/v2", "horizontalpodautoscalers", "agents", "support-agent")
            is None
        ),
        what="the HPA gone",
    )
    eventually(lambda: deployment_of(kube)["spec"]["replicas"] == 2, what="2 replicas")

    kube.patch(AG, "agentgraphs", "agents", "support-agent", {"spec": {"suspend": True}})
    eventually(lambda: deployment_of(kube)["spec"]["replicas"] == 0, what="suspended")
    ready = eventually(
        lambda: (
            (c := condition(kube, "support-agent", "Ready")) and c["reason"] == "Suspended" and c
        )
    )
    assert ready["status"] == "False"
    assert kube.get("policy/v1", "poddisruptionbudgets", "agents", "support-agent") is None


def test_rotating_a_secret_rolls_the_pods(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    first = eventually(lambda: deployment_of(kube), what="the Deployment")
    hash_before = first["spec"]["template"]["metadata"]["annotations"]["agentflow.dev/secrets-hash"]
    kube.patch(
        "v1", "secrets", "agents", "support-agent-jwt", {"stringData": {"secret": "rotated-" * 8}}
    )
    rolled = eventually(
        lambda: (
            (d := deployment_of(kube))["spec"]["template"]["metadata"]["annotations"][
                "agentflow.dev/secrets-hash"
            ]
            != hash_before
            and d
        ),
        what="a new config hash",
    )
    assert rolled["metadata"]["generation"] > first["metadata"]["generation"]


def test_drift_is_repaired_and_deletion_collects_everything(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    eventually(lambda: kube.get("v1", "services", "agents", "support-agent"), what="the Service")
    kube.delete("v1", "services", "agents", "support-agent")
    eventually(
        lambda: kube.get("v1", "services", "agents", "support-agent"),
        within_s=10,
        what="the Service restored",
    )

    kube.patch(
        "apps/v1",
        "deployments",
        "agents",
        "support-agent",
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "runtime", "image": "evil:latest"}]}}
            }
        },
    )
    eventually(
        lambda: (
            deployment_of(kube)["spec"]["template"]["spec"]["containers"][0]["image"]
            == "ghcr.io/agentflow/support-agent:0.1.0"
        ),
        within_s=10,
        what="the image restored",
    )

    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "not-ours",
            "namespace": "agents",
            "labels": {"app.kubernetes.io/instance": "support-agent"},
        },
    }
    kube.create(foreign, "configmaps")
    kube.delete(AG, "agentgraphs", "agents", "support-agent")
    eventually(lambda: deployment_of(kube) is None, what="the Deployment collected")
    assert kube.get("v1", "services", "agents", "support-agent") is None
    assert kube.get("v1", "secrets", "agents", "support-agent-checkpointer") is None
    assert kube.get("v1", "configmaps", "agents", "not-ours") is not None  # never touched


def test_an_invalid_spec_is_refused_with_a_condition_and_an_event_then_recovers(kube, operator):
    kube.create(graph(), "agentgraphs")  # its JWT Secret does not exist yet
    refused = eventually(
        lambda: (
            (c := condition(kube, "support-agent", "Accepted")) and c["status"] == "False" and c
        ),
        what="Accepted=False",
    )
    assert refused["reason"] == "SecretNotFound"
    assert refused["message"] == "Secret agents/support-agent-jwt does not exist"
    eventually(lambda: warnings(kube, "SecretNotFound"), what="a Warning Event")  # posted after
    assert deployment_of(kube) is None  # nothing half-built

    jwt_secret(kube)
    eventually(
        lambda: condition(kube, "support-agent", "Accepted")["status"] == "True",
        what="Accepted after the fix",
    )
    assert deployment_of(kube) is not None


def test_api_errors_are_retried(kube, operator):
    kube.server.emulator.inject("POST", r"/deployments$", 500, times=2)
    kube.server.emulator.inject("PATCH", r"/agentgraphs/support-agent/status$", 409, times=1)
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    eventually(lambda: deployment_of(kube), within_s=60, what="the Deployment after errors")
    eventually(
        lambda: condition(kube, "support-agent", "Accepted"),
        within_s=60,
        what="a status after a conflict",
    )
    deployments = kube.http.get("/apis/apps/v1/namespaces/agents/deployments").json()["items"]
    assert len(deployments) == 1  # retries never duplicate


def test_without_a_shared_checkpointer_one_replica_and_a_reason(kube, monkeypatch):
    from kopf.testing import KopfRunner

    monkeypatch.delenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", raising=False)
    jwt_secret(kube)
    with KopfRunner(
        ["run", "--all-namespaces", "--standalone", "-m", "agentflow_operator.handlers"], timeout=60
    ):
        kube.create(graph(), "agentgraphs")
        deployment = eventually(lambda: deployment_of(kube), what="the Deployment")
        assert deployment["spec"]["replicas"] == 1
        assert env_of(deployment)["CHECKPOINTER"] == "memory"
        accepted = eventually(lambda: condition(kube, "support-agent", "Accepted"))
        assert "runs a single replica" in accepted["message"]


def test_lost_watches_and_410_gone_are_survived(kube, operator):
    jwt_secret(kube)
    kube.create(graph("before"), "agentgraphs")
    eventually(lambda: deployment_of(kube, "before"), what="the first graph served")

    def restart_api_server() -> (
        None
    ):  # every watch ends and the history it could resume from is gone
        kube.server.emulator.cluster.history.clear()
        kube.server.emulator.close_watches()

    kube.server.call(restart_api_server)
    kube.create(graph("after"), "agentgraphs")
    eventually(
        lambda: deployment_of(kube, "after"),
        within_s=60,
        what="a graph created after the watches were lost",
    )


def test_a_converged_graph_is_left_alone(kube, operator):
    """Reconciling what is already right writes nothing (no update loop on server defaults)."""
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    eventually(lambda: condition(kube, "support-agent", "Accepted"), what="Accepted")
    kinds = [("apps/v1", "deployments"), ("v1", "services"), ("policy/v1", "poddisruptionbudgets")]
    before = {
        plural: kube.get(v, plural, "agents", "support-agent")["metadata"]["resourceVersion"]
        for v, plural in kinds
    }
    generation = kube.patch(
        AG, "agentgraphs", "agents", "support-agent", {"spec": {"logLevel": "INFO"}}
    )["metadata"]["generation"]
    eventually(
        lambda: condition(kube, "support-agent", "Accepted")["observedGeneration"] == generation,
        what="a reconcile of the same spec",
    )
    after = {
        plural: kube.get(v, plural, "agents", "support-agent")["metadata"]["resourceVersion"]
        for v, plural in kinds
    }
    assert after == before


def test_watches_and_lists_select_on_the_server_and_come_in_pages(kube, operator):
    """No Secret or Deployment but those the operator owns or was given ever streams into it."""
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    eventually(lambda: condition(kube, "support-agent", "Accepted"), what="Accepted")
    mine = [
        r
        for r in kube.server.emulator.requests
        if r.method == "GET" and not r.user_agent.startswith("python-httpx")
    ]
    for plural in (
        "secrets",
        "deployments",
        "services",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
    ):
        collection = [r for r in mine if r.path.endswith(f"/{plural}")]
        assert collection, f"no list or watch of {plural}"
        # Either the watch and its lists, by label, or a look-up of one name.
        by_name = [
            r for r in collection if r.query.get("fieldSelector", "").startswith("metadata.name=")
        ]
        by_label = [r for r in collection if r not in by_name]
        assert by_label, collection
        assert all(r.query.get("labelSelector") for r in by_label), by_label
        lists = [r for r in by_label if r.query.get("watch") not in ("true", "1")]
        assert all(r.query.get("limit") for r in lists), lists
    secrets = next(r for r in mine if r.path.endswith("/secrets"))
    assert secrets.query["labelSelector"] == "agentflow.dev/watched=true"
