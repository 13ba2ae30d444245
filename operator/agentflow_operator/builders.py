"""Pure builders: an AgentGraph (and the operator's config) in, typed Kubernetes objects out.

Objects are the kubernetes client's models (``V1Deployment``...), so a misspelt or missing field
fails type checking and construction instead of the API server's validation. Nothing here talks
to the API server: reconcile.py reads what is needed (Secret contents, the default DSN) and
applies what these functions return. Golden files of their output (tests/operator/golden/)
make every change to generated objects visible in review.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import (
    ApiClient,
    V1Capabilities,
    V1Container,
    V1ContainerPort,
    V1Deployment,
    V1DeploymentSpec,
    V1DeploymentStrategy,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1ExecAction,
    V1HTTPGetAction,
    V1LabelSelector,
    V1Lifecycle,
    V1LifecycleHandler,
    V1ObjectMeta,
    V1OwnerReference,
    V1PodDisruptionBudget,
    V1PodDisruptionBudgetSpec,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1Probe,
    V1RollingUpdateDeployment,
    V1SeccompProfile,
    V1Secret,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
    V1Volume,
    V1VolumeMount,
    V2CrossVersionObjectReference,
    V2HorizontalPodAutoscaler,
    V2HorizontalPodAutoscalerSpec,
    V2MetricIdentifier,
    V2MetricSpec,
    V2MetricTarget,
    V2PodsMetricSource,
    V2ResourceMetricSource,
)
from pydantic import BaseModel

from agentflow.runstore.depth import queue_depth_sql
from agentflow.runtime.settings import ENV_NAMES, HMAC_ALGORITHMS
from agentflow_operator.api import API_VERSION, KIND, AgentGraphSpec, SecretKeyRef
from agentflow_operator.config import OperatorConfig
from agentflow_operator.keda import (
    KEDA_API_VERSION,
    QUEUE_TRIGGER,
    Advanced,
    AuthenticationRef,
    HorizontalPodAutoscalerConfig,
    ScaledObjectSpec,
    ScaleTargetRef,
    SecretTargetRef,
    Trigger,
    TriggerAuthenticationSpec,
)

PORT = 8000
CONTAINER = "runtime"
SECRETS_HASH_ANNOTATION = "agentflow.dev/secrets-hash"
MANAGED_BY = "agentflow-operator"
WATCHED_LABEL = "agentflow.dev/watched"  # Secrets the operator may read (and roll pods for)
PRE_STOP_S = 5  # endpoints controllers and proxies drop the pod before it stops accepting
DEFAULT_CPU_TARGET = 80
RUNS_IN_FLIGHT_METRIC = "agentflow_runs_in_flight"
DEFAULT_DSN_KEY = "DATABASE_URL"  # the key of the DSN in the copies the operator makes
# A Service name (and so an AgentGraph's): a DNS-1035 label.
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

Manifest = dict[str, Any]


@dataclass(frozen=True)
class CustomObject:
    """An object of a kind the kubernetes client has no model for (KEDA's): its spec is one of
    our typed models (keda.py)."""

    api_version: str
    kind: str
    metadata: V1ObjectMeta
    spec: BaseModel


KubeObject = (
    V1Deployment
    | V1Service
    | V2HorizontalPodAutoscaler
    | V1PodDisruptionBudget
    | V1Secret
    | CustomObject
)


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
    dsn_ref: SecretKeyRef | None = None  # the Secret key the pods read DATABASE_URL from
    redis_url: str | None = None
    redis_ref: SecretKeyRef | None = None
    uses_default_dsn: bool = False  # the operator's shared DSN (read by the operator itself)
    copies_default_dsn: bool = False  # ...copied next to the graph (another namespace)
    notice: str | None = None  # why the plan is not what one might expect


@dataclass(frozen=True)
class Desired:
    """Everything a graph should own, plus what the status should say about the plan."""

    objects: list[KubeObject]
    replicas: int | None
    notices: list[str] = field(default_factory=list)


def manifest(obj: KubeObject) -> Manifest:
    """The object as the JSON the API server takes (unset fields left out)."""
    if isinstance(obj, CustomObject):
        return {
            "apiVersion": obj.api_version,
            "kind": obj.kind,
            "metadata": ApiClient().sanitize_for_serialization(obj.metadata),
            "spec": obj.spec.model_dump(by_alias=True, exclude_none=True),
        }
    result: Manifest = ApiClient().sanitize_for_serialization(obj)
    return result


# ---------------------------------------------------------------------- names and labels


def names(graph: Graph) -> dict[str, str]:
    return {"workload": graph.name, "checkpointer_secret": f"{graph.name}-checkpointer"}


def name_problems(name: str) -> list[str]:
    """Why ``name`` cannot name an AgentGraph's objects (it becomes a Service name and a label
    value, so it must be a DNS-1035 label)."""
    if len(name) <= 63 and DNS_1035.fullmatch(name):
        return []
    return [
        f'the name "{name}" cannot name the graph\'s Service: Service names are DNS-1035 labels '
        "(at most 63 characters: lowercase letters, digits and '-', starting with a letter and "
        "ending with a letter or a digit); recreate the AgentGraph under such a name"
    ]


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


def metadata(
    graph: Graph,
    name: str,
    annotations: dict[str, str] | None = None,
    more_labels: dict[str, str] | None = None,
) -> V1ObjectMeta:
    return V1ObjectMeta(
        name=name,
        namespace=graph.namespace,
        labels={**labels(graph), **(more_labels or {})},
        annotations=annotations or None,
        owner_references=[
            V1OwnerReference(
                api_version=API_VERSION,
                kind=KIND,
                name=graph.name,
                uid=graph.uid,
                controller=True,
                block_owner_deletion=True,
            )
        ],
    )


# ---------------------------------------------------------------------- decisions


def plan_checkpointer(graph: Graph, config: OperatorConfig) -> CheckpointerPlan:
    chosen = graph.spec.checkpointer
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
        home, name = config.default_dsn_secret.split("/", 1)
        if home == graph.namespace:  # pods can read it where it is: no copy
            ref = SecretKeyRef(name=name, key=config.default_dsn_secret_key)
            return CheckpointerPlan("postgres", ref, redis_url, redis_ref, uses_default_dsn=True)
        copy = SecretKeyRef(name=names(graph)["checkpointer_secret"], key=DEFAULT_DSN_KEY)
        return CheckpointerPlan(
            "postgres", copy, redis_url, redis_ref, uses_default_dsn=True, copies_default_dsn=True
        )
    return CheckpointerPlan(
        "memory",
        notice="no checkpointer is configured and the operator has no default Postgres "
        "(AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET), so threads stay in one pod and it runs a "
        "single replica",
    )


def deployment_replicas(spec: AgentGraphSpec, plan: CheckpointerPlan) -> int | None:
    """The Deployment's replicas, or None to leave them to the HorizontalPodAutoscaler."""
    if spec.suspend:
        return 0
    if plan.type == "memory":
        return 1
    if spec.autoscaling is not None:
        return None
    return spec.replicas


