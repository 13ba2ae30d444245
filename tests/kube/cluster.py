"""The state and rules of an emulated Kubernetes API server (no HTTP here: see emulator.py).

It is as strict as kube-apiserver 1.37 wherever our operator relies on the behaviour; a test
double more lenient than Kubernetes would hide the bugs that break on real clusters. Every
write goes through the same admission chain as on a real server:

1. **decoding**: fields the schema does not declare are refused (``fieldValidation=Strict``,
   what kubectl sends) or dropped (the default), nulls of optional fields count as absent, and
   built-in (Go) types omit empty maps and lists; a value of the wrong JSON type is a 400;
2. **defaulting**: built-in kinds as their ``SetDefaults`` functions do (builtins.py; quantities
   canonicalised, Service cluster IPs and node ports allocated), custom resources by their
   structural schema's ``default``\\s;
3. **field management** (fieldmanager.py): server-side apply with managedFields, conflicts and
   ``force``; every other write takes ownership of what it changed;
4. **validation**: the upstream OpenAPI schema of built-in kinds (types, required fields,
   enums), their cross-field rules and immutable fields (builtins.py), structural schemas and
   CEL rules of CRDs (validation.py, which also estimates CEL cost when a CRD is written);
5. **admission**: OwnerReferencesPermissionEnforcement (setting ``blockOwnerDeletion`` needs
   ``update`` on the owner's ``<resource>/finalizers``, changing owner references needs
   ``delete`` on the object), no new content in a terminating namespace, no new finalizers on
   an object being deleted.

Also emulated: resourceVersion (one counter), uid, generation (spec changes), optimistic
concurrency (409 on a stale resourceVersion), watches from a resourceVersion with 410 Gone and
bookmarks, paginated lists (``limit``/``continue``), the status and scale subresources,
finalizers and deletionTimestamp, background garbage collection through ownerReferences,
namespace deletion that waits for the finalizers of its content, RBAC enforced per request
(rbac.py), and two controllers (controllers.py): Deployments get a ReplicaSet per pod template
(a new revision whenever the template changes, so "did this restart the pods" is observable),
and HorizontalPodAutoscalers keep their target within bounds and leave a target at zero alone.

Not emulated (documented in docs/operator.md too): protobuf bodies (JSON and YAML only:
``kubectl create`` of built-in kinds sends protobuf, ``apply``/``get``/``scale``/``patch``/
``delete`` work), admission webhooks, conversion between versions of a resource (one version
served per kind), foreground deletion (treated as background), pods, scheduling and kubelets
(the node agent of devbox/ plays those), a pagination snapshot (later pages show the
current state), metrics for the autoscaler (tests call :meth:`Cluster.recommend`), and the
validation of affinity, resource claims, ephemeral containers and feature-gated fields.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import json
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from tests.kube import builtins, fieldmanager
from tests.kube.controllers import Controllers
from tests.kube.patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.kube.rbac import ADMIN, Access, Authorizer, User
from tests.kube.schemas import (
    OBJECT_META,
    Schema,
    builtin,
    decode,
    object_meta,
    problems,
)
from tests.kube.selectors import SelectorError, field_matcher, label_matcher
from tests.kube.validation import apply_defaults, crd_problems, validate

Obj = dict[str, Any]
HISTORY = 5000  # watch events kept; older resourceVersions get 410 Gone
SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
# Metadata only the server writes: kept from the stored object whatever a client sends.
SERVER_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        status: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


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
    schema: Obj | None = None  # a CRD's structural schema; built-in kinds use upstream's
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

    @property
    def custom(self) -> bool:
        return self.schema is not None

    @property
    def qualified(self) -> str:
        """How error messages name the kind: ``Deployment.apps``, ``Service``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @cached_property
    def object_schema(self) -> Schema | None:
        """The schema writes are checked against (metadata is always upstream's ObjectMeta)."""
        if self.schema is None:
            return builtin(self.api_version, self.kind)
        meta = object_meta()
        node = {**self.schema, "properties": {**self.schema.get("properties", {})}}
        node["properties"]["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
        return Schema(node, meta.defs)


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
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=["rs"],
        status=True,
        scale=DEPLOYMENT_SCALE,
    ),
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


@dataclass(frozen=True)
class Caller:
    """Who writes, and how: the user, the field manager, and the field validation asked for."""

    user: User = ADMIN
    manager: str = ""
    manager_given: bool = False  # fieldManager was in the query (required for apply)
    validation: str = "Warn"  # Strict | Warn | Ignore


