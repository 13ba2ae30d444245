"""Pure builders: an AgentGraph (and the operator's config) in, Kubernetes objects out.

Nothing here talks to the API server; handlers fetch what is needed (Secret contents for the
config hash, the default DSN) and apply what these functions return. Golden files of their
output (tests/operator/golden/) make every change to generated objects visible in review.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from agentflow_operator.api import API_VERSION, KIND, AgentGraphSpec, SecretKeyRef
from agentflow_operator.config import OperatorConfig

PORT = 8000
CONTAINER = "runtime"
CONFIG_HASH_ANNOTATION = "agentflow.dev/config-hash"
MANAGED_BY = "agentflow-operator"
PRE_STOP_S = 5  # endpoints controllers and proxies drop the pod before it stops accepting
DEFAULT_CPU_TARGET = 80
RUNS_IN_FLIGHT_METRIC = "agentflow_runs_in_flight"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Graph:
    """An AgentGraph as the builders need it."""

    name: str
    namespace: str
    uid: str
    spec: AgentGraphSpec
    generation: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class CheckpointerPlan:
    """Where the graph's threads live, decided from its spec and the operator's defaults."""

    type: str
    dsn_ref: SecretKeyRef | None = None
    redis_url: str | None = None
    redis_ref: SecretKeyRef | None = None
    mirror_default_dsn: bool = False  # copy the operator's DSN Secret next to the graph
    notice: str | None = None  # why the plan is not what one might expect


@dataclass(frozen=True)
class Desired:
    """Everything a graph should own, plus what the status should say about the plan."""

    objects: list[Manifest]
    replicas: int | None
    notices: list[str] = field(default_factory=list)


def names(graph: Graph) -> dict[str, str]:
    return {
        "workload": graph.name,
        "checkpointer_secret": f"{graph.name}-checkpointer",
    }


def selector_labels(graph: Graph) -> dict[str, str]:
    return {"app.kubernetes.io/name": "agentflow-runtime", "app.kubernetes.io/instance": graph.name}


def labels(graph: Graph) -> dict[str, str]:
    return {
        **selector_labels(graph),
        "app.kubernetes.io/component": "graph-runtime",
        "app.kubernetes.io/part-of": "agentflow",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_string(graph: Graph) -> str:
    return ",".join(f"{k}={v}" for k, v in selector_labels(graph).items())


def metadata(graph: Graph, name: str, **extra: Any) -> Manifest:
    return {
        "name": name,
        "namespace": graph.namespace,
        "labels": labels(graph),
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": graph.name,
                "uid": graph.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        **extra,
    }


def plan_checkpointer(spec: AgentGraphSpec, config: OperatorConfig) -> CheckpointerPlan:
    chosen = spec.checkpointer
    redis = chosen.redis if chosen else None
    redis_url = redis.url if redis else config.default_redis_url
    redis_ref = redis.url_secret_ref if redis else None
    if chosen is not None and chosen.type == "memory":
        return CheckpointerPlan(
            "memory",
            notice="checkpointer type memory keeps threads in one pod, so it runs a single replica",
        )
    if chosen is not None and chosen.postgres is not None:
        return CheckpointerPlan("postgres", chosen.postgres.dsn_secret_ref, redis_url, redis_ref)
    if config.default_dsn_secret:
        return CheckpointerPlan("postgres", None, redis_url, redis_ref, mirror_default_dsn=True)
    return CheckpointerPlan(
        "memory",
        notice="no checkpointer is configured and the operator has no default Postgres "
        "(AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET), so threads stay in one pod and it runs a "
        "single replica",
    )


def desired_replicas(spec: AgentGraphSpec, plan: CheckpointerPlan) -> int | None:
    """The Deployment's replicas, or None to leave them to the HorizontalPodAutoscaler."""
    if spec.suspend:
        return 0
    if plan.type == "memory":
        return 1
    if spec.autoscaling is not None:
        return None
    return 1 if spec.replicas is None else spec.replicas


