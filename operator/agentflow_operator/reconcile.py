"""Reconciliation: make the cluster hold what the builders say, and report it in the status.

Plain functions over the official kubernetes client (its DynamicClient, so objects stay the
dicts the builders make). Kopf handlers call :func:`reconcile` and :func:`status_of`;
tests can call them directly. Level-based and idempotent: every call compares the objects the
graph should own with what exists, creates what is missing, patches only objects whose fields
that we set differ (so server defaults cause no update loop), deletes owned objects that are no
longer wanted, and never touches objects it does not own.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from pydantic import ValidationError

from agentflow_operator.api import API_VERSION, KIND, AgentGraphSpec
from agentflow_operator.builders import (
    MANAGED_BY,
    Graph,
    Manifest,
    desired_objects,
    plan_checkpointer,
    referenced_secrets,
    secret_refs,
    selector_string,
    service_url,
)
from agentflow_operator.config import OperatorConfig
from agentflow_operator.status import Verdict, condition, readiness

logger = logging.getLogger("agentflow_operator")

MERGE_PATCH = "application/merge-patch+json"
# Kinds a graph may own; owned objects of these kinds that are no longer desired are deleted.
OWNED_KINDS = [
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
]


class NotAccepted(Exception):
    """The spec cannot be applied as it is; the message says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Outcome:
    accepted: Verdict
    deployment: Manifest | None
    notices: list[str]


class Cluster:
    """The few verbs reconciliation needs, on dicts."""

    def __init__(self, api_client: ApiClient) -> None:
        # The client caches API discovery in a file, by default one per API host in /tmp: shared
        # by every process that talks to that host, and outliving them (a restarted container
        # keeps its /tmp volume; tests reuse ports). A stale file names APIs the server no
        # longer serves, so each process discovers afresh into a file of its own.
        cache = Path(tempfile.gettempdir()) / f"agentflow-operator-discovery-{os.getpid()}.json"
        cache.unlink(missing_ok=True)
        self.client = DynamicClient(api_client, cache_file=str(cache))

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.client.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        try:
            found = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        result: Manifest = found.to_dict()
        return result

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[Manifest]:
        found = self._resource(api_version, kind).get(namespace=namespace, label_selector=selector)
        return [item.to_dict() for item in found.items]

    def create(self, obj: Manifest) -> Manifest:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        created: Manifest = resource.create(
            body=obj, namespace=obj["metadata"]["namespace"]
        ).to_dict()
        return created

    def patch(self, obj: Manifest) -> Manifest:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        patched: Manifest = resource.patch(
            body=obj, name=meta["name"], namespace=meta["namespace"], content_type=MERGE_PATCH
        ).to_dict()
        return patched

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            self._resource(api_version, kind).delete(name=name, namespace=namespace)

    def ensure(self, obj: Manifest) -> bool:
        """Create ``obj`` unless it exists; False when its kind is not served (no CRD)."""
        try:
            resource = self._resource(obj["apiVersion"], obj["kind"])
        except ResourceNotFoundError:
            return False
        try:
            resource.create(body=obj, namespace=obj["metadata"].get("namespace"))
        except ApiException as error:
            if error.status != 409:
                raise
        return True

    def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        resource = self._resource(API_VERSION, KIND)
        resource.status.patch(
            body={"status": status}, name=name, namespace=namespace, content_type=MERGE_PATCH
        )


