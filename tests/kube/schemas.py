"""Schemas as the API server uses them: the upstream OpenAPI of the built-in kinds (Kubernetes
1.37, as shipped in kubernetes-validate) and the structural schemas of CustomResourceDefinitions.

One :class:`Schema` type serves both. It walks a schema node by node (following ``$ref`` lazily)
and answers what decoding, pruning, validation and server-side apply ask of it: which fields a
type declares, how a list merges (``x-kubernetes-list-type`` and ``-list-map-keys``), whether a
struct is atomic (``x-kubernetes-map-type``). Where a schema says nothing (no schema, or
``x-kubernetes-preserve-unknown-fields``), values are typed the way the API server deduces
them: objects merge key by key, lists are atomic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

Obj = dict[str, Any]

UPSTREAM = "v1.37.0-local"  # kubernetes-validate's non-strict schemas: no additionalProperties
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Key fields of associative lists that the API server defaults before merging (the upstream
# OpenAPI v3 marks them with `default`; the JSON schemas we read lost that marker).
KEY_DEFAULTS = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": "TCP"},
}


@dataclass(frozen=True, eq=False)
class Schema:
    """One node of a schema. ``name`` is the upstream definition it came from, if any.

    Schemas are walked for every field of every write, so each node's children are looked up
    once and kept (schemas never change once loaded)."""

    node: Obj = field(default_factory=dict)
    defs: Obj = field(default_factory=dict, repr=False)
    name: str = ""
    _children: dict[str, Schema] = field(default_factory=dict, repr=False)

    @staticmethod
    def at(node: Obj, defs: Obj, name: str = "") -> Schema:
        """The node, with a ``$ref`` (possibly behind ``allOf``) resolved."""
        ref = node.get("$ref") or next(
            (part["$ref"] for part in node.get("allOf", []) if "$ref" in part), None
        )
        if ref is not None:
            target = ref.rsplit("/", 1)[1]
            return Schema.at(defs[target], defs, target)
        return Schema(node, defs, name)

    def _child(self, node: Obj) -> Schema:
        return Schema.at(node, self.defs)

    def _cached(self, key: str, make: Callable[[], Schema]) -> Schema:
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = make()
        return found

    # ------------------------------------------------------------------ shape

    @cached_property
    def types(self) -> set[str]:
        kind = self.node.get("type")
        names = {kind} if isinstance(kind, str) else set(kind or [])
        return names - {"null"}

    @cached_property
    def untyped(self) -> bool:
        """Nothing is known of values here (preserve-unknown-fields, or no schema at all)."""
        return self.node.get("x-kubernetes-preserve-unknown-fields") is True or not (
            self.types or self.scalar_union
        )

    @cached_property
    def scalar_union(self) -> bool:
        """int-or-string (and Quantity): a scalar, whatever JSON type it arrives as."""
        return bool(self.node.get("x-kubernetes-int-or-string") or self.node.get("oneOf"))

    @cached_property
    def is_map(self) -> bool:
        """A map of free keys (labels, resource lists), as opposed to a struct of fields."""
        return isinstance(self.node.get("additionalProperties"), dict) and not self.node.get(
            "properties"
        )

    @cached_property
    def atomic(self) -> bool:
        """A struct or map replaced as a whole by server-side apply."""
        return self.node.get("x-kubernetes-map-type") == "atomic"

    @cached_property
    def list_type(self) -> str:
        return str(self.node.get("x-kubernetes-list-type") or "atomic")

    @cached_property
    def map_keys(self) -> tuple[str, ...]:
        return tuple(self.node.get("x-kubernetes-list-map-keys") or ())

    @cached_property
    def nullable(self) -> bool:
        return bool(self.node.get("nullable")) or "null" in (self.node.get("type") or [])

    def declares(self, name: str) -> bool:
        return name in (self.node.get("properties") or {})

    def field(self, name: str) -> Schema:
        """The schema of ``name`` in an object of this type (untyped when unknown)."""
        return self._cached("f:" + name, lambda: self._field(name))

    def _field(self, name: str) -> Schema:
        properties = self.node.get("properties") or {}
        if name in properties:
            return self._child(properties[name])
        extra = self.node.get("additionalProperties")
        return self._child(extra) if isinstance(extra, dict) else Schema()

    def items(self) -> Schema:
        def make() -> Schema:
            items = self.node.get("items")
            return self._child(items) if isinstance(items, dict) else Schema()

        return self._cached("[]", make)

    def knows_fields(self) -> bool:
        return self._knows_fields

    def key_defaults(self) -> Obj:
        """Defaults of the key fields of this associative list's items."""
        return KEY_DEFAULTS.get(self.items().name, {})

    @cached_property
    def _knows_fields(self) -> bool:
        """Whether keys outside ``properties`` are unknown fields (pruned, or refused in strict
        mode), as opposed to map entries or preserved unknowns."""
        return (
            not self.untyped
            and "properties" in self.node
            and not isinstance(self.node.get("additionalProperties"), dict)
        )


