"""Reconciliation: make the cluster hold what the builders say, and say so in the status.

Level-based and idempotent, and written for a real API server:

* every owned object is **server-side applied** by the field manager ``agentflow-operator``
  with ``force``: a field the operator stops setting disappears from the object, fields other
  managers own (the autoscaler's ``replicas``) are left alone;
* an object is applied only when it may differ: when what the operator would apply changed
  since its last apply (a digest), or when the object's managedFields show that someone took
  a field from the operator (an edit: drift). Both are read from the watch caches, so a graph
  in its desired state costs no API request at all;
* owned objects no longer wanted are deleted; objects of the same names that the graph does
  not own are never touched (the graph is refused with ``NameTaken``);
* ``Deployment.spec.replicas`` passes to the autoscaler through a handover manager, never
  through an apply without replicas that would reset them to 1.

Failures are our errors (errors.py): :class:`Refused` for what takes a change to fix,
:class:`ApiUnavailable` for the API server's own failures.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from agentflow_operator.api import AgentGraphSpec, SecretKeyRef
from agentflow_operator.apiserver import FIELD_MANAGER, HANDOVER_MANAGER, ApiServer
from agentflow_operator.builders import (
    WATCHED_LABEL,
    Desired,
    Graph,
    Manifest,
    desired_objects,
    managed_env_names,
    manifest,
    name_problems,
    names,
    plan_checkpointer,
    secret_refs,
    selector_string,
    service_url,
)
from agentflow_operator.caches import ObjectKey, Observed, World, applied_fields
from agentflow_operator.config import OperatorConfig
from agentflow_operator.errors import Refused
from agentflow_operator.keda import KEDA_API_VERSION
from agentflow_operator.status import Verdict, build_status, comparable

logger = logging.getLogger("agentflow_operator")

# Kinds a graph may own, each under a name the builders fix (see ``names``).
OWNED_KINDS = {
    "Secret": ("v1", "checkpointer_secret"),
    "Deployment": ("apps/v1", "workload"),
    "Service": ("v1", "workload"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "workload"),
    "PodDisruptionBudget": ("policy/v1", "workload"),
    "ScaledObject": (KEDA_API_VERSION, "workload"),
    "TriggerAuthentication": (KEDA_API_VERSION, "workload"),
}
# The finalizer operator versions before 0.2 put on every graph; no cleanup needs one.
LEGACY_FINALIZER = "agentflow.dev/operator"


@dataclass(frozen=True)
class Applied:
    """What the operator last applied to one object, and what the API server made of it."""

    digest: str
    resource_version: str
    fields: Manifest


class AppliedMemory:
    """The operator's own applies, per object (in memory: after a restart, every object is
    applied once more, which the API server turns into no change)."""

    def __init__(self) -> None:
        self._applied: dict[ObjectKey, Applied] = {}
        self._lock = threading.Lock()

    def get(self, key: ObjectKey) -> Applied | None:
        return self._applied.get(key)

    def remember(self, key: ObjectKey, applied: Applied) -> None:
        with self._lock:
            self._applied[key] = applied

    def forget(self, key: ObjectKey) -> None:
        with self._lock:
            self._applied.pop(key, None)

    def is_echo(self, key: ObjectKey, resource_version: str) -> bool:
        """Whether a watch event is our own apply coming back."""
        seen = self._applied.get(key)
        return seen is not None and seen.resource_version == resource_version


@dataclass
class Outcome:
    """What a reconcile did: accepted (or refused, and why) and the Deployment it left."""

    accepted: Verdict
    deployment: Manifest | None
    status: Manifest  # the status to write
    refused: Refused | None = None
    wrote: bool = False  # applied or deleted an object


def digest(obj: Manifest) -> str:
    """Changes whenever what would be applied changes (compared within one process only)."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


PARSED_KEPT = 4096  # graphs whose parsed spec is kept (a few rounds read each version)
_parsed: dict[tuple[str, str], Graph | Refused] = {}


def parse(body: Manifest) -> Graph:
    """The graph of an AgentGraph body, or :class:`Refused` (``InvalidSpec``). Each version of
    a graph is parsed once: the watch, the queue and reconciliation all read it."""
    meta = body["metadata"]
    version = (str(meta.get("uid")), str(meta.get("resourceVersion")))
    found = _parsed.get(version)
    if found is None:
        found = _parse(body)
        if len(_parsed) >= PARSED_KEPT:
            _parsed.clear()
        _parsed[version] = found
    if isinstance(found, Refused):  # a fresh one each time: a raised exception keeps its frames
        raise Refused(found.reason, found.message)
    return found


def _parse(body: Manifest) -> Graph | Refused:
    meta = body["metadata"]
    try:
        spec = AgentGraphSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return Refused("InvalidSpec", f"the spec is invalid: {problems}")
    return Graph(meta["name"], meta["namespace"], meta["uid"], spec, int(meta.get("generation", 1)))