def _secret_env(name: str, ref: SecretKeyRef) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def runtime_env(graph: Graph, plan: CheckpointerPlan, config: OperatorConfig) -> list[Manifest]:
    spec = graph.spec
    env: list[Manifest] = [
        {"name": "AGENTFLOW_GRAPH", "value": spec.graph},
        {"name": "AGENTFLOW_GRAPH_ID", "value": graph.full_name},
        {"name": "MODE", "value": spec.mode},
        {"name": "CHECKPOINTER", "value": plan.type},
        {"name": "AGENTFLOW_SHUTDOWN_GRACE_S", "value": str(config.shutdown_grace_s)},
    ]
    if spec.log_level:
        env.append({"name": "LOG_LEVEL", "value": spec.log_level})
    if spec.origins is not None:
        env.append({"name": "ORIGINS", "value": ",".join(spec.origins)})
    if spec.auth is not None:
        env.append(_secret_env("JWT_SECRET_KEY", spec.auth.jwt_secret_ref))
        env.append({"name": "JWT_ALGORITHM", "value": spec.auth.algorithm})
    if plan.type == "postgres":
        dsn_ref = plan.dsn_ref
        if plan.mirror_default_dsn:
            dsn_ref = SecretKeyRef(name=names(graph)["checkpointer_secret"], key="DATABASE_URL")
        assert dsn_ref is not None
        env.append(_secret_env("DATABASE_URL", dsn_ref))
        if plan.redis_ref is not None:
            env.append(_secret_env("REDIS_URL", plan.redis_ref))
        elif plan.redis_url:
            env.append({"name": "REDIS_URL", "value": plan.redis_url})
    return env + list(spec.env)


def config_hash(graph: Graph, secret_data: dict[str, dict[str, str]]) -> str:
    """Changes whenever the pods must restart: the spec, or the CONTENTS of a referenced
    Secret (so rotating a JWT key or a DSN rolls the pods, which read them at start-up)."""
    material = json.dumps(
        {"spec": graph.spec.model_dump(mode="json", by_alias=True), "secrets": secret_data},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _probe(path: str, period_s: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_deployment(
    graph: Graph, config: OperatorConfig, plan: CheckpointerPlan, hash_: str
) -> Manifest:
    spec = graph.spec
    replicas = desired_replicas(spec, plan)
    container: Manifest = {
        "name": CONTAINER,
        "image": spec.image or config.default_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["agentflow", "api"],
        "args": ["--host", "0.0.0.0", "--port", str(PORT), "--workers", str(spec.workers)],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": runtime_env(graph, plan, config),
        "livenessProbe": _probe("/healthz", period_s=10, failures=3),
        "readinessProbe": _probe("/readyz", period_s=5, failures=3),
        # Up to two minutes to start (imports, migrations) before liveness applies.
        "startupProbe": _probe("/healthz", period_s=2, failures=60),
        # Let Services and proxies stop routing here before the server begins to drain.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_S)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if spec.env_from:
        container["envFrom"] = list(spec.env_from)
    if spec.resources is not None:
        container["resources"] = spec.resources
    pod_spec: Manifest = {
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # No API token unless a service account was asked for: graphs rarely need the API.
        "automountServiceAccountToken": spec.service_account_name is not None,
        # Streams get the runtime's grace, plus the preStop pause, plus a margin to exit.
        "terminationGracePeriodSeconds": config.shutdown_grace_s + PRE_STOP_S + 10,
    }
    optional = {
        "serviceAccountName": spec.service_account_name,
        "nodeSelector": spec.node_selector or None,
        "tolerations": spec.tolerations or None,
        "affinity": spec.affinity,
        "topologySpreadConstraints": spec.topology_spread_constraints or None,
        "imagePullSecrets": [ref.model_dump() for ref in spec.image_pull_secrets] or None,
    }
    pod_spec.update({key: value for key, value in optional.items() if value is not None})
    deployment_spec: Manifest = {
        "selector": {"matchLabels": selector_labels(graph)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxSurge": spec.rollout.max_surge,
                "maxUnavailable": spec.rollout.max_unavailable,
            },
        },
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {
                "labels": {**spec.pod_labels, **labels(graph)},
                "annotations": {**spec.pod_annotations, CONFIG_HASH_ANNOTATION: hash_},
            },
            "spec": pod_spec,
        },
    }
    if replicas is not None:  # never fight the autoscaler: it owns replicas when it exists
        deployment_spec = {"replicas": replicas, **deployment_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(graph, names(graph)["workload"]),
        "spec": deployment_spec,
    }


def build_service(graph: Graph) -> Manifest:
    service = graph.spec.service
    meta = metadata(graph, names(graph)["workload"])
    if service.annotations:
        meta["annotations"] = dict(service.annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": service.type,
            "selector": selector_labels(graph),
            "ports": [
                {"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def build_hpa(graph: Graph) -> Manifest | None:
    scaling = graph.spec.autoscaling
    if scaling is None or graph.spec.suspend:
        return None
    metrics: list[Manifest] = []
    cpu = scaling.target_cpu_utilization_percentage
    if (
        cpu is None
        and scaling.target_memory_utilization_percentage is None
        and scaling.target_inflight_runs_per_pod is None
    ):
        cpu = DEFAULT_CPU_TARGET
    for resource, target in (
        ("cpu", cpu),
        ("memory", scaling.target_memory_utilization_percentage),
    ):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": resource,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            )
    if scaling.target_inflight_runs_per_pod is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": RUNS_IN_FLIGHT_METRIC},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": str(scaling.target_inflight_runs_per_pod),
                    },
                },
            }
        )
    spec: Manifest = {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": names(graph)["workload"],
        },
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
    }
    if scaling.behavior is not None:
        spec["behavior"] = scaling.behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(graph, names(graph)["workload"]),
        "spec": spec,
    }