# ---------------------------------------------------------------------- built-in kinds


@cache
def _upstream() -> Obj:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / UPSTREAM
    definitions: Obj = json.loads((folder / "_definitions.json").read_text())
    return definitions


def _file_name(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


@cache
def _top(api_version: str, kind: str) -> Obj | None:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / UPSTREAM
    path = folder / _file_name(api_version, kind)
    if not path.is_file():
        return None
    top: Obj = json.loads(path.read_text())
    return top


@cache
def builtin(api_version: str, kind: str) -> Schema | None:
    """The upstream schema of a built-in kind, or None when kubernetes-validate has none."""
    top = _top(api_version, kind)
    return None if top is None else Schema(top, _upstream()["$defs"], kind)


@cache
def object_meta() -> Schema:
    return Schema.at({"$ref": f"#/$defs/{OBJECT_META}"}, _upstream()["$defs"])


@dataclass(frozen=True)
class SchemaProblem:
    path: str
    message: str
    decoding: bool  # a wrong JSON type: the API server cannot even decode the object (400)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _has_type(value: Any, names: set[str]) -> bool:
    if isinstance(value, bool):  # a JSON boolean is no integer
        return "boolean" in names
    return any(isinstance(value, _JSON_TYPES[name]) for name in names if name in _JSON_TYPES)


def problems(value: Any, schema: Schema, path: str = "") -> list[SchemaProblem]:
    """What a schema says of a decoded value: JSON types (a mismatch is a decoding error, 400),
    required fields and enums (422). Unknown fields are :func:`decode`'s business."""
    where = path or "<root>"
    if value is None:
        return []
    if schema.scalar_union:
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            return [SchemaProblem(where, f"{value!r} is not a string or a number", True)]
        return []
    if schema.types and not _has_type(value, schema.types):
        wanted = " or ".join(sorted(schema.types))
        return [SchemaProblem(where, f"{json.dumps(value)[:60]} is not of type {wanted}", True)]
    found: list[SchemaProblem] = []
    if "enum" in schema.node and value not in schema.node["enum"]:
        found.append(SchemaProblem(where, f"{value!r} is not one of {schema.node['enum']}", False))
    if isinstance(value, dict):
        for name in schema.node.get("required") or ():
            if name not in value:
                found.append(SchemaProblem(f"{path}.{name}".lstrip("."), "Required value", False))
        for name, child in value.items():
            if schema.knows_fields() and not schema.declares(name):
                continue  # an unknown field: decoding drops it, strict validation refuses it
            found += problems(child, schema.field(name), f"{path}.{name}".lstrip("."))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += problems(item, schema.items(), f"{path}[{index}]")
    return found


# ---------------------------------------------------------------------- decoding


def decode(
    value: Any, schema: Schema, go_types: bool, unknown: list[str] | None = None, path: str = ""
) -> Any:
    """The value as the API server stores it: unknown fields dropped (and their paths added to
    ``unknown``), nulls of non-nullable fields dropped (as if absent), and for built-in (Go)
    types, empty maps and lists omitted (``omitempty``) while empty structs stay."""
    if isinstance(value, dict):
        decoded = {}
        knows = schema.knows_fields()
        for name, child in value.items():
            where = f"{path}.{name}" if path else name
            if knows and not schema.declares(name):
                if unknown is not None:
                    unknown.append(where)
                continue
            inner = schema.field(name)
            if child is None and not inner.nullable and not schema.is_map:
                continue
            child = decode(child, inner, go_types, unknown, where)
            if go_types and _omitted_when_empty(child, inner):
                continue
            decoded[name] = child
        return decoded
    if isinstance(value, list):
        items = schema.items()
        return [
            decode(item, items, go_types, unknown, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    return value


def _omitted_when_empty(value: Any, schema: Schema) -> bool:
    """Go's ``omitempty`` on maps and slices; untyped values (raw JSON) are kept as sent."""
    if schema.untyped:
        return False
    return value == [] or (value == {} and schema.is_map)