class Reconciler:
    def __init__(
        self, api: ApiServer, world: World, config: OperatorConfig, memory: AppliedMemory
    ) -> None:
        self.api, self.world, self.config, self.memory = api, world, config, memory

    # ------------------------------------------------------------------ one graph

    def reconcile(self, body: Manifest) -> Outcome:
        """Bring one graph's objects to its spec; never raises :class:`Refused` (it becomes
        the outcome), raises :class:`ApiUnavailable` when the API server fails."""
        if LEGACY_FINALIZER in (body["metadata"].get("finalizers") or []):
            self.api.remove_finalizer(body, LEGACY_FINALIZER)
        deployment = self._cached_deployment(body)
        wrote = False
        try:
            graph = self._checked(body)
            desired = self._desired(graph)
            for obj in desired.objects:
                live = self._sync(graph, obj, desired)
                wrote = wrote or live is not None
                if live is not None and live["kind"] == "Deployment":
                    deployment = live
            wrote = self._prune(graph, {str(obj.kind) for obj in desired.objects}) or wrote
        except Refused as refusal:
            accepted = Verdict("False", refusal.reason, refusal.message)
            status = self._status(body, accepted, deployment)
            return Outcome(accepted, deployment, status, refusal, wrote)
        message = "; ".join(
            ["the Deployment, Service and their companions are in place", *desired.notices]
        )
        accepted = Verdict("True", "Reconciled", message)
        return Outcome(accepted, deployment, self._status(body, accepted, deployment), None, wrote)

    def inputs(self, body: Manifest) -> tuple[Any, ...] | None:
        """Everything a reconcile of ``body`` reads, as versions: when they are those of a
        round that found nothing to do, this round has nothing to do either (so a resync of
        a graph at rest costs no more than these lookups). None when they cannot be told."""
        try:
            graph = parse(body)
        except Refused:
            return None
        plan = plan_checkpointer(graph, self.config)
        owned = []
        for kind, (_, role) in OWNED_KINDS.items():
            live = self.world.owned(kind, graph.namespace, names(graph)[role])
            owned.append(None if live is None else live.resource_version)
        secrets = []
        for ref in secret_refs(graph, plan):
            secret = self.world.secret(graph.namespace, ref.name)
            secrets.append(None if secret is None else secret.resource_version)
        try:
            dsn = self.world.default_dsn() if plan.uses_default_dsn else None
        except Refused:
            return None  # the reconcile reports it
        return (body["metadata"].get("resourceVersion"), *owned, *secrets, dsn)

    def _checked(self, body: Manifest) -> Graph:
        graph = parse(body)
        problems = name_problems(graph.name)
        if problems:
            raise Refused("InvalidName", problems[0])
        plan = plan_checkpointer(graph, self.config)
        scaling = graph.spec.autoscaling
        if scaling is not None and scaling.keda is not None and plan.type != "postgres":
            raise Refused(
                "InvalidSpec",
                "autoscaling.keda scales on the graph's run queue, which lives in Postgres: it "
                "needs the Postgres checkpointer (checkpointer.postgres, or the operator's "
                "default DSN)",
            )
        taken = sorted(
            managed_env_names(graph, plan, self.config) & {str(e.name) for e in graph.spec.env}
        )
        if taken:
            raise Refused(
                "InvalidSpec",
                f"spec.env sets {', '.join(taken)}, which the operator sets itself: use the "
                "spec's own fields (mode, logLevel, origins, auth, checkpointer...) instead",
            )
        return graph

    def _desired(self, graph: Graph) -> Desired:
        plan = plan_checkpointer(graph, self.config)
        values = {
            f"{graph.namespace}/{ref.name}/{ref.key}": self._secret_value(graph.namespace, ref)
            for ref in secret_refs(graph, plan)
        }
        default_dsn = self.world.default_dsn() if plan.uses_default_dsn else None
        if default_dsn is not None:
            values["(default DSN)"] = default_dsn
        return desired_objects(graph, self.config, values, default_dsn)

    def _secret_value(self, namespace: str, ref: SecretKeyRef) -> str:
        secret = self.world.secret(namespace, ref.name)
        if secret is None:
            raise self._unreadable(namespace, ref.name)
        value = secret.secret_value(ref.key)
        if value is None:
            raise Refused(
                "SecretKeyNotFound", f"Secret {namespace}/{ref.name} has no key '{ref.key}'"
            )
        return value

    def _unreadable(self, namespace: str, name: str) -> Refused:
        """Why a Secret is not in the cache: absent, or not labelled for the operator."""
        if self.api.find("v1", "Secret", namespace, name) is None:
            return Refused("SecretNotFound", f"Secret {namespace}/{name} does not exist")
        return Refused(
            "SecretNotWatched",
            f"Secret {namespace}/{name} is not labelled {WATCHED_LABEL}=true, so the operator "
            f"may not read it (it watches only Secrets with that label, and rolls the pods when "
            f"they change): kubectl label secret -n {namespace} {name} {WATCHED_LABEL}=true",
        )

    # ------------------------------------------------------------------ objects

    def _sync(self, graph: Graph, obj: Any, desired: Desired) -> Manifest | None:
        """Apply one object if it may differ from what is there; the object as the API server
        holds it when it was applied (None when it was already right)."""
        body = manifest(obj)
        key: ObjectKey = (body["kind"], graph.namespace, body["metadata"]["name"])
        live = self.world.owned(*key)
        wanted = digest(body)
        if self._in_sync(key, wanted, live):
            return None
        if live is None:
            self._check_name_free(graph, body)
        elif live.owner_uid != graph.uid:
            raise self._name_taken(body)
        if body["kind"] == "Deployment" and desired.replicas is None and live is not None:
            self._hand_over_replicas(graph, live)
        applied = self.api.apply(body)
        self.memory.remember(
            key,
            Applied(wanted, applied["metadata"]["resourceVersion"], applied_fields(applied)),
        )
        return applied

    def _in_sync(self, key: ObjectKey, wanted: str, live: Observed | None) -> bool:
        seen = self.memory.get(key)
        if seen is None or seen.digest != wanted:
            return False
        if live is None:
            return True  # our apply has not come back through the watch yet
        return live.resource_version == seen.resource_version or live.our_fields == seen.fields

    def _check_name_free(self, graph: Graph, body: Manifest) -> None:
        """Before the first apply of an object the caches do not hold: is the name taken by an
        object the graph does not own? (Applying would merge into it and take it over.)"""
        meta = body["metadata"]
        existing = self.api.find(body["apiVersion"], body["kind"], graph.namespace, meta["name"])
        if existing is None:
            return
        owners = existing["metadata"].get("ownerReferences") or []
        if not any(ref.get("uid") == graph.uid for ref in owners):
            raise self._name_taken(body)

    @staticmethod
    def _name_taken(body: Manifest) -> Refused:
        meta = body["metadata"]
        return Refused(
            "NameTaken",
            f"a {body['kind']} named {meta['name']} already exists in {meta['namespace']} and "
            "is not owned by this AgentGraph; rename one of them",
        )

    def _hand_over_replicas(self, graph: Graph, live: Observed) -> None:
        """Autoscaling on: if the operator still owns replicas (it set them while autoscaling
        was off, or 0 while suspended), another manager takes them first, so that dropping them
        from the operator's apply keeps them instead of resetting them to 1; from 0 they start
        at minReplicas, since the autoscaler never scales a workload up from zero."""
        if FIELD_MANAGER not in live.replicas_owners:
            return
        assert graph.spec.autoscaling is not None
        replicas = int(live.body.get("spec", {}).get("replicas", 1))
        start = replicas if replicas > 0 else graph.spec.autoscaling.min_replicas
        handover = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": live.name, "namespace": live.namespace},
            "spec": {"replicas": start},
        }
        self.api.apply(handover, manager=HANDOVER_MANAGER, force=True)

    def _prune(self, graph: Graph, wanted: set[str]) -> bool:
        """Delete what the graph owns and no longer wants: what the caches show, and what the
        operator applied itself (its own apply may not have reached the caches yet, and its
        echo is not a reason to look again). Whether it deleted anything."""
        deleted = False
        for kind, (api_version, role) in OWNED_KINDS.items():
            if kind in wanted:
                continue
            key: ObjectKey = (kind, graph.namespace, names(graph)[role])
            live = self.world.owned(*key)
            ours = live.owner_uid == graph.uid if live is not None else False
            if ours or self.memory.get(key) is not None:
                logger.info("deleting %s %s/%s: no longer wanted", *key)
                self.api.delete(api_version, kind, graph.namespace, key[2])
                self.memory.forget(key)
                deleted = True
        return deleted

    def _cached_deployment(self, body: Manifest) -> Manifest | None:
        meta = body["metadata"]
        live = self.world.owned("Deployment", meta["namespace"], meta["name"])
        if live is None or live.owner_uid != meta.get("uid"):
            return None
        return live.body

    # ------------------------------------------------------------------ status

    def _status(self, body: Manifest, accepted: Verdict, deployment: Manifest | None) -> Manifest:
        meta = body["metadata"]
        spec = body.get("spec") or {}
        selector = url = None
        try:
            graph = parse(body)
            selector, url = selector_string(graph), service_url(graph)
        except Refused:
            pass
        status = build_status(
            generation=int(meta.get("generation", 1)),
            previous=(body.get("status") or {}).get("conditions") or [],
            accepted=accepted,
            deployment=deployment,
            suspended=bool(spec.get("suspend")),
            now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            selector=selector,
            url=url,
        )
        result: Manifest = status.model_dump(by_alias=True, exclude_none=True)
        return result

    def run(self, body: Manifest) -> tuple[Outcome, Manifest | None]:
        """One round: reconcile, then write the status; the outcome and the graph as written
        (None when the status said nothing new)."""
        outcome = self.reconcile(body)
        return outcome, self.write_status(body, outcome)

    def write_status(self, body: Manifest, outcome: Outcome) -> Manifest | None:
        """Apply the outcome's status if it says something new; the graph as written."""
        if comparable(outcome.status) == comparable(dict(body.get("status") or {})):
            return None
        meta = body["metadata"]
        return self.api.apply_status(meta["namespace"], meta["name"], outcome.status)
