"""The real operator against the emulated cluster: apply an AgentGraph, watch it converge."""

import copy

import yaml

from tests.operator.conftest import ROOT, Kube, eventually

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


def jwt_secret(kube: Kube, value: str = "first-secret" * 6) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "support-agent-jwt", "namespace": "agents"},
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
    deployment = eventually(
        lambda: kube.get("apps/v1", "deployments", "agents", "support-agent"), what="the Deployment"
    )
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

    accepted = eventually(lambda: condition(kube, "support-agent", "Accepted"), what="Accepted")
    assert accepted["status"] == "True"
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
