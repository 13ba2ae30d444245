"""What the operator knows without asking: the objects its watches hold (kopf indices fed by
watches with server-side label selectors), reduced to what reconciliation reads.

* owned objects (label ``app.kubernetes.io/managed-by=agentflow-operator``): for the drift
  check (who owns which fields), pruning and the status;
* Secrets labelled ``agentflow.dev/watched=true``: the values pods read, for the secrets hash
  (so a rotation rolls the pods); the operator never lists or watches any other Secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentflow_operator.apiserver import FIELD_MANAGER

Manifest = dict[str, Any]
ObjectKey = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class Observed:
    """An object as its watch last delivered it."""

    kind: str
    namespace: str
    name: str
    resource_version: str
    owner_uid: str | None  # the controller among its owners
    our_fields: Manifest  # the operator's applied fields (its managedFields entry's fieldsV1)
    replicas_owners: frozenset[str] = frozenset()  # who owns spec.replicas
    body: Manifest = field(default_factory=dict, compare=False)  # Deployments and Secrets

    @property
    def key(self) -> ObjectKey:
        return (self.kind, self.namespace, self.name)

    def secret_value(self, key: str) -> str | None:
        encoded = (self.body.get("data") or {}).get(key)
        return None if encoded is None else base64.b64decode(encoded).decode(errors="replace")


def applied_fields(body: Mapping[str, Any], manager: str = FIELD_MANAGER) -> Manifest:
    """What ``manager`` applied (its fieldsV1; empty when it applied nothing)."""
    for entry in body.get("metadata", {}).get("managedFields") or []:
        mine = entry.get("manager") == manager and entry.get("operation") == "Apply"
        if mine and not entry.get("subresource"):
            fields: Manifest = entry.get("fieldsV1") or {}
            return fields
    return {}


def _replicas_owners(body: Mapping[str, Any]) -> frozenset[str]:
    owners = set()
    for entry in body.get("metadata", {}).get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" in spec:
            owners.add(str(entry.get("manager")))
    return frozenset(owners)


def observe(body: Mapping[str, Any], keep_body: bool) -> Observed:
    meta = body["metadata"]
    owner = next(
        (r.get("uid") for r in meta.get("ownerReferences") or [] if r.get("controller")), None
    )
    return Observed(
        kind=str(body["kind"]),
        namespace=str(meta.get("namespace", "")),
        name=str(meta["name"]),
        resource_version=str(meta.get("resourceVersion", "")),
        owner_uid=owner,
        our_fields=applied_fields(body),
        replicas_owners=_replicas_owners(body),
        # The watch's own copy: each event is parsed afresh and nothing changes it afterwards.
        body=dict(body) if keep_body else {},
    )


class World(Protocol):
    """What reconciliation reads: caches first, the API server only where they cannot say."""

    def owned(self, kind: str, namespace: str, name: str) -> Observed | None: ...

    def secret(self, namespace: str, name: str) -> Observed | None: ...

    def default_dsn(self) -> str: ...


def single(found: Iterable[Observed] | None) -> Observed | None:
    """The one value of a kopf index key (each object is indexed under its own key)."""
    return next(iter(found or ()), None)
