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
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

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


@dataclass(frozen=True)
class Schema:
    """One node of a schema. ``name`` is the upstream definition it came from, if any."""

    node: Obj = field(default_factory=dict)
    defs: Obj = field(default_factory=dict, repr=False, compare=False)
    name: str = ""

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

    # ------------------------------------------------------------------ shape

    @property
    def types(self) -> set[str]:
        kind = self.node.get("type")
        names = {kind} if isinstance(kind, str) else set(kind or [])
        return names - {"null"}

    @property
    def untyped(self) -> bool:
        """Nothing is known of values here (preserve-unknown-fields, or no schema at all)."""
        return self.node.get("x-kubernetes-preserve-unknown-fields") is True or not (
            self.types or self.scalar_union
        )

    @property
    def scalar_union(self) -> bool:
        """int-or-string (and Quantity): a scalar, whatever JSON type it arrives as."""
        return bool(self.node.get("x-kubernetes-int-or-string") or self.node.get("oneOf"))

    @property
    def is_map(self) -> bool:
        """A map of free keys (labels, resource lists), as opposed to a struct of fields."""
        return isinstance(self.node.get("additionalProperties"), dict) and not self.node.get(
            "properties"
        )

    @property
    def atomic(self) -> bool:
        """A struct or map replaced as a whole by server-side apply."""
        return self.node.get("x-kubernetes-map-type") == "atomic"

    @property
    def list_type(self) -> str:
        return str(self.node.get("x-kubernetes-list-type") or "atomic")

    @property
    def map_keys(self) -> tuple[str, ...]:
        return tuple(self.node.get("x-kubernetes-list-map-keys") or ())

    @property
    def nullable(self) -> bool:
        return bool(self.node.get("nullable")) or "null" in (self.node.get("type") or [])

    def declares(self, name: str) -> bool:
        return name in (self.node.get("properties") or {})

    def field(self, name: str) -> Schema:
        """The schema of ``name`` in an object of this type (untyped when unknown)."""
        properties = self.node.get("properties") or {}
        if name in properties:
            return self._child(properties[name])
        extra = self.node.get("additionalProperties")
        return self._child(extra) if isinstance(extra, dict) else Schema()

    def items(self) -> Schema:
        items = self.node.get("items")
        return self._child(items) if isinstance(items, dict) else Schema()

    def key_defaults(self) -> Obj:
        """Defaults of the key fields of this associative list's items."""
        return KEY_DEFAULTS.get(self.items().name, {})

    def knows_fields(self) -> bool:
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


def builtin(api_version: str, kind: str) -> Schema | None:
    """The upstream schema of a built-in kind, or None when kubernetes-validate has none."""
    top = _top(api_version, kind)
    return None if top is None else Schema(top, _upstream()["$defs"], kind)


def object_meta() -> Schema:
    return Schema.at({"$ref": f"#/$defs/{OBJECT_META}"}, _upstream()["$defs"])


@cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    top = _top(api_version, kind)
    if top is None:
        return None
    definitions = _upstream()
    registry: Registry[Any] = Registry().with_resource(
        definitions["$id"], Resource.from_contents(definitions)
    )
    cls = jsonschema.validators.validator_for(top)
    validator: jsonschema.protocols.Validator = cls(top, registry=registry)
    return validator


@dataclass(frozen=True)
class SchemaProblem:
    path: str
    message: str
    decoding: bool  # a wrong JSON type: the API server cannot even decode the object (400)


def problems(obj: Obj) -> list[SchemaProblem]:
    """What the upstream schema of a built-in kind says of ``obj`` (types, required fields,
    enums); unknown fields are not problems here (see :func:`unknown_fields`)."""
    validator = _validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if validator is None:
        return []
    found = []
    for error in validator.iter_errors(obj):
        path = ".".join(str(p) for p in error.absolute_path) or "<root>"
        found.append(SchemaProblem(path, error.message, error.validator in ("type", "oneOf")))
    return found


# ---------------------------------------------------------------------- decoding


def unknown_fields(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Fields the schema does not declare: what fieldValidation=Strict refuses and decoding
    (or pruning, for custom resources) drops."""
    found: list[str] = []
    if isinstance(value, dict):
        for name, child in value.items():
            where = f"{path}.{name}" if path else name
            if schema.knows_fields() and not schema.declares(name):
                found.append(where)
            else:
                found += unknown_fields(child, schema.field(name), where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += unknown_fields(item, schema.items(), f"{path}[{index}]")
    return found


def decode(value: Any, schema: Schema, go_types: bool) -> Any:
    """The value as the API server stores it: unknown fields dropped, nulls of non-nullable
    fields dropped (as if absent), and for built-in (Go) types, empty maps and lists omitted
    (``omitempty``) while empty structs stay."""
    if isinstance(value, dict):
        decoded = {}
        for name, child in value.items():
            if schema.knows_fields() and not schema.declares(name):
                continue
            inner = schema.field(name)
            if child is None and not inner.nullable and not schema.is_map:
                continue
            child = decode(child, inner, go_types)
            if go_types and _omitted_when_empty(child, inner):
                continue
            decoded[name] = child
        return decoded
    if isinstance(value, list):
        return [decode(item, schema.items(), go_types) for item in value]
    return value


def _omitted_when_empty(value: Any, schema: Schema) -> bool:
    """Go's ``omitempty`` on maps and slices; untyped values (raw JSON) are kept as sent."""
    if schema.untyped:
        return False
    return value == [] or (value == {} and schema.is_map)