def secret_refs(graph: Graph, plan: CheckpointerPlan) -> list[SecretKeyRef]:
    """The keys of the graph's own Secrets that the pods read (the operator's default DSN is
    read separately)."""
    spec = graph.spec
    refs = [spec.auth.jwt_secret_ref if spec.auth else None, plan.redis_ref]
    if not plan.uses_default_dsn:
        refs.append(plan.dsn_ref)
    return [ref for ref in refs if ref is not None]


def secrets_hash(values: dict[str, str]) -> str:
    """Changes whenever a value the pods read from a Secret changes (pods read them at start,
    so rotating a JWT key or a DSN must roll them); nothing else goes in: the pod template
    itself changes, and rolls the pods, when anything else the pods see does."""
    material = json.dumps(values, sort_keys=True).encode()
    return hashlib.sha256(material).hexdigest()[:16]


# ---------------------------------------------------------------------- the pods


def _env(setting: str, value: str) -> V1EnvVar:
    return V1EnvVar(name=ENV_NAMES[setting], value=value)


def _secret_env(setting: str, ref: SecretKeyRef) -> V1EnvVar:
    selector = V1SecretKeySelector(name=ref.name, key=ref.key)
    return V1EnvVar(name=ENV_NAMES[setting], value_from=V1EnvVarSource(secret_key_ref=selector))