def build_pdb(graph: Graph, replicas: int | None) -> Manifest | None:
    spec = graph.spec
    scaling = spec.autoscaling
    several = (replicas or 0) > 1 or (
        replicas is None and scaling is not None and scaling.min_replicas > 1
    )
    if spec.suspend or (spec.disruption is None and not several):
        return None
    budget: Manifest = {"maxUnavailable": 1}
    if spec.disruption is not None:
        budget = spec.disruption.model_dump(by_alias=True, exclude_none=True)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(graph, names(graph)["workload"]),
        "spec": {**budget, "selector": {"matchLabels": selector_labels(graph)}},
    }


def build_checkpointer_secret(graph: Graph, dsn: str) -> Manifest:
    """A copy of the operator's default DSN in the graph's namespace (pods can only read
    Secrets of their own namespace); it goes away with the graph."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(graph, names(graph)["checkpointer_secret"]),
        "type": "Opaque",
        "stringData": {"DATABASE_URL": dsn},
    }


def desired_objects(
    graph: Graph,
    config: OperatorConfig,
    secret_data: dict[str, dict[str, str]],
    default_dsn: str | None = None,
) -> Desired:
    """All objects the graph should own. ``secret_data`` holds the contents of the Secrets the
    pods read (for the config hash); ``default_dsn`` the operator's DSN when it is mirrored."""
    plan = plan_checkpointer(graph.spec, config)
    replicas = desired_replicas(graph.spec, plan)
    objects: list[Manifest] = []
    if plan.mirror_default_dsn:
        assert default_dsn is not None
        objects.append(build_checkpointer_secret(graph, default_dsn))
    objects.append(build_deployment(graph, config, plan, config_hash(graph, secret_data)))
    objects.append(build_service(graph))
    if plan.type != "memory":
        objects += [o for o in (build_hpa(graph), build_pdb(graph, replicas)) if o is not None]
    return Desired(objects, replicas, [plan.notice] if plan.notice else [])


def service_url(graph: Graph) -> str:
    port = graph.spec.service.port
    return f"http://{names(graph)['workload']}.{graph.namespace}.svc.cluster.local:{port}"


def secret_refs(spec: AgentGraphSpec, config: OperatorConfig) -> list[SecretKeyRef]:
    """The Secret keys (in the graph's namespace) whose contents the pods read."""
    plan = plan_checkpointer(spec, config)
    refs = [spec.auth.jwt_secret_ref if spec.auth else None, plan.redis_ref]
    if not plan.mirror_default_dsn:
        refs.append(plan.dsn_ref)
    return [ref for ref in refs if ref is not None]


def referenced_secrets(spec: AgentGraphSpec, config: OperatorConfig) -> list[str]:
    """Names of the Secrets (in the graph's namespace) whose contents the pods read."""
    return sorted({ref.name for ref in secret_refs(spec, config)})
