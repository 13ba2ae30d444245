"""What the operator builds, as golden files (UPDATE_GOLDEN=1 rewrites them), each object
validated against the upstream Kubernetes schemas of two minors with kubernetes-validate."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from agentflow_operator.api import AgentGraphSpec
from agentflow_operator.builders import (
    CONFIG_HASH_ANNOTATION,
    Graph,
    config_hash,
    desired_objects,
    referenced_secrets,
)
from agentflow_operator.config import OperatorConfig
from tests.golden import assert_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
KUBERNETES_MINORS = ["1.31.0", "1.37.0"]

SHARED = OperatorConfig(
    default_dsn_secret="agentflow-system/checkpointer",
    default_redis_url="redis://redis.agentflow-system.svc.cluster.local:6379/0",
)
BARE = OperatorConfig()


def example(name: str) -> dict:
    return next(
        d
        for d in yaml.safe_load_all((ROOT / "examples" / name).read_text())
        if d["kind"] == "AgentGraph"
    )


CASES = {
    "example": (example("agentgraph.yaml")["spec"], SHARED),
    "autoscaled": (example("agentgraph-autoscaled.yaml")["spec"], SHARED),
    "no-default-checkpointer": ({"graph": "app.graph:app"}, BARE),
    "suspended": ({"graph": "app.graph:app", "replicas": 4, "suspend": True}, SHARED),
    "everything": (
        {
            "graph": "app.graph:app",
            "image": "registry.example/app:2",
            "replicas": 2,
            "workers": 4,
            "mode": "development",
            "logLevel": "DEBUG",
            "origins": ["https://a.example", "https://b.example"],
            "auth": {"jwtSecretRef": {"name": "jwt", "key": "public.pem"}, "algorithm": "RS256"},
            "checkpointer": {
                "postgres": {"dsnSecretRef": {"name": "db", "key": "dsn"}},
                "redis": {"urlSecretRef": {"name": "redis", "key": "url"}},
            },
            "env": [
                {
                    "name": "OPENAI_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "llm", "key": "key"}},
                }
            ],
            "envFrom": [{"configMapRef": {"name": "app-config"}}],
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"memory": "2Gi"},
            },
            "service": {
                "type": "LoadBalancer",
                "port": 8080,
                "annotations": {"example/lb": "internal"},
            },
            "rollout": {"maxSurge": "25%", "maxUnavailable": 0},
            "disruption": {"maxUnavailable": "25%"},
            "nodeSelector": {"pool": "agents"},
            "tolerations": [{"key": "agents", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {
                                    "matchLabels": {"app.kubernetes.io/instance": "everything"}
                                },
                            },
                        }
                    ]
                }
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "everything"}},
                }
            ],
            "serviceAccountName": "app",
            "imagePullSecrets": [{"name": "registry"}],
            "podAnnotations": {"prometheus.io/scrape": "true"},
            "podLabels": {"team": "agents"},
        },
        SHARED,
    ),
}


def build(case: str) -> list[dict]:
    spec, config = CASES[case]
    graph = Graph(
        name=case, namespace="agents", uid="0000-uid", spec=AgentGraphSpec.model_validate(spec)
    )
    secrets = {name: {"key": "value"} for name in referenced_secrets(graph.spec, config)}
    dsn = "postgresql://app:secret@postgres:5432/agents" if config.default_dsn_secret else None
    return desired_objects(graph, config, secrets, dsn).objects


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    rendered = yaml.safe_dump_all(build(case), sort_keys=False)
    path = GOLDEN / f"{case}.yaml"
    assert_golden(path, rendered)


@pytest.mark.parametrize("minor", KUBERNETES_MINORS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_objects_are_valid_kubernetes(case, minor):
    for obj in build(case):
        kubernetes_validate.validate(obj, minor, strict=True)


def test_the_autoscaler_owns_replicas():
    kinds = {o["kind"]: o for o in build("autoscaled")}
    assert "replicas" not in kinds["Deployment"]["spec"]
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    metrics = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert {m["type"] for m in metrics} == {"Resource", "Pods"}


def test_without_a_checkpointer_a_graph_runs_one_replica_and_says_why():
    graph = Graph("g", "ns", "uid", AgentGraphSpec.model_validate({"graph": "a:b", "replicas": 3}))
    desired = desired_objects(graph, BARE, {})
    assert desired.replicas == 1
    assert "no checkpointer is configured" in desired.notices[0]
    assert {o["kind"] for o in desired.objects} == {"Deployment", "Service"}


def test_secret_contents_change_the_config_hash():
    graph = Graph("g", "ns", "uid", AgentGraphSpec.model_validate({"graph": "a:b"}))
    before = config_hash(graph, {"jwt": {"secret": "old"}})
    assert before != config_hash(graph, {"jwt": {"secret": "new"}})
    deployment = desired_objects(graph, SHARED, {"jwt": {"secret": "new"}}, "dsn").objects[1]
    assert deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