def runtime_env(graph: Graph, plan: CheckpointerPlan, config: OperatorConfig) -> list[V1EnvVar]:
    """The managed environment, named by the runtime's own settings (ENV_NAMES)."""
    spec = graph.spec
    env = [
        _env("graph", spec.graph),
        _env("graph_id", graph.full_name),
        _env("mode", spec.mode),
        _env("checkpointer", plan.type),
        _env("shutdown_grace_s", str(config.shutdown_grace_s)),
    ]
    if spec.log_level:
        env.append(_env("log_level", spec.log_level))
    if spec.origins is not None:
        env.append(_env("origins", ",".join(spec.origins)))
    if spec.auth is not None:
        hmac = spec.auth.algorithm in HMAC_ALGORITHMS
        key = "jwt_secret_key" if hmac else "jwt_public_key"
        env += [
            _secret_env(key, spec.auth.jwt_secret_ref),
            _env("jwt_algorithm", spec.auth.algorithm),
        ]
    if plan.type == "postgres":
        assert plan.dsn_ref is not None
        env.append(_secret_env("database_url", plan.dsn_ref))
        if plan.redis_ref is not None:
            env.append(_secret_env("redis_url", plan.redis_ref))
        elif plan.redis_url:
            env.append(_env("redis_url", plan.redis_url))
    return env


def managed_env_names(graph: Graph, plan: CheckpointerPlan, config: OperatorConfig) -> set[str]:
    return {variable.name for variable in runtime_env(graph, plan, config)}


def _sleep(seconds: int) -> V1LifecycleHandler:
    # The client's field is ``var_exec``, but only its alias ``_exec`` sets it (the field
    # name is silently ignored): a golden file shows the command.
    return V1LifecycleHandler(_exec=V1ExecAction(command=["sleep", str(seconds)]))  # type: ignore[call-arg]


def _probe(path: str, period_s: int, failures: int) -> V1Probe:
    return V1Probe(
        http_get=V1HTTPGetAction(path=path, port="http"),
        period_seconds=period_s,
        timeout_seconds=2,
        failure_threshold=failures,
    )


def build_pod_template(
    graph: Graph, config: OperatorConfig, plan: CheckpointerPlan, hash_: str
) -> V1PodTemplateSpec:
    spec = graph.spec
    container = V1Container(
        name=CONTAINER,
        image=spec.image or config.default_image,
        image_pull_policy="IfNotPresent",
        command=["agentflow", "api"],
        args=["--host", "0.0.0.0", "--port", str(PORT), "--workers", str(spec.workers)],
        ports=[V1ContainerPort(name="http", container_port=PORT, protocol="TCP")],
        env=runtime_env(graph, plan, config) + list(spec.env),
        env_from=list(spec.env_from) or None,
        resources=spec.resources,
        liveness_probe=_probe("/healthz", period_s=10, failures=3),
        readiness_probe=_probe("/readyz", period_s=5, failures=3),
        # Up to two minutes to start (imports, migrations) before liveness applies.
        startup_probe=_probe("/healthz", period_s=2, failures=60),
        # Let Services and proxies stop routing here before the server begins to drain.
        lifecycle=V1Lifecycle(pre_stop=_sleep(PRE_STOP_S)),
        security_context=V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    pod = V1PodSpec(
        containers=[container],
        volumes=[V1Volume(name="tmp", empty_dir=V1EmptyDirVolumeSource())],
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            run_as_group=10001,
            fs_group=10001,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        # No API token unless a service account was asked for: graphs rarely need the API.
        automount_service_account_token=spec.service_account_name is not None,
        # Streams get the runtime's grace, plus the preStop pause, plus a margin to exit.
        termination_grace_period_seconds=config.shutdown_grace_s + PRE_STOP_S + 10,
        service_account_name=spec.service_account_name,
        node_selector=spec.node_selector or None,
        tolerations=list(spec.tolerations) or None,
        affinity=spec.affinity,
        topology_spread_constraints=list(spec.topology_spread_constraints) or None,
        image_pull_secrets=list(spec.image_pull_secrets) or None,
    )
    return V1PodTemplateSpec(
        metadata=V1ObjectMeta(
            labels={**spec.pod_labels, **labels(graph)},
            annotations={**spec.pod_annotations, SECRETS_HASH_ANNOTATION: hash_},
        ),
        spec=pod,
    )


def build_deployment(
    graph: Graph, config: OperatorConfig, plan: CheckpointerPlan, hash_: str
) -> V1Deployment:
    spec = graph.spec
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=metadata(graph, names(graph)["workload"]),
        spec=V1DeploymentSpec(
            # None leaves replicas to the autoscaler: the operator then never writes them.
            replicas=deployment_replicas(spec, plan),
            selector=V1LabelSelector(match_labels=selector_labels(graph)),
            strategy=V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=V1RollingUpdateDeployment(
                    max_surge=spec.rollout.max_surge, max_unavailable=spec.rollout.max_unavailable
                ),
            ),
            progress_deadline_seconds=600,
            revision_history_limit=5,
            template=build_pod_template(graph, config, plan, hash_),
        ),
    )


