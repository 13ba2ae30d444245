"""The AgentGraph API (``agentgraphs.agentflow.dev/v1alpha1``): the single source of truth.

The CRD in ``crds/`` is generated from these models (``agentflow-operator crd``); the operator
parses every resource it reconciles with them. Field names are camelCase on the wire, every
field has a description (``kubectl explain`` shows it), and rules spanning several fields are
CEL expressions in ``x-kubernetes-validations`` that the API server enforces.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from kubernetes.client import (
    V1Affinity,
    V1EnvFromSource,
    V1EnvVar,
    V1LocalObjectReference,
    V1ResourceRequirements,
    V1Toleration,
    V1TopologySpreadConstraint,
    V2HorizontalPodAutoscalerBehavior,
)
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "agentflow.dev"
VERSION = "v1alpha1"
KIND = "AgentGraph"
PLURAL = "agentgraphs"
SHORT_NAMES = ["ag"]
API_VERSION = f"{GROUP}/{VERSION}"

UPSTREAM_MARKER = "x-agentflow-upstream"  # crd.py puts the upstream schema in its place


def upstream(definition: str, many: int | None = None) -> WithJsonSchema:
    """The CRD describes this field with the upstream Kubernetes schema of ``definition``
    (see upstream.py); ``many`` makes it a list of at most that many."""
    marker: dict[str, Any] = {UPSTREAM_MARKER: f"io.k8s.api.{definition}"}
    if many is None:
        return WithJsonSchema(marker)
    return WithJsonSchema({"type": "array", "items": marker, "maxItems": many})


_QUANTITY_MAPS = ("limits", "requests")  # ResourceRequirements: resource name -> quantity
_QUANTITY_FIELDS = ("divisor", "tolerance")  # an env var's resourceFieldRef; HPA scaling rules


def _quantities_as_text(value: Any) -> Any:
    """Quantities a user wrote as numbers (``cpu: 1``), as the strings the client models take
    (the API server accepts both and stores the canonical string)."""
    if isinstance(value, list):
        return [_quantities_as_text(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if key in _QUANTITY_MAPS and isinstance(item, dict):
            converted[key] = {name: _as_text(quantity) for name, quantity in item.items()}
        elif key in _QUANTITY_FIELDS:
            converted[key] = _as_text(item)
        else:
            converted[key] = _quantities_as_text(item)
    return converted


def _as_text(quantity: Any) -> Any:
    number = isinstance(quantity, int | float) and not isinstance(quantity, bool)
    return str(quantity) if number else quantity


Quantities = BeforeValidator(_quantities_as_text)

# Kubernetes types the pods get as written, typed by the kubernetes client's models.
EnvVars = Annotated[list[V1EnvVar], Quantities, upstream("core.v1.EnvVar", many=256)]
EnvFrom = Annotated[list[V1EnvFromSource], upstream("core.v1.EnvFromSource", many=64)]
Resources = Annotated[V1ResourceRequirements, Quantities, upstream("core.v1.ResourceRequirements")]
Tolerations = Annotated[list[V1Toleration], upstream("core.v1.Toleration", many=64)]
Affinity = Annotated[V1Affinity, upstream("core.v1.Affinity")]
TopologySpread = Annotated[
    list[V1TopologySpreadConstraint], upstream("core.v1.TopologySpreadConstraint", many=16)
]
PullSecrets = Annotated[
    list[V1LocalObjectReference], upstream("core.v1.LocalObjectReference", many=16)
]
Behavior = Annotated[
    V2HorizontalPodAutoscalerBehavior,
    Quantities,
    upstream("autoscaling.v2.HorizontalPodAutoscalerBehavior"),
]
IntOrString = Annotated[
    int | str,
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]


def cel(*rules: tuple[str, str]) -> ConfigDict:
    """Model config carrying CEL rules (rule, message) for the CRD schema."""
    return ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": rule, "message": message} for rule, message in rules
            ]
        }
    )


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SecretKeyRef(Model):
    name: str = Field(
        min_length=1, max_length=253, description="Name of a Secret in the AgentGraph's namespace."
    )
    key: str = Field(
        min_length=1, max_length=253, description="Key of the value inside that Secret."
    )


class KedaScaling(Model):
    target_runs_per_replica: int = Field(
        5,
        ge=1,
        le=10000,
        description="Background runs (pending and running) per replica to keep: KEDA scales "
        "the graph to ceil(queue / this) replicas, within minReplicas and maxReplicas.",
    )
    polling_interval_seconds: int = Field(
        15, ge=1, le=3600, description="How often KEDA reads the queue (pollingInterval)."
    )
    cooldown_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="How long the queue must stay empty before KEDA scales down to "
        "minReplicas (cooldownPeriod).",
    )


class Autoscaling(Model):
    model_config = (
        cel(
            ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
            (
                "!has(self.keda) || (!has(self.targetCPUUtilizationPercentage) && "
                "!has(self.targetMemoryUtilizationPercentage) && "
                "!has(self.targetInflightRunsPerPod))",
                "keda scales on the graph's run queue: leave the HorizontalPodAutoscaler "
                "targets (CPU, memory, in-flight runs) unset",
            ),
        )
        | Model.model_config
    )
    min_replicas: int = Field(1, ge=1, le=1000, description="Fewest replicas the autoscaler keeps.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas the autoscaler may run.")
    target_cpu_utilization_percentage: int | None = Field(
        None,
        ge=1,
        le=1000,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU use (percent of requests) to keep; 80 when no target is given.",
    )
    target_memory_utilization_percentage: int | None = Field(
        None, ge=1, le=1000, description="Average memory use (percent of requests) to keep."
    )
    target_inflight_runs_per_pod: int | None = Field(
        None,
        ge=1,
        le=100000,
        description="Graph runs in flight per pod to keep (an HPA Pods metric on the runtime's "
        "agentflow_runs_in_flight gauge; needs a custom-metrics adapter such as "
        "prometheus-adapter). Agent pods mostly wait on model APIs, so CPU alone rarely "
        "scales them.",
    )
    behavior: Behavior | None = Field(
        None,
        description="HorizontalPodAutoscaler behavior (scaleUp/scaleDown policies), as in "
        "autoscaling/v2.",
    )
    keda: KedaScaling | None = Field(
        None,
        description="Scale on the graph's background run queue with KEDA (a ScaledObject "
        "reading the shared Postgres) instead of a HorizontalPodAutoscaler on CPU: no "
        "Prometheus needed. Needs KEDA installed and the Postgres checkpointer.",
    )


class Auth(Model):
    jwt_secret_ref: SecretKeyRef = Field(
        description="Secret holding the JWT key (JWT_SECRET_KEY: the HMAC secret, or the PEM "
        "public key for RS/ES algorithms)."
    )
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"] = (
        Field("HS256", description="The one algorithm tokens may be signed with (JWT_ALGORITHM).")
    )


class PostgresCheckpointer(Model):
    dsn_secret_ref: SecretKeyRef = Field(
        description="Secret holding the Postgres DSN (DATABASE_URL)."
    )


class Redis(Model):
    model_config = (
        cel(
            ("has(self.url) != has(self.urlSecretRef)", "set exactly one of url and urlSecretRef"),
        )
        | Model.model_config
    )
    url: str | None = Field(
        None, pattern=r"^rediss?://", description="Redis URL without a password (REDIS_URL)."
    )
    url_secret_ref: SecretKeyRef | None = Field(
        None, description="Secret holding the Redis URL, when it has a password."
    )


class Checkpointer(Model):
    model_config = (
        cel(
            (
                "self.type == 'postgres' || !has(self.postgres)",
                "postgres settings need type: postgres",
            ),
        )
        | Model.model_config
    )
    type: Literal["memory", "postgres"] = Field(
        "postgres",
        description="postgres: threads shared by all replicas (the default); memory: inside one "
        "pod, which forces a single replica.",
    )
    postgres: PostgresCheckpointer | None = Field(
        None, description="Where Postgres is; the operator's default DSN Secret when omitted."
    )
    redis: Redis | None = Field(
        None,
        description="Redis for joining streams and stopping runs across replicas; the "
        "operator's default when omitted.",
    )


class ServiceSpec(Model):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Kubernetes Service type."
    )
    port: int = Field(80, ge=1, le=65535, description="Port the Service listens on.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of the Service."
    )


class Rollout(Model):
    max_surge: IntOrString = Field(
        1, description="Extra pods during a rollout (number or percent)."
    )
    max_unavailable: IntOrString = Field(
        0, description="Pods that may be unavailable during a rollout; 0 keeps open streams served."
    )


class Disruption(Model):
    model_config = (
        cel(
            (
                "!(has(self.minAvailable) && has(self.maxUnavailable))",
                "set at most one of minAvailable and maxUnavailable",
            ),
        )
        | Model.model_config
    )
    enabled: bool = Field(
        True,
        description="Whether to keep a PodDisruptionBudget at all (as CloudNativePG's "
        "enablePDB): turn it off where voluntary disruptions must never wait, such as test "
        "clusters.",
    )
    min_available: IntOrString | None = Field(
        None, description="Pods that must stay up during voluntary disruptions."
    )
    max_unavailable: IntOrString | None = Field(
        None,
        description="Pods that may be down during voluntary disruptions (1 when neither this "
        "nor minAvailable is set).",
    )


class AgentGraphSpec(Model):
    graph: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
        max_length=200,
        description="The compiled graph to serve, as module:attribute (AGENTFLOW_GRAPH).",
    )
    image: str | None = Field(
        None,
        description="Runtime image with the graph's code; the operator's default when omitted.",
    )
    replicas: int = Field(
        1,
        ge=0,
        le=1000,
        description="Pods to run when autoscaling is not set (what `kubectl scale` changes). "
        "With autoscaling the autoscaler decides and this is not used.",
    )
    autoscaling: Autoscaling | None = Field(
        None, description="Run a HorizontalPodAutoscaler instead of a fixed replica count."
    )
    workers: int = Field(1, ge=1, le=64, description="Uvicorn worker processes per pod.")
    mode: Literal["development", "production"] = Field(
        "production", description="Runtime mode (MODE)."
    )
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] | None = Field(
        None, description="LOG_LEVEL of the runtime."
    )
    origins: list[str] | None = Field(
        None, description="CORS origins browsers may call from (ORIGINS)."
    )
    auth: Auth | None = Field(None, description="JWT authentication of the graph's API.")
    checkpointer: Checkpointer | None = Field(
        None, description="Where threads live; the operator's shared Postgres when omitted."
    )
    env: EnvVars = Field(
        default_factory=list,
        description="Extra environment variables (EnvVar), after the managed ones; a name the "
        "operator sets itself is refused.",
    )
    env_from: EnvFrom = Field(
        default_factory=list, description="Extra environment sources (EnvFromSource)."
    )
    resources: Resources | None = Field(
        None, description="Container resources (ResourceRequirements)."
    )
    service: ServiceSpec = Field(
        default_factory=ServiceSpec, description="The Service in front of the pods."
    )
    rollout: Rollout = Field(default_factory=Rollout, description="Rolling update limits.")
    disruption: Disruption | None = Field(
        None,
        description="PodDisruptionBudget, kept while more than one pod runs (a budget on a "
        "single pod would block node drains); maxUnavailable 1 when omitted.",
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: Tolerations = Field(default_factory=list, description="Pod tolerations.")
    affinity: Affinity | None = Field(None, description="Pod affinity.")
    topology_spread_constraints: TopologySpread = Field(
        default_factory=list, description="Pod topologySpreadConstraints."
    )
    service_account_name: str | None = Field(
        None, description="ServiceAccount of the pods; without one, no API token is mounted."
    )
    image_pull_secrets: PullSecrets = Field(
        default_factory=list, description="Secrets to pull the image."
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra pod annotations."
    )
    pod_labels: dict[str, str] = Field(default_factory=dict, description="Extra pod labels.")
    suspend: bool = Field(False, description="Scale to zero without deleting anything.")


class Condition(Model):
    type: str = Field(description="Accepted or Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word for programs.")
    message: str = Field(description="A sentence for people.")
    observed_generation: int | None = Field(
        None, description="The generation this condition describes."
    )
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")


class AgentGraphStatus(Model):
    observed_generation: int | None = Field(None, description="The generation last reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Accepted and Ready.")
    replicas: int | None = Field(None, description="Pods of the current Deployment.")
    ready_replicas: int | None = Field(None, description="Ready pods.")
    selector: str | None = Field(
        None, description="Label selector of the pods (for the scale subresource)."
    )
    url: str | None = Field(None, description="In-cluster URL of the graph's API.")
    image: str | None = Field(None, description="Image the pods run.")
