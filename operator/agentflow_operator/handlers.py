"""Kopf handlers: thin glue between events and the plain functions of reconcile.py.

* An AgentGraph created, changed or found at start-up is reconciled; so is every graph each
  ``RESYNC_S`` (drift repair that needs no event).
* A change to a Deployment, Service, HPA or PDB the operator manages (an edit, a deletion, the
  Deployment's status moving) re-reconciles its owner at once; its creation does not (we made
  it).
* A Secret created, changed or deleted re-reconciles the graphs that read it, so rotating a key
  rolls the pods.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from typing import Any, cast

import kopf
from kubernetes import config as kube_config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from agentflow_operator.api import GROUP, PLURAL, VERSION, AgentGraphSpec
from agentflow_operator.builders import MANAGED_BY, referenced_secrets
from agentflow_operator.config import OperatorConfig
from agentflow_operator.reconcile import Cluster, NotAccepted, reconcile, status_of, without_times

logger = logging.getLogger("agentflow_operator")

RESYNC_S = 30
RETRY_S = 10  # an AgentGraph refused for its spec (a Secret missing...)
API_RETRY_S = 2  # an error of the Kubernetes API itself
# How long kopf waits to see its own patch of a graph come back through the watch before it
# takes the version it has for current. kopf's 5 s is too short under a burst: with 1,000 graphs
# created at once the watch ran over 5 s behind, and kopf, reading a version from before its
# last-handled annotation, ran the creation handler of a third to half of them a second time.
# Only a relisted watch never brings the patch back; then one graph waits this long, once.
CONSISTENCY_S = 30
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}
# The events of an owned object that may mean drift. ADDED is the echo of our own create
# (reacting to it would reconcile each new graph again once per object it owns, for nothing);
# kopf's listings (type None) are no change either: the graphs' resume handlers reconcile at
# start-up, and the resync covers what a lost watch missed.
OWNED_CHANGES = {"MODIFIED", "DELETED"}


class Context:
    """What every handler shares, built once at start-up (kopf's memo)."""

    def __init__(self) -> None:
        self.config = OperatorConfig()
        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:  # outside a cluster: KUBECONFIG (read now, not
            kube_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # at import)
        self.api_client = ApiClient()
        self.cluster = Cluster(self.api_client)

    def connection_info(self) -> kopf.ConnectionInfo:
        """The credentials the kubernetes client loaded, for kopf's own connection."""
        configuration = self.api_client.configuration
        scheme, _, token = (configuration.api_key.get("authorization") or "").partition(" ")
        return kopf.ConnectionInfo(
            server=configuration.host,
            scheme=scheme or None,
            token=token or None,
            ca_path=configuration.ssl_ca_cert,
            insecure=not configuration.verify_ssl,
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
        )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    memo.context = Context()
    config = memo.context.config
    # Progress and the last handled spec live in annotations, not in status (ours is typed).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.peering.name = config.peering
    settings.peering.mandatory = False  # without the peering CRDs, one replica runs alone
    # Peers with equal priorities all freeze: each replica draws its own, the highest acts.
    settings.peering.priority = (
        config.priority if config.priority is not None else secrets.randbelow(2**31)
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.persistence.consistency_timeout = CONSISTENCY_S
    _ensure_peering(memo.context)


def _ensure_peering(context: Context) -> None:
    """Create the kopf peering object(s) replicas meet in (a Helm chart that templates the
    peering CRD cannot create them in the same release)."""
    config = context.config
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
        if not context.cluster.ensure(peering):
            logger.warning("kopf's peering CRDs are not installed: replicas cannot coordinate")
            return


def _sync(body: kopf.Body, context: Context) -> None:
    """Reconcile one graph and write its status (only when it changed)."""
    graph = dict(body)
    failure, outcome = None, None
    try:
        outcome = reconcile(context.cluster, graph, context.config)
    except NotAccepted as refusal:
        failure = refusal
    except (ApiException, HTTPError) as error:  # 409, 5xx, timeouts: retry soon
        detail = f"{error.status} {error.reason}" if isinstance(error, ApiException) else error
        raise kopf.TemporaryError(
            f"the Kubernetes API failed: {detail}", delay=API_RETRY_S
        ) from None
    status = status_of(graph, outcome, failure, context.config)
    if without_times(status) != without_times(dict(body.get("status") or {})):
        meta = body["metadata"]
        context.cluster.patch_status(meta["namespace"], meta["name"], status)
    if failure is not None:
        kopf.warn(body, reason=failure.reason, message=failure.message)
        raise kopf.TemporaryError(failure.message, delay=RETRY_S)


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    return memo.context.connection_info()  # type: ignore[no-any-return]


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def on_graph(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _sync(body, memo.context)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_S, initial_delay=RESYNC_S)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _sync(body, memo.context)


def _resync_owner(namespace: str, owner: str, context: Context) -> None:
    body = context.cluster.get(f"{GROUP}/{VERSION}", "AgentGraph", namespace, owner)
    if body is not None and not body["metadata"].get("deletionTimestamp"):
        # A refusal is reported in the status; the graph's own handler retries it.
        with contextlib.suppress(kopf.TemporaryError):
            _sync(kopf.Body(cast(kopf.RawBody, body)), context)


def _owner_name(meta: kopf.Meta) -> str | None:
    refs = meta.get("ownerReferences") or []
    return next(
        (ref["name"] for ref in refs if ref.get("kind") == "AgentGraph" and ref.get("controller")),
        None,
    )


def _owned_changed(event: kopf.RawEvent, **_: Any) -> bool:
    return event["type"] in OWNED_CHANGES


# The filters (``when``) run in kopf's loop: an event they refuse costs no thread and no log.
@kopf.on.event("apps", "v1", "deployments", labels=MANAGED, when=_owned_changed)
@kopf.on.event("", "v1", "services", labels=MANAGED, when=_owned_changed)
@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels=MANAGED, when=_owned_changed)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED, when=_owned_changed)
def on_owned(meta: kopf.Meta, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    owner = _owner_name(meta)
    if owner is not None and namespace is not None:
        _resync_owner(namespace, owner, memo.context)


@kopf.index(GROUP, VERSION, PLURAL)
def secret_readers(
    spec: kopf.Spec, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> dict[tuple[str | None, str], str]:
    """(namespace, Secret name) -> the graphs whose pods read that Secret."""
    try:
        parsed = AgentGraphSpec.model_validate(dict(spec))
    except ValueError:
        return {}
    readers = referenced_secrets(parsed, memo.context.config)
    return {(namespace, secret): name for secret in readers}


def _read_by_a_graph(event: kopf.RawEvent, name: str, namespace: str | None, **kwargs: Any) -> bool:
    """A Secret some graph reads, created, changed or deleted (a listing, type None, is no
    change): every other Secret of the cluster is none of our business."""
    readers: kopf.Index[tuple[str | None, str], str] = kwargs["secret_readers"]  # kopf index
    return event["type"] is not None and (namespace, name) in readers


@kopf.on.event("", "v1", "secrets", when=_read_by_a_graph)
def on_secret(name: str, namespace: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    assert namespace is not None  # Secrets are namespaced
    readers: kopf.Index[tuple[str | None, str], str] = kwargs["secret_readers"]
    for graph in set(readers.get((namespace, name), [])):
        _resync_owner(namespace, graph, memo.context)