# ---------------------------------------------------------------------- around the pods


def build_service(graph: Graph) -> V1Service:
    service = graph.spec.service
    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=metadata(graph, names(graph)["workload"], dict(service.annotations)),
        spec=V1ServiceSpec(
            type=service.type,
            selector=selector_labels(graph),
            ports=[
                V1ServicePort(name="http", port=service.port, target_port="http", protocol="TCP")
            ],
        ),
    )


def build_hpa(graph: Graph) -> V2HorizontalPodAutoscaler | None:
    scaling = graph.spec.autoscaling
    if scaling is None or scaling.keda is not None or graph.spec.suspend:
        return None
    cpu = scaling.target_cpu_utilization_percentage
    if (
        cpu is None
        and scaling.target_memory_utilization_percentage is None
        and scaling.target_inflight_runs_per_pod is None
    ):
        cpu = DEFAULT_CPU_TARGET
    metrics = [
        V2MetricSpec(
            type="Resource",
            resource=V2ResourceMetricSource(
                name=resource,
                target=V2MetricTarget(type="Utilization", average_utilization=target),
            ),
        )
        for resource, target in (
            ("cpu", cpu),
            ("memory", scaling.target_memory_utilization_percentage),
        )
        if target is not None
    ]
    if scaling.target_inflight_runs_per_pod is not None:
        metrics.append(
            V2MetricSpec(
                type="Pods",
                pods=V2PodsMetricSource(
                    metric=V2MetricIdentifier(name=RUNS_IN_FLIGHT_METRIC),
                    target=V2MetricTarget(
                        type="AverageValue", average_value=str(scaling.target_inflight_runs_per_pod)
                    ),
                ),
            )
        )
    return V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=metadata(graph, names(graph)["workload"]),
        spec=V2HorizontalPodAutoscalerSpec(
            scale_target_ref=V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name=names(graph)["workload"]
            ),
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.max_replicas,
            metrics=metrics,
            behavior=scaling.behavior,
        ),
    )


def build_keda_objects(graph: Graph, plan: CheckpointerPlan) -> list[KubeObject]:
    """With ``autoscaling.keda``: a ScaledObject scaling the Deployment on the graph's queue
    depth (pending and running background runs, read by KEDA's PostgreSQL scaler from the
    graph's own database) and the TriggerAuthentication giving that scaler the graph's DSN
    Secret. KEDA makes and owns the HorizontalPodAutoscaler itself."""
    scaling = graph.spec.autoscaling
    if scaling is None or scaling.keda is None or graph.spec.suspend:
        return []
    assert plan.dsn_ref is not None  # reconcile refuses keda without Postgres
    name = names(graph)["workload"]
    behavior = ApiClient().sanitize_for_serialization(scaling.behavior)
    scaled = ScaledObjectSpec(
        scale_target_ref=ScaleTargetRef(name=name),
        polling_interval=scaling.keda.polling_interval_seconds,
        cooldown_period=scaling.keda.cooldown_seconds,
        min_replica_count=scaling.min_replicas,
        max_replica_count=scaling.max_replicas,
        advanced=None
        if behavior is None
        else Advanced(
            horizontal_pod_autoscaler_config=HorizontalPodAutoscalerConfig(behavior=behavior)
        ),
        triggers=[
            Trigger(
                type="postgresql",
                name=QUEUE_TRIGGER,
                metadata={
                    "query": queue_depth_sql(graph.full_name),  # the pods' AGENTFLOW_GRAPH_ID
                    "targetQueryValue": str(scaling.keda.target_runs_per_replica),
                    "activationTargetQueryValue": "0",
                },
                authentication_ref=AuthenticationRef(name=name),
            )
        ],
    )
    authentication = TriggerAuthenticationSpec(
        secret_target_ref=[
            SecretTargetRef(parameter="connection", name=plan.dsn_ref.name, key=plan.dsn_ref.key)
        ]
    )
    return [
        CustomObject(KEDA_API_VERSION, "ScaledObject", metadata(graph, name), scaled),
        CustomObject(
            KEDA_API_VERSION, "TriggerAuthentication", metadata(graph, name), authentication
        ),
    ]