def covers(existing: Any, desired: Any) -> bool:
    """Whether ``existing`` already has every field of ``desired`` (extra fields, such as
    server defaults, do not count as a difference)."""
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(
            covers(existing.get(k), v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(existing, list)
            and len(existing) == len(desired)
            and all(covers(e, d) for e, d in zip(existing, desired, strict=True))
        )
    return bool(existing == desired)


def _secret_as_data(obj: Manifest) -> Manifest:
    """Secrets come back with base64 ``data``; compare what we write the same way."""
    data = {k: base64.b64encode(v.encode()).decode() for k, v in obj.get("stringData", {}).items()}
    return {**{k: v for k, v in obj.items() if k != "stringData"}, "data": data}


def read_secret(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    secret = cluster.get("v1", "Secret", namespace, name)
    if secret is None:
        raise NotAccepted("SecretNotFound", f"Secret {namespace}/{name} does not exist")
    return {
        k: base64.b64decode(v).decode(errors="replace")
        for k, v in (secret.get("data") or {}).items()
    }


def _owned_by(obj: Manifest, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def reconcile(cluster: Cluster, body: Manifest, config: OperatorConfig) -> Outcome:
    """Bring the graph's owned objects to what its spec asks. Raises :class:`NotAccepted`
    (having changed nothing) when the spec cannot be applied."""
    meta = body["metadata"]
    try:
        spec = AgentGraphSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise NotAccepted("InvalidSpec", f"the spec is invalid: {error}") from None
    graph = Graph(
        meta["name"], meta["namespace"], meta["uid"], spec, int(meta.get("generation", 1))
    )
    secrets = {
        name: read_secret(cluster, graph.namespace, name)
        for name in referenced_secrets(spec, config)
    }
    for ref in secret_refs(spec, config):
        if ref.key not in secrets.get(ref.name, {}):
            raise NotAccepted(
                "SecretKeyNotFound", f"Secret {graph.namespace}/{ref.name} has no key '{ref.key}'"
            )
    default_dsn = None
    if plan_checkpointer(spec, config).mirror_default_dsn:
        home, name = (config.default_dsn_secret or "").split("/", 1)
        values = read_secret(cluster, home, name)
        if config.default_dsn_secret_key not in values:
            raise NotAccepted(
                "SecretKeyNotFound",
                f"the operator's DSN Secret {home}/{name} has no key "
                f"'{config.default_dsn_secret_key}'",
            )
        default_dsn = values[config.default_dsn_secret_key]
        secrets["(default DSN)"] = {"dsn": default_dsn}
    desired = desired_objects(graph, config, secrets, default_dsn)

    live = {obj["kind"]: _apply(cluster, obj, graph) for obj in desired.objects}
    selector = f"app.kubernetes.io/instance={graph.name},app.kubernetes.io/managed-by={MANAGED_BY}"
    for api_version, kind in unwanted_kinds(desired.objects):
        for existing in cluster.list(api_version, kind, graph.namespace, selector):
            name = existing["metadata"]["name"]
            if _owned_by(existing, graph.uid):
                logger.info("deleting %s %s/%s: no longer wanted", kind, graph.namespace, name)
                cluster.delete(api_version, kind, graph.namespace, name)

    deployment = live.get("Deployment")
    message = "the Deployment, Service and their companions are in place"
    return Outcome(Verdict("True", "Reconciled", message), deployment, desired.notices)


def unwanted_kinds(desired: list[Manifest]) -> list[tuple[str, str]]:
    """The owned kinds of which the graph wants nothing now, where leftovers may be (autoscaling
    turned off...). A graph owns at most one object of each kind, under a name the builders fix,
    so a kind it still wants holds nothing to prune: listing it would be a wasted request."""
    wanted = {obj["kind"] for obj in desired}
    return [(api_version, kind) for api_version, kind in OWNED_KINDS if kind not in wanted]


def _apply(cluster: Cluster, desired: Manifest, graph: Graph) -> Manifest | None:
    """Create or patch one object; the object as the API server now holds it."""
    meta = desired["metadata"]
    existing = cluster.get(desired["apiVersion"], desired["kind"], meta["namespace"], meta["name"])
    if existing is None:
        logger.info("creating %s %s/%s", desired["kind"], meta["namespace"], meta["name"])
        try:
            return cluster.create(desired)
        except ApiException as error:
            if error.status != 409:  # created meanwhile (a restart, a peer): next round compares
                raise
        # Read what the other writer made, for the status.
        return cluster.get(desired["apiVersion"], desired["kind"], meta["namespace"], meta["name"])
    if not _owned_by(existing, graph.uid):
        raise NotAccepted(
            "NameTaken",
            f"a {desired['kind']} named {meta['name']} already exists in {meta['namespace']} and "
            "is not owned by this AgentGraph; rename one of them",
        )
    comparable = _secret_as_data(desired) if desired["kind"] == "Secret" else desired
    if not covers(existing, comparable):
        logger.info(
            "updating %s %s/%s (drift or a new spec)",
            desired["kind"],
            meta["namespace"],
            meta["name"],
        )
        return cluster.patch(comparable)
    return existing


def status_of(
    body: Manifest, outcome: Outcome | None, failure: NotAccepted | None, config: OperatorConfig
) -> Manifest:
    """The status to write, from what reconciliation found (or why it was refused)."""
    meta = body["metadata"]
    generation = int(meta.get("generation", 1))
    previous = (body.get("status") or {}).get("conditions") or []
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec_raw = body.get("spec") or {}
    if failure is not None:
        accepted = Verdict("False", failure.reason, failure.message)
    else:
        assert outcome is not None
        message = "; ".join([outcome.accepted.message, *outcome.notices])
        accepted = Verdict("True", outcome.accepted.reason, message)
    deployment = outcome.deployment if outcome else None
    ready = readiness(deployment, bool(spec_raw.get("suspend")))
    status: Manifest = {
        "observedGeneration": generation,
        "conditions": [
            condition("Accepted", accepted, generation, previous, now),
            condition("Ready", ready, generation, previous, now),
        ],
    }
    if deployment is not None:
        deployment_status = deployment.get("status") or {}
        status["replicas"] = int(deployment_status.get("replicas") or 0)
        status["readyReplicas"] = int(deployment_status.get("readyReplicas") or 0)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        status["image"] = containers[0]["image"]
    try:
        spec = AgentGraphSpec.model_validate(spec_raw)
        graph = Graph(meta["name"], meta["namespace"], meta["uid"], spec, generation)
        status["selector"] = selector_string(graph)
        status["url"] = service_url(graph)
    except ValidationError:
        pass
    return status


def without_times(status: Manifest) -> Manifest:
    """A status with transition times removed, to tell whether writing it changes anything."""
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions", [])
    ]
    return {**status, "conditions": conditions}
