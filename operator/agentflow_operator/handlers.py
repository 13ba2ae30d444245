"""Kopf handlers: thin glue between the watches and the plain code of reconcile.py.

kopf watches (with server-side label selectors: only the objects the operator owns and the
Secrets labelled for it ever reach this process) and keeps them in its indices, which are the
operator's caches. Every event that may concern a graph only puts the graph's key in the work
queue (workqueue.py); the queue's workers reconcile it against the caches. Nothing here adds a
finalizer: owner references already take everything along when a graph is deleted, so deleting
a graph never waits for the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import kopf
import orjson
from kubernetes import config as kube_config
from kubernetes.client import ApiClient

from agentflow_operator.api import GROUP, PLURAL, VERSION
from agentflow_operator.apiserver import ApiServer
from agentflow_operator.builders import (
    MANAGED_BY,
    WATCHED_LABEL,
    CheckpointerPlan,
    Graph,
    plan_checkpointer,
    secret_refs,
)
from agentflow_operator.caches import Observed, observe, single
from agentflow_operator.config import OperatorConfig
from agentflow_operator.errors import ApiUnavailable, Refused
from agentflow_operator.reconcile import OWNED_KINDS, AppliedMemory, Reconciler, parse
from agentflow_operator.workqueue import WorkQueue

logger = logging.getLogger("agentflow_operator")

GraphKey = tuple[str, str]  # namespace, name
MANAGED_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}
MANAGED = f"app.kubernetes.io/managed-by={MANAGED_BY}"
WATCHED = f"{WATCHED_LABEL}=true"
# How long kopf waits to see its own patch come back through a watch before it takes the
# version it has for current (kopf's 5 s is short under a burst of 1,000 graphs).
CONSISTENCY_S = 30
OWNED_RESOURCES = [
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    # KEDA's: watched once its CRDs exist (kopf notices CRDs appearing).
    ("keda.sh", "v1alpha1", "scaledobjects"),
    ("keda.sh", "v1alpha1", "triggerauthentications"),
]


@dataclass(frozen=True)
class StatusWrite:
    """The operator's last status write of a graph, and what it had reconciled."""

    resource_version: str
    essence: tuple[Any, ...]

    def echoed_by(self, graph: dict[str, Any]) -> bool:
        """Whether a watch event of ``graph`` only brings this write back. The version alone
        does not say it: kopf delivers only the last of quick events, so a change someone made
        just before the write may arrive as the write's own version."""
        version = graph["metadata"].get("resourceVersion")
        return version == self.resource_version and _essence(graph) == self.essence


