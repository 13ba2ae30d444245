"""The state and rules of an emulated Kubernetes API server (no HTTP here: see emulator.py).

What it emulates, faithfully enough for an operator to be tested against it:
* resourceVersion (one counter for all writes), uid, generation (bumped when anything but
  metadata and status changes), creationTimestamp, namespaces that must exist;
* optimistic concurrency: a write carrying a stale resourceVersion gets 409 Conflict;
* watches from a resourceVersion (replaying history), 410 Gone when it is too old, bookmarks;
* the status subresource (the main endpoint ignores status, /status changes only status)
  and the scale subresource (Deployments and CRDs that declare one);
* finalizers and deletionTimestamp; ownerReference garbage collection (background);
* CustomResourceDefinitions: registering serves the new resource; its structural schema
  defaults and validates objects, its x-kubernetes-validations CEL rules are enforced.

What it does not emulate: protobuf bodies (JSON only: `kubectl create` of built-in kinds sends
protobuf; `kubectl apply`, `get`, `scale`, `patch` and `delete` work), authentication and
RBAC (every request is allowed), admission
webhooks, server-side apply and managedFields, pagination (limit/continue return everything),
several versions of one resource and conversion, foreground deletion (treated as background),
controllers (nothing rolls Deployments or runs Pods: tests or the node agent write status).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.kube.patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.kube.selectors import SelectorError, field_matcher, label_matcher
from tests.kube.validation import apply_defaults, prune, unknown_fields, validate

Obj = dict[str, Any]
HISTORY = 5000  # watch events kept; older resourceVersions get 410 Gone


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: list[str] = field(default_factory=list)
    status: bool = False
    scale: Obj | None = None
    schema: Obj | None = None
    printer_columns: list[Obj] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def singular(self) -> str:
        return self.kind.lower()


DEPLOYMENT_SCALE = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}

BUILTINS = [
    ResourceType("", "v1", "namespaces", "Namespace", False, ["ns"], status=True),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=["cm"]),
    ResourceType("", "v1", "services", "Service", short_names=["svc"], status=True),
    ResourceType("", "v1", "pods", "Pod", short_names=["po"], status=True),
    ResourceType("", "v1", "endpoints", "Endpoints", short_names=["ep"]),
    ResourceType("", "v1", "events", "Event", short_names=["ev"]),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=["sa"]),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=["deploy"],
        status=True,
        scale=DEPLOYMENT_SCALE,
    ),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", short_names=["rs"], status=True),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=["hpa"],
        status=True,
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short_names=["pdb"],
        status=True,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ["crd", "crds"],
        status=True,
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("events.k8s.io", "v1", "events", "Event", short_names=["ev"]),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
]


@dataclass
class WatchEvent:
    rv: int
    type: str
    rtype: ResourceType
    obj: Obj


@dataclass(eq=False)  # identity semantics: kept in a set
class Watcher:
    rtype: ResourceType
    namespace: str | None
    labels: Any
    fields: Any
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: WatchEvent) -> bool:
        meta = event.obj["metadata"]
        return (
            event.rtype.key == self.rtype.key
            and (self.namespace is None or meta.get("namespace") == self.namespace)
            and self.labels(meta.get("labels") or {})
            and self.fields(event.obj)
        )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_rv(obj: Obj) -> Obj:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def _get_path(obj: Obj, path: str) -> Any:
    for part in path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


class Cluster:
    def __init__(self) -> None:
        self.types: dict[tuple[str, str], ResourceType] = {t.key: t for t in BUILTINS}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self.counter = itertools.count(1)
        self.rv = 0
        self.history: deque[WatchEvent] = deque(maxlen=HISTORY)
        self.watchers: set[Watcher] = set()
        for namespace in ("default", "kube-system"):
            self.create(self.types[("", "namespaces")], None, {"metadata": {"name": namespace}})

    # ------------------------------------------------------------------ lookups

    def resolve(self, group: str, plural: str) -> ResourceType:
        rtype = self.types.get((group, plural))
        if rtype is None:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({plural})"
            )
        return rtype

    def _bucket(self, rtype: ResourceType) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(rtype.key, {})

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._bucket(rtype).get((namespace or "", name))
        if obj is None:
            what = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(404, "NotFound", f'{what} "{name}" not found')
        return obj

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        try:
            label_test, field_test = label_matcher(labels), field_matcher(fields)
        except SelectorError as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        return [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(self._bucket(rtype).items())
            if (namespace is None or ns == namespace)
            and label_test(obj["metadata"].get("labels") or {})
            and field_test(obj)
        ]

    # ------------------------------------------------------------------ writes

    def _emit(self, kind: str, rtype: ResourceType, obj: Obj) -> None:
        event = WatchEvent(self.rv, kind, rtype, copy.deepcopy(obj))
        self.history.append(event)
        for watcher in list(self.watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    def _stamp(self, obj: Obj) -> None:
        self.rv = next(self.counter)
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _check_namespace(self, rtype: ResourceType, namespace: str | None) -> None:
        if rtype.namespaced:
            if not namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object must be given")
            if ("", namespace) not in self._bucket(self.types[("", "namespaces")]):
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def _admit(self, rtype: ResourceType, obj: Obj, strict: bool = False) -> None:
        """Pruning, defaulting and validation of custom resources, as the API server does;
        ``strict`` (fieldValidation=Strict, what kubectl asks for) refuses unknown fields."""
        if rtype.schema is None:
            return
        meta = obj["metadata"]
        # apiVersion, kind and metadata are the API server's own, whatever the schema says.
        body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
        unknown = unknown_fields(body, rtype.schema)
        if unknown and strict:
            fields = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise ApiError(400, "BadRequest", f"strict decoding error: {fields}")
        body = apply_defaults(prune(body, rtype.schema), rtype.schema)
        errors = validate(
            {**body, "apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": {}},
            rtype.schema,
        )
        if errors:
            raise ApiError(
                422,
                "Invalid",
                f'{rtype.kind}.{rtype.group} "{meta.get("name", "")}" is invalid: {"; ".join(errors)}',
            )
        obj.clear()
        obj.update({"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": meta, **body})

    def create(
        self, rtype: ResourceType, namespace: str | None, body: Obj, strict: bool = False
    ) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise ApiError(
                422, "Invalid", "metadata.name: Required value: name or generateName is required"
            )
        namespace = namespace or meta.get("namespace")
        self._check_namespace(rtype, namespace)
        key = (namespace or "" if rtype.namespaced else "", meta["name"])
        if key in self._bucket(rtype):
            what = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(409, "AlreadyExists", f'{what} "{meta["name"]}" already exists')
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        if rtype.namespaced:
            meta["namespace"] = namespace
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        meta.pop("deletionTimestamp", None)
        if rtype.status:
            obj.pop("status", None)  # status is written through /status only
        if rtype.kind == "Secret":
            self._secret_data(obj)
        self._admit(rtype, obj, strict)
        self._stamp(obj)
        self._bucket(rtype)[key] = obj
        if rtype.kind == "CustomResourceDefinition":
            self._register(obj)
        self._emit("ADDED", rtype, obj)
        return copy.deepcopy(obj)

    @staticmethod
    def _secret_data(obj: Obj) -> None:
        """stringData is write-only: folded into base64 data, as the API server does."""
        import base64

        for key, value in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()

    def replace(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        subresource: str | None = None,
        strict: bool = False,
    ) -> Obj:
        current = self.get(rtype, namespace, name)
        given_rv = (body.get("metadata") or {}).get("resourceVersion")
        if given_rv and given_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        updated = copy.deepcopy(body)
        if subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = updated.get("status")
            updated = merged
        elif subresource == "scale":
            return self._write_scale(rtype, current, updated)
        else:
            if rtype.status:
                if "status" in current:
                    updated["status"] = current["status"]
                else:
                    updated.pop("status", None)
            meta = updated.setdefault("metadata", {})
            for kept in (
                "uid",
                "creationTimestamp",
                "namespace",
                "name",
                "generation",
                "deletionTimestamp",
            ):
                if kept in current["metadata"]:
                    meta[kept] = current["metadata"][kept]
            if rtype.kind == "Secret":
                self._secret_data(updated)
        return self._commit(rtype, current, updated, strict)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None = None,
        strict: bool = False,
    ) -> Obj:
        current = self.get(rtype, namespace, name)
        base = self.scale_of(rtype, current) if subresource == "scale" else current
        try:
            if "json-patch" in content_type:
                patched = json_patch(base, patch)
            elif "strategic-merge-patch" in content_type:
                if rtype.schema is not None:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "strategic merge patch is not supported for custom resources",
                    )
                patched = strategic_merge_patch(base, patch)
            elif "merge-patch" in content_type:
                patched = merge_patch(base, patch)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format: {content_type}",
                )
        except PatchError as error:
            raise ApiError(422, "Invalid", str(error)) from None
        if not isinstance(patch, list):
            given_rv = ((patch or {}).get("metadata") or {}).get("resourceVersion")
            if given_rv is None:  # a patch without a precondition applies to the latest
                patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
                    "resourceVersion"
                ]
        return self.replace(rtype, namespace, name, patched, subresource, strict)

    def _commit(self, rtype: ResourceType, current: Obj, updated: Obj, strict: bool = False) -> Obj:
        updated["apiVersion"], updated["kind"] = rtype.api_version, rtype.kind
        if _spec_part(updated) != _spec_part(current):
            updated["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self._admit(rtype, updated, strict)
        if _without_rv(updated) == _without_rv(current):
            return copy.deepcopy(current)  # a write that changes nothing: no new version
        meta = updated["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(rtype, current)
        self._stamp(updated)
        key = (meta.get("namespace", "") if rtype.namespaced else "", meta["name"])
        self._bucket(rtype)[key] = updated
        if rtype.kind == "CustomResourceDefinition":
            self._register(updated)
        self._emit("MODIFIED", rtype, updated)
        return copy.deepcopy(updated)

    def scale_of(self, rtype: ResourceType, obj: Obj) -> Obj:
        if rtype.scale is None:
            raise ApiError(404, "NotFound", f"{rtype.plural} have no scale subresource")
        selector = _get_path(obj, rtype.scale.get("labelSelectorPath", ".status.selector") or "")
        if rtype.kind == "Deployment":
            labels = (obj.get("spec", {}).get("selector") or {}).get("matchLabels", {})
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": _get_path(obj, rtype.scale["specReplicasPath"]) or 0},
            "status": {
                "replicas": _get_path(obj, rtype.scale["statusReplicasPath"]) or 0,
                "selector": selector or "",
            },
        }

    def _write_scale(self, rtype: ResourceType, current: Obj, scale: Obj) -> Obj:
        updated = copy.deepcopy(current)
        assert rtype.scale is not None
        _set_path(
            updated,
            rtype.scale["specReplicasPath"],
            int((scale.get("spec") or {}).get("replicas", 0)),
        )
        return self.scale_of(rtype, self._commit(rtype, current, updated))

    def delete(
        self, rtype: ResourceType, namespace: str | None, name: str, propagation: str | None = None
    ) -> Obj:
        current = self.get(rtype, namespace, name)
        if propagation == "Orphan":
            self._orphan(current["metadata"]["uid"])
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(current)
            updated = copy.deepcopy(current)
            updated["metadata"]["deletionTimestamp"] = _now()
            updated["metadata"]["deletionGracePeriodSeconds"] = 0
            self._stamp(updated)
            self._bucket(rtype)[(namespace or "" if rtype.namespaced else "", name)] = updated
            self._emit("MODIFIED", rtype, updated)
            return copy.deepcopy(updated)
        return self._remove(rtype, current)

    def _remove(self, rtype: ResourceType, current: Obj) -> Obj:
        meta = current["metadata"]
        del self._bucket(rtype)[
            (meta.get("namespace", "") if rtype.namespaced else "", meta["name"])
        ]
        gone = copy.deepcopy(current)
        self._stamp(gone)
        self._emit("DELETED", rtype, gone)
        if rtype.kind == "CustomResourceDefinition":
            self._unregister(gone)
        if rtype.kind == "Namespace":
            self._empty_namespace(meta["name"])
        self._collect_garbage(meta["uid"])
        return gone

    def _empty_namespace(self, namespace: str) -> None:
        for key, bucket in list(self.objects.items()):
            for (ns, name), obj in list(bucket.items()):
                namespaced = key in self.types and self.types[key].namespaced
                if ns == namespace and namespaced and (ns, name) in bucket:
                    self._remove(self.types[key], obj)

    def _dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        return [
            (self.types[key], obj)
            for key, bucket in list(self.objects.items())
            if key in self.types
            for obj in list(bucket.values())
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))
        ]

    def _collect_garbage(self, uid: str) -> None:
        """Background deletion: dependents whose every owner is gone are deleted too."""
        for rtype, obj in self._dependents(uid):
            others = [ref for ref in obj["metadata"]["ownerReferences"] if ref.get("uid") != uid]
            if not any(self._exists(ref["uid"]) for ref in others):
                meta = obj["metadata"]
                self.delete(rtype, meta.get("namespace"), meta["name"])

    def _orphan(self, uid: str) -> None:
        for rtype, obj in self._dependents(uid):
            updated = copy.deepcopy(obj)
            updated["metadata"]["ownerReferences"] = [
                ref for ref in obj["metadata"]["ownerReferences"] if ref.get("uid") != uid
            ]
            self._commit(rtype, obj, updated)

    def _exists(self, uid: str) -> bool:
        return any(
            obj["metadata"]["uid"] == uid
            for bucket in self.objects.values()
            for obj in bucket.values()
        )

    # ------------------------------------------------------------------ CRDs

    def _register(self, crd: Obj) -> None:
        spec = crd["spec"]
        version = next(v for v in spec["versions"] if v.get("storage", True))
        names = spec["names"]
        rtype = ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=names.get("shortNames", []),
            status="status" in (version.get("subresources") or {}),
            scale=(version.get("subresources") or {}).get("scale"),
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=version.get("additionalPrinterColumns", []),
        )
        self.types[rtype.key] = rtype
        crd.setdefault("status", {})["conditions"] = [
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            }
        ]

    def _unregister(self, crd: Obj) -> None:
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        self.types.pop(key, None)
        self.objects.pop(key, None)

    # ------------------------------------------------------------------ watches

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        since: str | None,
        labels: str | None,
        fields: str | None,
    ) -> tuple[Watcher, list[WatchEvent]]:
        """A subscription, and what to send first: the current objects as ADDED (no
        resourceVersion, or "0"), or the history after ``since`` (410 if it is gone)."""
        try:
            watcher = Watcher(rtype, namespace, label_matcher(labels), field_matcher(fields))
        except SelectorError as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        if since in (None, "", "0"):
            first = [
                WatchEvent(self.rv, "ADDED", rtype, obj)
                for obj in self.list(rtype, namespace, labels, fields)
            ]
        else:
            start = int(since)
            oldest = self.history[0].rv if self.history else self.rv + 1
            if start < oldest - 1 and start < self.rv:
                raise ApiError(410, "Expired", f"too old resource version: {start} ({oldest - 1})")
            first = [e for e in self.history if e.rv > start and watcher.wants(e)]
        self.watchers.add(watcher)
        return watcher, first
