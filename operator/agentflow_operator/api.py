"""The AgentGraph API (``agentgraphs.agentflow.dev/v1alpha1``): the single source of truth.

The CRD in ``crds/`` is generated from these models (``agentflow-operator crd``); the operator
parses every resource it reconciles with them. Field names are camelCase on the wire, every
field has a description (``kubectl explain`` shows it), and rules spanning several fields are
CEL expressions in ``x-kubernetes-validations`` that the API server enforces.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "agentflow.dev"
VERSION = "v1alpha1"
KIND = "AgentGraph"
PLURAL = "agentgraphs"
SHORT_NAMES = ["ag"]
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes types the operator passes through untouched (their schemas are the API server's).
FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
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


class Autoscaling(Model):
    model_config = (
        cel(
            ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
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
    behavior: FreeForm | None = Field(
        None,
        description="HorizontalPodAutoscaler behavior (scaleUp/scaleDown policies), as in "
        "autoscaling/v2.",
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
                "has(self.minAvailable) != has(self.maxUnavailable)",
                "set exactly one of minAvailable and maxUnavailable",
            ),
        )
        | Model.model_config
    )
    min_available: IntOrString | None = Field(
        None, description="Pods that must stay up during voluntary disruptions."
    )
    max_unavailable: IntOrString | None = Field(
        None, description="Pods that may be down during voluntary disruptions."
    )


class LocalObjectReference(Model):
    name: str = Field(min_length=1, description="Name of the referenced object.")


class AgentGraphSpec(Model):
    model_config = (
        cel(
            (
                "!(has(self.replicas) && has(self.autoscaling))",
                "set replicas or autoscaling, not both",
            ),
        )
        | Model.model_config
    )
    graph: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
        max_length=200,
        description="The compiled graph to serve, as module:attribute (AGENTFLOW_GRAPH).",
    )
    image: str | None = Field(
        None,
        description="Runtime image with the graph's code; the operator's default when omitted.",
    )
    replicas: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Fixed number of pods (when autoscaling is not set); 1 when omitted.",
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
    env: list[FreeForm] = Field(
        default_factory=list,
        description="Extra environment variables (EnvVar), after the managed ones.",
    )
    env_from: list[FreeForm] = Field(
        default_factory=list, description="Extra environment sources (EnvFromSource)."
    )
    resources: FreeForm | None = Field(
        None, description="Container resources (ResourceRequirements)."
    )
    service: ServiceSpec = Field(
        default_factory=ServiceSpec, description="The Service in front of the pods."
    )
    rollout: Rollout = Field(default_factory=Rollout, description="Rolling update limits.")
    disruption: Disruption | None = Field(
        None,
        description="PodDisruptionBudget; maxUnavailable 1 when omitted and more than one "
        "replica runs.",
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[FreeForm] = Field(default_factory=list, description="Pod tolerations.")
    affinity: FreeForm | None = Field(None, description="Pod affinity.")
    topology_spread_constraints: list[FreeForm] = Field(
        default_factory=list, description="Pod topologySpreadConstraints."
    )
    service_account_name: str | None = Field(
        None, description="ServiceAccount of the pods; without one, no API token is mounted."
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
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