CONTROLLER = Caller(ADMIN, "kube-controller-manager", True)


@dataclass
class WatchEvent:
    rv: int
    type: str
    rtype: ResourceType
    obj: Obj
    old: Obj | None = None  # the object before a MODIFIED


@dataclass(eq=False)  # identity semantics: kept in a set
class Watcher:
    rtype: ResourceType
    namespace: str | None
    labels: Any
    fields: Any
    queue: Any = field(default=None)

    def _selects(self, obj: Obj) -> bool:
        meta = obj["metadata"]
        return (
            (self.namespace is None or meta.get("namespace") == self.namespace)
            and self.labels(meta.get("labels") or {})
            and bool(self.fields(obj))
        )

    def sees(self, event: WatchEvent) -> WatchEvent | None:
        """The event as this watch delivers it, if at all. With a selector, an object that
        starts to match arrives as ADDED and one that stops matching as DELETED, as the API
        server's watch cache sends them."""
        if event.rtype.key != self.rtype.key:
            return None
        now = self._selects(event.obj)
        if event.type != "MODIFIED" or event.old is None:
            return event if now else None
        before = self._selects(event.old)
        if now and not before:
            return WatchEvent(event.rv, "ADDED", event.rtype, event.obj)
        if before and not now:
            return WatchEvent(event.rv, "DELETED", event.rtype, event.obj)
        return event if now else None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _unchanged(new: Obj, old: Obj) -> bool:
    """Whether a write changes nothing: managedFields timestamps alone do not count (the API
    server restores them rather than store a new version)."""

    def comparable(obj: Obj) -> Obj:
        meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        meta["managedFields"] = [
            {k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []
        ]
        return {**obj, "metadata": meta}

    return comparable(new) == comparable(old)


def _get_path(obj: Obj, path: str) -> Any:
    for part in path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def invalid(rtype: ResourceType, name: str, errors: list[str]) -> ApiError:
    """A 422 worded like the API server's field errors."""
    detail = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    causes = [
        {"reason": "FieldValueInvalid", "message": e, "field": e.split(":", 1)[0]} for e in errors
    ]
    return ApiError(
        422,
        "Invalid",
        f'{rtype.qualified} "{name}" is invalid: {detail}',
        {"name": name, "group": rtype.group, "kind": rtype.kind, "causes": causes},
    )


class Cluster:
    def __init__(self) -> None:
        self.types: dict[tuple[str, str], ResourceType] = {t.key: t for t in BUILTINS}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self.counter = itertools.count(1)
        self.rv = 0
        self.history: deque[WatchEvent] = deque(maxlen=HISTORY)
        self.watchers: set[Watcher] = set()
        self.authorizer = Authorizer(self._of_kind)
        self.controllers = Controllers(self)
        self._reactions: deque[WatchEvent] = deque()
        self._reacting = False
        self._sweeping: set[str] = set()
        self.owned: dict[str, set[tuple[tuple[str, str], str, str]]] = {}
        self._ips = (str(ip) for ip in itertools.islice(SERVICE_RANGE.hosts(), 10, None))
        self._node_ports = iter(NODE_PORTS)
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

    def type_of(self, api_version: str, kind: str) -> ResourceType | None:
        return next(
            (t for t in self.types.values() if t.api_version == api_version and t.kind == kind),
            None,
        )

    def _bucket(self, rtype: ResourceType) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(rtype.key, {})

    def stored(self, rtype: ResourceType, namespace: str) -> Iterator[Obj]:
        """The objects of a namespace, as stored (read them, never change them: every write
        stores a new object, so what watches, history and callers hold stays as it was)."""
        return (obj for (ns, _), obj in self._bucket(rtype).items() if ns == namespace)

    def _key(self, rtype: ResourceType, namespace: str | None, name: str) -> tuple[str, str]:
        return (namespace or "" if rtype.namespaced else "", name)

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self._bucket(rtype).get(self._key(rtype, namespace, name))

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.find(rtype, namespace, name)
        if obj is None:
            what = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(404, "NotFound", f'{what} "{name}" not found')
        return obj

    def _of_kind(self, kind: str) -> Iterator[Obj]:
        rtype = next((t for t in self.types.values() if t.kind == kind and "rbac" in t.group), None)
        return iter(self._bucket(rtype).values()) if rtype else iter(())

    def list_objects(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: str | None = None,
        fields: str | None = None,
        limit: int | None = None,
        cont: str | None = None,
    ) -> tuple[list[Obj], str]:
        """Matching objects in key order; with ``limit``, one page and the token of the next
        (empty on the last page)."""
        try:
            label_test, field_test = label_matcher(labels), field_matcher(fields)
        except SelectorError as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        after = _decode_continue(cont) if cont else None
        found: list[Obj] = []
        bucket = self._bucket(rtype)
        named = _single_name(fields)
        if named is not None and (namespace or not rtype.namespaced):  # one object at most
            key = self._key(rtype, namespace, named)
            candidates = [(key, bucket[key])] if key in bucket else []
        else:
            candidates = sorted(bucket.items())
        for key, obj in candidates:
            if after is not None and list(key) <= after:
                continue
            if (
                (namespace is None or key[0] == namespace)
                and label_test(obj["metadata"].get("labels") or {})
                and field_test(obj)
            ):
                if limit and len(found) == limit:
                    last = found[-1]["metadata"]
                    token = [last.get("namespace", "") if rtype.namespaced else "", last["name"]]
                    return found, _encode_continue(token)
                found.append(obj)
        return found, ""

    # ------------------------------------------------------------------ watches

    def _emit(self, kind: str, rtype: ResourceType, obj: Obj, old: Obj | None = None) -> None:
        event = WatchEvent(self.rv, kind, rtype, obj, old)
        self.history.append(event)
        for watcher in list(self.watchers):
            seen = watcher.sees(event)
            if seen is not None:
                watcher.queue.put_nowait(seen)
        self._reactions.append(event)

    def react(self) -> None:
        """Let the controllers see what the last request changed (after it, never inside it)."""
        if self._reacting:
            return
        self._reacting = True
        try:
            while self._reactions:
                self.controllers.react(self._reactions.popleft())
        finally:
            self._reacting = False

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        since: str | None,
        labels: str | None,
        fields: str | None,
        queue: Any,
    ) -> tuple[Watcher, list[WatchEvent]]:
        """A subscription, and what to send first: the current objects as ADDED (no
        resourceVersion, or "0"), or the history after ``since`` (410 if it is gone)."""
        try:
            watcher = Watcher(rtype, namespace, label_matcher(labels), field_matcher(fields), queue)
        except SelectorError as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        if since in (None, "", "0"):
            first = [
                WatchEvent(self.rv, "ADDED", rtype, obj)
                for obj in self.list_objects(rtype, namespace, labels, fields)[0]
            ]
        else:
            start = int(since)
            oldest = self.history[0].rv if self.history else self.rv + 1
            if start < oldest - 1 and start < self.rv:
                raise ApiError(410, "Expired", f"too old resource version: {start} ({oldest - 1})")
            first = [
                seen for e in self.history if e.rv > start and (seen := watcher.sees(e)) is not None
            ]
        self.watchers.add(watcher)
        return watcher, first

    # ------------------------------------------------------------------ writes

    def create(
        self,
        rtype: ResourceType,
        namespace: str | None,
        body: Obj,
        caller: Caller = CONTROLLER,
        applied: list[Obj] | None = None,
    ) -> Obj:
        """Create ``body``; ``applied`` is the managedFields of an apply that creates it (its
        manager owns what it applied, not the defaults), else the caller owns all it sent."""
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise ApiError(
                422, "Invalid", "metadata.name: Required value: name or generateName is required"
            )
        namespace = namespace or meta.get("namespace")
        self._check_namespace(rtype, namespace, creating=True)
        if self.find(rtype, namespace, meta["name"]) is not None:
            what = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(409, "AlreadyExists", f'{what} "{meta["name"]}" already exists')
        if rtype.namespaced:
            meta["namespace"] = namespace
        for server_set in (*SERVER_METADATA, "resourceVersion"):
            meta.pop(server_set, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        if applied:
            meta["managedFields"] = applied
        if rtype.status:
            obj.pop("status", None)  # status is written through /status only
        return self._write(rtype, None, obj, caller, None, applied=applied is not None)

    def replace(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        subresource: str | None = None,
        caller: Caller = CONTROLLER,
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
        if subresource == "scale":
            return self._write_scale(rtype, current, body, caller)
        if subresource == "status":
            updated = copy.deepcopy(current)
            updated["status"] = copy.deepcopy(body.get("status"))
        else:
            updated = copy.deepcopy(body)
            if rtype.status:
                updated.pop("status", None)
                if "status" in current:
                    updated["status"] = copy.deepcopy(current["status"])
            self._keep_server_metadata(updated, current)
        return self._write(rtype, current, updated, caller, subresource)

    @staticmethod
    def _keep_server_metadata(updated: Obj, current: Obj) -> None:
        meta = updated.setdefault("metadata", {})
        for kept in (*SERVER_METADATA, "namespace", "name"):
            if kept in current["metadata"]:
                meta[kept] = copy.deepcopy(current["metadata"][kept])
            else:
                meta.pop(kept, None)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None = None,
        caller: Caller = CONTROLLER,
        force: bool = False,
    ) -> Obj:
        if "apply-patch" in content_type:
            return self.apply(rtype, namespace, name, patch, subresource, caller, force)
        current = self.get(rtype, namespace, name)
        base = self.scale_of(rtype, current) if subresource == "scale" else current
        try:
            if "json-patch" in content_type:
                patched = json_patch(base, patch)
            elif "strategic-merge-patch" in content_type:
                if rtype.custom:
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
        if not isinstance(patched, dict):
            raise ApiError(400, "BadRequest", "the patch does not leave an object")
        if not isinstance(patch, list):
            given_rv = ((patch or {}).get("metadata") or {}).get("resourceVersion")
            if given_rv is None:  # a patch without a precondition applies to the latest
                patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
                    "resourceVersion"
                ]
        return self.replace(rtype, namespace, name, patched, subresource, caller)

    def apply(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        config: Any,
        subresource: str | None,
        caller: Caller,
        force: bool,
    ) -> Obj:
        """Server-side apply: create or merge ``config`` as ``caller.manager``."""
        if not caller.manager_given:
            raise ApiError(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value: is "
                "required for apply patch",
            )
        if not isinstance(config, dict):
            raise ApiError(400, "BadRequest", "the applied configuration is not an object")
        if (config.get("apiVersion"), config.get("kind")) != (rtype.api_version, rtype.kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the applied configuration must be of apiVersion {rtype.api_version} and kind "
                f"{rtype.kind}, not {config.get('apiVersion')} {config.get('kind')}",
            )
        meta = config.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta['name']}) does not match "
                f"the name in the URL ({name})",
            )
        meta["name"] = name
        schema = rtype.object_schema or Schema()
        unknown: list[str] = []
        decode(_spec_and_status(config), schema, not rtype.custom, unknown)
        if unknown:
            raise invalid(rtype, name, [f".{f}: field not declared in schema" for f in unknown])
        current = self.find(rtype, namespace, name)
        if current is None and subresource:
            self.get(rtype, namespace, name)  # a 404
        if current is None:
            self._check_namespace(rtype, namespace, creating=True)
            self._authorize(caller, Access("create", rtype.group, rtype.plural, namespace, name))
        try:
            merged = fieldmanager.apply(
                current, config, caller.manager, force, schema, subresource or "", now()
            )
        except fieldmanager.FieldManagerError as error:
            raise ApiError(error.code, error.reason, error.message) from None
        if current is None:
            managed = merged["metadata"].pop("managedFields", [])
            return self.create(rtype, namespace, merged, caller, applied=managed)
        if subresource == "status":
            updated = copy.deepcopy(current)
            updated["status"] = merged.get("status")
            updated["metadata"]["managedFields"] = merged["metadata"].get("managedFields", [])
        else:
            updated = merged
            if rtype.status:
                updated.pop("status", None)
                if "status" in current:
                    updated["status"] = copy.deepcopy(current["status"])
            managed = updated["metadata"].get("managedFields")
            self._keep_server_metadata(updated, current)
            if managed is None:
                updated["metadata"].pop("managedFields", None)
            else:
                updated["metadata"]["managedFields"] = managed
        return self._write(rtype, current, updated, caller, subresource, applied=True)

    def _write_scale(self, rtype: ResourceType, current: Obj, scale: Obj, caller: Caller) -> Obj:
        if rtype.scale is None:
            raise ApiError(404, "NotFound", f"{rtype.plural} have no scale subresource")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{current["metadata"]["name"]}" is invalid: '
                f"spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
            )
        updated = copy.deepcopy(current)
        _set_path(updated, rtype.scale["specReplicasPath"], replicas)
        return self.scale_of(rtype, self._write(rtype, current, updated, caller, "scale"))

    def scale_of(self, rtype: ResourceType, obj: Obj) -> Obj:
        if rtype.scale is None:
            raise ApiError(404, "NotFound", f"{rtype.plural} have no scale subresource")
        selector = _get_path(obj, rtype.scale.get("labelSelectorPath", ".status.selector") or "")
        if not rtype.custom:
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

    # ------------------------------------------------------------------ the admission chain

    def _write(
        self,
        rtype: ResourceType,
        old: Obj | None,
        new: Obj,
        caller: Caller,
        subresource: str | None,
        applied: bool = False,
    ) -> Obj:
        """Decode, default, manage fields, validate, admit and store one write."""
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        meta = new.setdefault("metadata", {})
        schema = rtype.object_schema
        if schema is not None:
            self._decode(rtype, new, schema, caller.validation)
            meta = new["metadata"]
        if rtype.kind == "Secret":
            _fold_string_data(new)
        self._default(rtype, new, old)
        if not applied:
            fieldmanager.update(
                old, new, caller.manager, schema or Schema(), subresource or "", now()
            )
        self._validate(rtype, new, old)
        self._admit(rtype, new, old, caller)
        if old is not None:
            generation = int(old["metadata"].get("generation", 1))
            if _spec_part(new) != _spec_part(old):
                generation += 1
            meta["generation"] = generation
            if _unchanged(new, old):
                return old  # a write that changes nothing: no new version
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                return self._remove(rtype, old)
        else:
            meta["generation"] = 1
        self._stamp(new)
        self._store(rtype, new, old)
        if rtype.kind == "CustomResourceDefinition":
            self._register(new)
        self._emit("ADDED" if old is None else "MODIFIED", rtype, new, old)
        return new

    def _decode(self, rtype: ResourceType, obj: Obj, schema: Schema, validation: str) -> None:
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        unknown: list[str] = []
        decoded = decode(body, schema, not rtype.custom, unknown)
        if unknown and validation == "Strict":
            fields = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise ApiError(400, "BadRequest", f"strict decoding error: {fields}")
        obj.clear()
        obj.update({"apiVersion": rtype.api_version, "kind": rtype.kind, **decoded})
        obj.setdefault("metadata", {})

    def _default(self, rtype: ResourceType, obj: Obj, old: Obj | None) -> None:
        if rtype.schema is not None:
            body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
            obj.update(apply_defaults(body, rtype.schema))
            return
        if old is not None:
            builtins.prepare_update(obj, old)
        try:
            builtins.default(obj)
        except builtins.DecodeError as error:
            raise ApiError(
                400,
                "BadRequest",
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
                f"{error}",
            ) from None
        if rtype.kind == "Service":
            self._allocate(obj)

    def _allocate(self, service: Obj) -> None:
        """Cluster IPs and node ports of what an update did not carry over (prepare_update)."""
        spec = service.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP"):
            spec["clusterIP"] = next(self._ips)
        if not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports", []):
                if not port.get("nodePort"):
                    port["nodePort"] = next(self._node_ports)

    def _validate(self, rtype: ResourceType, obj: Obj, old: Obj | None) -> None:
        name = obj["metadata"].get("name", "")
        if rtype.schema is not None:
            errors = builtins.custom_resource_problems(obj, old) + validate(
                {k: v for k, v in obj.items() if k != "metadata"} | {"metadata": {}},
                rtype.schema,
            )
        else:
            schema_problems = problems(obj, rtype.object_schema or Schema())
            decoding = [p for p in schema_problems if p.decoding]
            if decoding:
                first = decoding[0]
                raise ApiError(
                    400,
                    "BadRequest",
                    f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                    f"{rtype.kind}: {first.path}: {first.message}",
                )
            errors = [
                f"{p.path}: {p.message}"
                if p.message.startswith("Required")
                else f"{p.path}: Invalid value: {p.message}"
                for p in schema_problems
            ]
            try:
                errors += builtins.validate(obj, old)
            except builtins.DecodeError as error:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                    f"{rtype.kind}: {error}",
                ) from None
        if rtype.kind == "CustomResourceDefinition":
            errors += crd_problems(obj)
        if errors:
            raise invalid(rtype, name, errors)

    def _admit(self, rtype: ResourceType, obj: Obj, old: Obj | None, caller: Caller) -> None:
        meta, before = obj["metadata"], (old or {}).get("metadata", {})
        if before.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(before.get("finalizers") or [])
            if added:
                raise invalid(
                    rtype,
                    meta.get("name", ""),
                    [
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the "
                        "object is being deleted"
                    ],
                )
        self._owner_references(rtype, obj, old, caller)

    def _owner_references(
        self, rtype: ResourceType, obj: Obj, old: Obj | None, caller: Caller
    ) -> None:
        """OwnerReferencesPermissionEnforcement (on in OpenShift; on here)."""
        refs = obj["metadata"].get("ownerReferences") or []
        before = (old or {}).get("metadata", {}).get("ownerReferences") or []
        if refs == before or caller.user.admin:
            return
        namespace, name = obj["metadata"].get("namespace"), obj["metadata"].get("name")
        what = f'{rtype.plural}{"." + rtype.group if rtype.group else ""} "{name}"'
        deleting = Access("delete", rtype.group, rtype.plural, namespace, name)
        if old is not None and not self.authorizer.allows(caller.user, deleting):
            raise ApiError(
                403,
                "Forbidden",
                f"{what} is forbidden: cannot set an ownerRef on a resource you can't delete: "
                f"{deleting.forbidden(caller.user)}",
            )
        blocking_before = {r.get("uid") for r in before if r.get("blockOwnerDeletion")}
        for ref in refs:
            if not ref.get("blockOwnerDeletion") or ref.get("uid") in blocking_before:
                continue
            owner = self.type_of(ref.get("apiVersion", ""), ref.get("kind", ""))
            if owner is None:
                raise ApiError(
                    403,
                    "Forbidden",
                    f"{what} is forbidden: cannot set blockOwnerDeletion in this case because "
                    f"cannot find RESTMapping for APIVersion {ref.get('apiVersion')} Kind "
                    f"{ref.get('kind')}",
                )
            finalizers = Access(
                "update",
                owner.group,
                owner.plural,
                namespace if owner.namespaced else None,
                ref.get("name"),
                "finalizers",
            )
            if not self.authorizer.allows(caller.user, finalizers):
                raise ApiError(
                    403,
                    "Forbidden",
                    f"{what} is forbidden: cannot set blockOwnerDeletion if an ownerReference "
                    f"refers to a resource you can't set finalizers on: "
                    f"{finalizers.forbidden(caller.user)}",
                )

    def _authorize(self, caller: Caller, access: Access) -> None:
        if not self.authorizer.allows(caller.user, access):
            raise ApiError(403, "Forbidden", access.forbidden(caller.user))

    def _stamp(self, obj: Obj) -> None:
        self.rv = next(self.counter)
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _check_namespace(
        self, rtype: ResourceType, namespace: str | None, creating: bool = False
    ) -> None:
        if not rtype.namespaced:
            return
        if not namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object must be given")
        home = self.find(self.types[("", "namespaces")], None, namespace)
        if home is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        if creating and home["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]},
            )

    # ------------------------------------------------------------------ deletion

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
        caller: Caller = CONTROLLER,
    ) -> Obj:
        current = self.get(rtype, namespace, name)
        if propagation == "Orphan":
            self._orphan(current["metadata"]["uid"])
        meta = current["metadata"]
        if rtype.kind == "Namespace" or meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return current
            updated = copy.deepcopy(current)
            updated["metadata"]["deletionTimestamp"] = now()
            updated["metadata"]["deletionGracePeriodSeconds"] = 0
            if rtype.kind == "Namespace":
                updated.setdefault("status", {})["phase"] = "Terminating"
            self._stamp(updated)
            self._store(rtype, updated, current)
            self._emit("MODIFIED", rtype, updated, current)
            if rtype.kind == "Namespace":
                self._sweep(name)
                return self.find(rtype, None, name) or updated
            return updated
        return self._remove(rtype, current)

    def _remove(self, rtype: ResourceType, current: Obj) -> Obj:
        meta = current["metadata"]
        del self._bucket(rtype)[self._key(rtype, meta.get("namespace"), meta["name"])]
        self._index_owners(rtype, None, current)
        gone = {**current, "metadata": dict(current["metadata"])}
        self._stamp(gone)
        self._emit("DELETED", rtype, gone)
        if rtype.kind == "CustomResourceDefinition":
            self._unregister(gone)
        self._collect_garbage(meta["uid"])
        if rtype.namespaced:
            self._sweep(meta.get("namespace", ""))
        return gone

    def _sweep(self, namespace: str) -> None:
        """The namespace controller: delete the content of a terminating namespace (each
        object's finalizers are honoured), then the namespace once nothing is left."""
        namespaces = self.types[("", "namespaces")]
        home = self.find(namespaces, None, namespace)
        if home is None or not home["metadata"].get("deletionTimestamp"):
            return
        if namespace in self._sweeping:
            return
        self._sweeping.add(namespace)
        try:
            for rtype, obj in list(self._content(namespace)):
                name = obj["metadata"]["name"]
                if not obj["metadata"].get("deletionTimestamp") and self.find(
                    rtype, namespace, name
                ):
                    self.delete(rtype, namespace, name)
            if not any(True for _ in self._content(namespace)):
                home = self.get(namespaces, None, namespace)
                if not home["metadata"].get("finalizers"):
                    self._remove(namespaces, home)
        finally:
            self._sweeping.discard(namespace)

    def _content(self, namespace: str) -> Iterator[tuple[ResourceType, Obj]]:
        for key, bucket in self.objects.items():
            rtype = self.types.get(key)
            if rtype is None or not rtype.namespaced:
                continue
            for (ns, _), obj in list(bucket.items()):
                if ns == namespace:
                    yield rtype, obj

    def _store(self, rtype: ResourceType, obj: Obj, old: Obj | None) -> None:
        meta = obj["metadata"]
        self._bucket(rtype)[self._key(rtype, meta.get("namespace"), meta["name"])] = obj
        self._index_owners(rtype, obj, old)

    def _index_owners(self, rtype: ResourceType, obj: Obj | None, old: Obj | None) -> None:
        """Keep ``owned``: owner uid -> its dependents (the garbage collector's graph)."""
        for before in (old or {}).get("metadata", {}).get("ownerReferences") or []:
            self.owned.get(before.get("uid"), set()).discard(self._ref(rtype, old))
        for ref in (obj or {}).get("metadata", {}).get("ownerReferences") or []:
            self.owned.setdefault(ref.get("uid"), set()).add(self._ref(rtype, obj))

    def _ref(self, rtype: ResourceType, obj: Obj | None) -> tuple[tuple[str, str], str, str]:
        meta = (obj or {})["metadata"]
        return (rtype.key, meta.get("namespace", ""), meta["name"])

    def dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        """The objects with an owner reference to ``uid``, as stored."""
        found = []
        for key, namespace, name in list(self.owned.get(uid, ())):
            rtype = self.types.get(key)
            obj = self.find(rtype, namespace, name) if rtype else None
            if rtype is not None and obj is not None:
                found.append((rtype, obj))
        return found

    def _collect_garbage(self, uid: str) -> None:
        """Background deletion: dependents whose every owner is gone are deleted too."""
        for rtype, obj in self.dependents(uid):
            others = [ref for ref in obj["metadata"]["ownerReferences"] if ref.get("uid") != uid]
            meta = obj["metadata"]
            if not any(self._exists(ref["uid"]) for ref in others) and self.find(
                rtype, meta.get("namespace"), meta["name"]
            ):
                self.delete(rtype, meta.get("namespace"), meta["name"])

    def _orphan(self, uid: str) -> None:
        for rtype, obj in self.dependents(uid):
            updated = copy.deepcopy(obj)
            updated["metadata"]["ownerReferences"] = [
                ref for ref in obj["metadata"]["ownerReferences"] if ref.get("uid") != uid
            ]
            self._write(rtype, obj, updated, Caller(ADMIN, "kube-controller-manager", True), None)

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


def _single_name(fields: str | None) -> str | None:
    """The name a field selector pins down (``metadata.name=x``), if that is all it says."""
    if fields and "," not in fields and "!" not in fields:
        key, _, value = fields.replace("==", "=").partition("=")
        if key.strip() == "metadata.name":
            return value.strip()
    return None


def _spec_and_status(config: Obj) -> Obj:
    return {k: v for k, v in config.items() if k not in ("apiVersion", "kind")}


def _fold_string_data(secret: Obj) -> None:
    """stringData is write-only: folded into base64 data, as the API server does."""
    for key, value in (secret.pop("stringData", None) or {}).items():
        secret.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()


def _encode_continue(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_continue(token: str) -> list[str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise ApiError(400, "BadRequest", "continue key is not valid") from None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise ApiError(400, "BadRequest", "continue key is not valid")
    return key