def fewest_pods(spec: AgentGraphSpec, plan: CheckpointerPlan) -> int:
    """The fewest pods the graph runs while it is not suspended."""
    replicas = deployment_replicas(spec, plan)
    if replicas is not None:
        return replicas
    assert spec.autoscaling is not None
    return spec.autoscaling.min_replicas


def build_pdb(
    graph: Graph, plan: CheckpointerPlan
) -> tuple[V1PodDisruptionBudget | None, str | None]:
    """The disruption budget, or None and why not (when one was asked for)."""
    spec = graph.spec
    disruption = spec.disruption
    if spec.suspend or plan.type == "memory" or (disruption is not None and not disruption.enabled):
        return None, None
    if fewest_pods(spec, plan) <= 1:
        why = (
            "no PodDisruptionBudget while a single pod runs: it would block node drains"
            if disruption is not None
            else None
        )
        return None, why
    budget = V1PodDisruptionBudgetSpec(
        selector=V1LabelSelector(match_labels=selector_labels(graph)),
        # A pod that is not ready serves nothing: evicting it must never wait on the budget
        # (without this a crash-looping pod blocks every node drain).
        unhealthy_pod_eviction_policy="AlwaysAllow",
    )
    if disruption is not None and disruption.min_available is not None:
        budget.min_available = disruption.min_available
    else:
        budget.max_unavailable = (
            disruption.max_unavailable
            if disruption is not None and disruption.max_unavailable is not None
            else 1
        )
    pdb = V1PodDisruptionBudget(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        metadata=metadata(graph, names(graph)["workload"]),
        spec=budget,
    )
    return pdb, None


def build_checkpointer_secret(graph: Graph, dsn: str) -> V1Secret:
    """A copy of the operator's default DSN in the graph's namespace (pods can only read
    Secrets of their own namespace); it goes away with the graph."""
    encoded = base64.b64encode(dsn.encode()).decode()
    return V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=metadata(
            graph, names(graph)["checkpointer_secret"], more_labels={WATCHED_LABEL: "true"}
        ),
        type="Opaque",
        data={DEFAULT_DSN_KEY: encoded},
    )


def desired_objects(
    graph: Graph,
    config: OperatorConfig,
    secret_values: dict[str, str],
    default_dsn: str | None = None,
) -> Desired:
    """All objects the graph should own. ``secret_values`` holds the Secret values the pods
    read (for the hash); ``default_dsn`` the operator's DSN when the graph uses it."""
    plan = plan_checkpointer(graph, config)
    objects: list[KubeObject] = []
    notices = [plan.notice] if plan.notice else []
    if plan.copies_default_dsn:
        assert default_dsn is not None
        objects.append(build_checkpointer_secret(graph, default_dsn))
    objects.append(build_deployment(graph, config, plan, secrets_hash(secret_values)))
    objects.append(build_service(graph))
    if plan.type != "memory":
        hpa = build_hpa(graph)
        pdb, why_not = build_pdb(graph, plan)
        objects += [o for o in (hpa, pdb) if o is not None]
        objects += build_keda_objects(graph, plan)
        notices += [why_not] if why_not else []
    return Desired(objects, deployment_replicas(graph.spec, plan), notices)


def service_url(graph: Graph) -> str:
    port = graph.spec.service.port
    return f"http://{names(graph)['workload']}.{graph.namespace}.svc.cluster.local:{port}"