class Operator:
    """What the handlers share, built once at start-up (kopf's memo)."""

    def __init__(self, config: OperatorConfig, indices: dict[str, Any]) -> None:
        self.config = config
        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:  # outside a cluster: KUBECONFIG (read now, not
            kube_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # at import)
        self.api_client = ApiClient()
        self.api = ApiServer(self.api_client)
        self.indices = indices
        self.memory = AppliedMemory()
        self.reconciler = Reconciler(self.api, self, config, self.memory)
        self.queue: WorkQueue[GraphKey] = WorkQueue(
            self._work, config.workers, config.retry_base_s, config.retry_max_s
        )
        self.status_writes: dict[GraphKey, StatusWrite] = {}  # to tell our echoes
        self.settled: dict[GraphKey, tuple[Any, ...] | None] = {}  # inputs of rounds at rest
        self._dsn: str | None = None
        self._dsn_error: Refused | None = None
        self._dsn_lock = threading.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ the World (caches)

    def owned(self, kind: str, namespace: str, name: str) -> Observed | None:
        index = "watched_secrets" if kind == "Secret" else "owned"
        found = single(self.indices[index].get((kind, namespace, name)))
        return found

    def secret(self, namespace: str, name: str) -> Observed | None:
        return single(self.indices["watched_secrets"].get(("Secret", namespace, name)))

    def default_dsn(self) -> str:
        """The operator's shared DSN, read every ``dsn_refresh_s`` by :meth:`refresh_dsn`."""
        with self._dsn_lock:
            if self._dsn is None and self._dsn_error is None:
                self._read_dsn()
            if self._dsn_error is not None:
                raise self._dsn_error
            assert self._dsn is not None
            return self._dsn

    def _read_dsn(self) -> None:
        home, name = (self.config.default_dsn_secret or "").split("/", 1)
        key = self.config.default_dsn_secret_key
        secret = self.api.get("v1", "Secret", home, name)
        self._dsn, self._dsn_error = None, None
        if secret is None:
            self._dsn_error = Refused(
                "SecretNotFound", f"the operator's DSN Secret {home}/{name} does not exist"
            )
        elif key not in (secret.get("data") or {}):
            self._dsn_error = Refused(
                "SecretKeyNotFound", f"the operator's DSN Secret {home}/{name} has no key '{key}'"
            )
        else:
            self._dsn = observe(secret, keep_body=True).secret_value(key)

    def refresh_dsn(self) -> bool:
        """Read the default DSN again; whether it changed."""
        with self._dsn_lock:
            before = (self._dsn, self._dsn_error and self._dsn_error.message)
            self._read_dsn()
            return before != (self._dsn, self._dsn_error and self._dsn_error.message)

    # ------------------------------------------------------------------ reconciling

    def graph(self, key: GraphKey) -> dict[str, Any] | None:
        found: Iterable[dict[str, Any]] = self.indices["graphs"].get(key) or ()
        return next(iter(found), None)

    def _graphs(self, wanted: Callable[[Graph, CheckpointerPlan], bool]) -> set[GraphKey]:
        """The graphs (with a readable spec) that ``wanted`` picks, from the cache."""
        keys = set()
        for key in list(self.indices["graphs"]):
            body = self.graph(key)
            try:
                graph = parse(body) if body is not None else None
            except Refused:
                continue
            if graph is not None and wanted(graph, plan_checkpointer(graph, self.config)):
                keys.add(key)
        return keys

    async def _work(self, key: GraphKey) -> bool:
        body = self.graph(key)
        if body is None:
            return True  # deleted meanwhile: nothing to do
        try:
            inputs = self.reconciler.inputs(body)
            if inputs is not None and self.settled.get(key) == inputs:
                return True  # exactly as when a round last found nothing to do
            outcome, written = await asyncio.to_thread(self.reconciler.run, body)
        except ApiUnavailable as failure:
            logger.warning("%s/%s: %s (retrying)", *key, failure.message)
            return False
        if written is None and not outcome.wrote and outcome.refused is None:
            self.settled[key] = inputs  # at rest: later rounds with these inputs are skipped
        if written is not None:
            self.status_writes[key] = StatusWrite(
                written["metadata"]["resourceVersion"], _essence(body)
            )
        if outcome.refused is not None:
            refused = outcome.refused
            kopf.warn(_body(body), reason=refused.reason, message=refused.message)
            return False
        return True

    def graphs_reading(self, namespace: str, secret: str) -> set[GraphKey]:
        return self._graphs(
            lambda graph, plan: (
                graph.namespace == namespace
                and any(ref.name == secret for ref in secret_refs(graph, plan))
            )
        )

    def start(self) -> None:
        """Start the workers and loops, from kopf's first resource handler: by then its indices
        (the caches) are filled, and tasks made here may post Events (kopf's posting context)."""
        if self.tasks:
            return
        self.tasks = [
            asyncio.create_task(self.queue.run()),
            asyncio.create_task(_resync(self)),
        ]
        if self.config.default_dsn_secret:
            self.tasks.append(asyncio.create_task(_watch_default_dsn(self)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def graphs_using_default_dsn(self) -> set[GraphKey]:
        return self._graphs(lambda graph, plan: plan.uses_default_dsn)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf keeps each object's last handled "essence" to tell changes apart for its change
    handlers; this operator has none (it reconciles levels, not diffs), so it keeps nothing
    (kopf's default deep-copies every object of every event for it)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    config = OperatorConfig()
    operator = Operator(config, {name: kwargs[name] for name in INDICES})
    memo.operator = operator
    # Server-side selection: nothing else of these kinds ever streams into the operator.
    for group, _, plural in OWNED_RESOURCES:
        settings.watching.label_selectors[group, plural] = MANAGED
    settings.watching.label_selectors["", "secrets"] = WATCHED
    settings.watching.chunk_size = config.list_chunk_size  # paginated lists
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.persistence.consistency_timeout = CONSISTENCY_S
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.peering.name = config.peering
    settings.peering.mandatory = False  # without the peering CRDs, one replica runs alone
    # Peers with equal priorities all freeze: each replica draws its own, the highest acts.
    settings.peering.priority = (
        config.priority if config.priority is not None else secrets.randbelow(2**31)
    )
    settings.posting.level = logging.WARNING  # Events for refusals, not for every success
    _ensure_peering(operator)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    await memo.operator.stop()


def _ensure_peering(operator: Operator) -> None:
    """Create the kopf peering object(s) replicas meet in (a Helm chart that templates the
    peering CRD cannot create them in the same release)."""
    config = operator.config
    if config.watch_namespaces:
        peerings = [
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": config.peering, "namespace": ns},
            }
            for ns in config.watch_namespaces
        ]
    else:
        peerings = [
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "ClusterKopfPeering",
                "metadata": {"name": config.peering},
            }
        ]
    for peering in peerings:
        if not operator.api.create_if_missing(peering):
            logger.warning("kopf's peering CRDs are not installed: replicas cannot coordinate")
            return


async def _resync(operator: Operator) -> None:
    """Every graph, every ``resync_s``: a safety net for missed events (free when in sync)."""
    while True:
        await asyncio.sleep(operator.config.resync_s)
        keys = list(operator.indices["graphs"])
        for key in keys:
            operator.queue.add(key)
        logger.info("resync: %d graphs to compare with the caches", len(keys))


async def _watch_default_dsn(operator: Operator) -> None:
    """Read the default DSN Secret every ``dsn_refresh_s``; a change rolls the graphs using it."""
    while True:
        await asyncio.sleep(operator.config.dsn_refresh_s)
        try:
            changed = await asyncio.to_thread(operator.refresh_dsn)
        except ApiUnavailable as failure:
            logger.warning("reading the default DSN: %s", failure.message)
            continue
        if changed:
            for key in operator.graphs_using_default_dsn():
                operator.queue.add(key)


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf connects with the credentials the kubernetes client loaded."""
    configuration = memo.operator.api_client.configuration
    scheme, _space, token = (configuration.api_key.get("authorization") or "").partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        scheme=scheme or None,
        token=token or None,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


# ---------------------------------------------------------------------- caches (kopf indices)

INDICES = ("graphs", "owned", "watched_secrets")
# The index functions are coroutines though they never wait: kopf runs a plain function in its
# thread pool, a thread hop for every watch event (an eighth of the operator's time under a
# burst of new graphs).


@kopf.index(GROUP, VERSION, PLURAL)
async def graphs(
    body: kopf.Body, name: str, namespace: str | None, **_: Any
) -> dict[GraphKey, dict[str, Any]]:
    assert namespace is not None  # AgentGraphs are namespaced
    return {(namespace, name): _plain(body)}


async def owned(body: kopf.Body, **_: Any) -> dict[tuple[str, str, str], Observed]:
    seen = observe(body, keep_body=body["kind"] == "Deployment")
    return {seen.key: seen}


for _group, _version, _plural in OWNED_RESOURCES:
    kopf.index(_group, _version, _plural, labels=MANAGED_LABELS)(owned)


@kopf.index("", "v1", "secrets", labels={WATCHED_LABEL: "true"})
async def watched_secrets(body: kopf.Body, **_: Any) -> dict[tuple[str, str, str], Observed]:
    seen = observe(body, keep_body=True)
    return {seen.key: seen}


def _essence(graph: dict[str, Any]) -> tuple[Any, ...]:
    """What a reconcile reads of a graph besides its status."""
    meta = graph["metadata"]
    return (graph.get("spec"), meta.get("generation"), meta.get("finalizers"), meta.get("uid"))


def _body(plain: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, plain))


def _plain(body: kopf.Body) -> dict[str, Any]:
    """A copy of the graph nothing else holds (reconciliation runs in another thread)."""
    plain: dict[str, Any] = orjson.loads(orjson.dumps(dict(body)))
    return plain


# ---------------------------------------------------------------------- events -> the queue


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_graph(
    event: kopf.RawEvent, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    assert namespace is not None  # AgentGraphs are namespaced
    operator: Operator = memo.operator
    operator.start()
    key = (namespace, name)
    if event["type"] == "DELETED":
        operator.queue.forget(key)
        operator.status_writes.pop(key, None)
        operator.settled.pop(key, None)
        for kind in OWNED_KINDS:  # its objects go with it (garbage collection)
            operator.memory.forget((kind, namespace, name))
        return
    written = operator.status_writes.get(key)
    if written is None or not written.echoed_by(dict(event["object"])):
        operator.queue.add(key)


def _owner_changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo) -> None:
    """An owned object changed: its graph may need a reconcile (unless it is our own write
    coming back)."""
    if event["type"] is None:
        return  # kopf's listings: the graphs' own listing reconciles them at start-up
    operator: Operator = memo.operator
    operator.start()
    seen = observe(body, keep_body=False)
    if event["type"] == "DELETED":
        operator.memory.forget(seen.key)
    elif operator.memory.is_echo(seen.key, seen.resource_version):
        return
    owner = next(
        (
            r["name"]
            for r in body["metadata"].get("ownerReferences") or []
            if r.get("controller") and r.get("kind") == "AgentGraph"
        ),
        None,
    )
    if owner is not None:
        operator.queue.add((seen.namespace, owner))


async def on_owned(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _owner_changed(event, body, memo)


for _group, _version, _plural in OWNED_RESOURCES:
    kopf.on.event(_group, _version, _plural, labels=MANAGED_LABELS)(on_owned)


@kopf.on.event("", "v1", "secrets", labels={WATCHED_LABEL: "true"})
async def on_secret(
    event: kopf.RawEvent,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A watched Secret changed: the graphs reading it roll their pods (a DSN copy the
    operator owns is read by its own graph only)."""
    if event["type"] is None or namespace is None:
        return
    operator: Operator = memo.operator
    operator.start()
    if (body["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == MANAGED_BY:
        _owner_changed(event, body, memo)
        return
    for key in operator.graphs_reading(namespace, name):
        operator.queue.add(key)
