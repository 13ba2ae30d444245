"""What the operator builds, as golden files (UPDATE_GOLDEN=1 rewrites them), each object
validated against the upstream Kubernetes schemas of two minors with kubernetes-validate."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from agentflow_operator.api import AgentGraphSpec, SecretKeyRef
from agentflow_operator.builders import (
    SECRETS_HASH_ANNOTATION,
    Graph,
    desired_objects,
    manifest,
    name_problems,
    plan_checkpointer,
    secret_refs,
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
    "keda": (example("agentgraph-keda.yaml")["spec"], SHARED),
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


def graph_of(spec: dict, name: str = "g", namespace: str = "agents") -> Graph:
    return Graph(name, namespace, "0000-uid", AgentGraphSpec.model_validate(spec))


def build(case: str) -> list[dict]:
    spec, config = CASES[case]
    graph = graph_of(spec, case)
    plan = plan_checkpointer(graph, config)
    values = {f"{ref.name}/{ref.key}": "value" for ref in secret_refs(graph, plan)}
    dsn = "postgresql://app:secret@postgres:5432/agents" if config.default_dsn_secret else None
    return [manifest(o) for o in desired_objects(graph, config, values, dsn).objects]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    rendered = yaml.safe_dump_all(build(case), sort_keys=False)
    path = GOLDEN / f"{case}.yaml"
    assert_golden(path, rendered)


@pytest.mark.parametrize("minor", KUBERNETES_MINORS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_objects_are_valid_kubernetes(case, minor):
    for obj in build(case):
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # not Kubernetes' own: checked against KEDA's CRDs (test_keda.py)
        kubernetes_validate.validate(obj, minor, strict=True)


def test_the_autoscaler_owns_replicas():
    kinds = {o["kind"]: o for o in build("autoscaled")}
    assert "replicas" not in kinds["Deployment"]["spec"]
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    metrics = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert {m["type"] for m in metrics} == {"Resource", "Pods"}


def test_without_a_checkpointer_a_graph_runs_one_replica_and_says_why():
    desired = desired_objects(graph_of({"graph": "a:b", "replicas": 3}), BARE, {})
    assert desired.replicas == 1
    assert "no checkpointer is configured" in desired.notices[0]
    assert {o.kind for o in desired.objects} == {"Deployment", "Service"}


def pod_template(spec: dict, values: dict | None = None) -> dict:
    graph = graph_of(spec)
    objects = desired_objects(graph, SHARED, values or {}, "dsn").objects
    deployment = next(manifest(o) for o in objects if o.kind == "Deployment")
    return deployment["spec"]["template"]


BASE = {"graph": "a:b", "replicas": 2}


@pytest.mark.parametrize(
    "change",
    [
        {"replicas": 5},
        {"replicas": None, "autoscaling": {"minReplicas": 2, "maxReplicas": 9}},
        {"disruption": {"minAvailable": 1}},
        {"service": {"type": "LoadBalancer", "port": 8080, "annotations": {"a": "b"}}},
        {"rollout": {"maxSurge": 3, "maxUnavailable": 1}},
        {"suspend": True},
    ],
    ids=lambda change: next(iter(change)),
)
def test_what_pods_do_not_see_never_changes_their_template(change):
    """Such edits must not restart pods (and cut their open streams)."""
    changed = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    assert pod_template(changed) == pod_template(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"image": "registry.example/app:3"},
        {"env": [{"name": "X", "value": "1"}]},
        {"resources": {"limits": {"memory": "1Gi"}}},
        {"nodeSelector": {"pool": "agents"}},
        {"workers": 3},
        {"logLevel": "DEBUG"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_what_pods_see_changes_their_template(change):
    assert pod_template({**BASE, **change}) != pod_template(BASE)


def test_secret_values_the_pods_read_change_the_template():
    before = pod_template(BASE, {"jwt/secret": "old"})
    after = pod_template(BASE, {"jwt/secret": "new"})
    assert (
        before["metadata"]["annotations"][SECRETS_HASH_ANNOTATION]
        != (after["metadata"]["annotations"][SECRETS_HASH_ANNOTATION])
    )


def test_the_default_dsn_is_referenced_where_it_lives_and_copied_elsewhere():
    home = graph_of({"graph": "a:b"}, namespace="agentflow-system")
    plan = plan_checkpointer(home, SHARED)
    assert plan.dsn_ref == SecretKeyRef(name="checkpointer", key="dsn")
    kinds = [o.kind for o in desired_objects(home, SHARED, {}, "dsn").objects]
    assert "Secret" not in kinds  # no copy next to the original
    away = graph_of({"graph": "a:b"}, namespace="agents")
    assert plan_checkpointer(away, SHARED).dsn_ref == SecretKeyRef(
        name="g-checkpointer", key="DATABASE_URL"
    )


def test_a_budget_only_where_more_than_one_pod_runs():
    def pdb(spec: dict) -> tuple[dict | None, list[str]]:
        desired = desired_objects(graph_of({"graph": "a:b", **spec}), SHARED, {}, "dsn")
        found = [manifest(o) for o in desired.objects if o.kind == "PodDisruptionBudget"]
        return (found[0] if found else None), desired.notices

    budget, _ = pdb({"replicas": 3})
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    single, notices = pdb({"replicas": 1, "disruption": {"minAvailable": 1}})
    assert single is None
    assert notices == ["no PodDisruptionBudget while a single pod runs: it would block node drains"]
    assert pdb({"replicas": 3, "disruption": {"enabled": False}})[0] is None
    assert pdb({"autoscaling": {"minReplicas": 2, "maxReplicas": 4}})[0] is not None


@pytest.mark.parametrize("name", ["9lives", "a.b", "x" * 64, "Upper", "end-"])
def test_names_that_cannot_name_a_service_are_refused(name):
    assert name_problems(name)
    assert "DNS-1035" in name_problems(name)[0]
    assert name_problems("support-agent") == []
