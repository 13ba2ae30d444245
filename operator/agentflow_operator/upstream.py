"""Upstream Kubernetes schemas for the fields the AgentGraph passes through to its pods.

Fields like ``env``, ``resources`` or ``affinity`` are copied verbatim into the Deployment (or
the HorizontalPodAutoscaler), so the CRD describes them with the upstream types, as
controller-gen does for kubebuilder projects: ``kubectl explain`` shows the upstream
documentation and the API server refuses a malformed value when the AgentGraph is applied
rather than when the operator's Deployment is.

The schemas come from the ``kubernetes-validate`` package (JSON Schema 2020-12 generated from
the Kubernetes OpenAPI document). It is a test dependency, not shipped in the operator's image,
so the definitions we need are vendored next to this module (``upstream-schemas.json``) and
:func:`structural` reads only that file. Regenerate it with ``python -m
agentflow_operator.upstream`` after changing :data:`UPSTREAM_VERSION` or :data:`EMBEDDED`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

UPSTREAM_VERSION = "1.37.0"

# The types the AgentGraph spec passes through. Everything they reference is vendored too.
EMBEDDED: tuple[str, ...] = (
    "io.k8s.api.core.v1.EnvVar",
    "io.k8s.api.core.v1.EnvFromSource",
    "io.k8s.api.core.v1.ResourceRequirements",
    "io.k8s.api.core.v1.Toleration",
    "io.k8s.api.core.v1.Affinity",
    "io.k8s.api.core.v1.TopologySpreadConstraint",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior",
)

VENDORED_FILE = "upstream-schemas.json"

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

# Upstream writes these as ``oneOf: [string, number]``, which a structural schema cannot say.
# What a CRD can say is int-or-string, which is also how controller-gen renders them (and the
# pattern is the one it emits for resource.Quantity). A fractional JSON number (``cpu: 0.5``)
# is therefore refused, as in every kubebuilder CRD: "500m" is the way to write it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_INT_OR_STRING: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
_SPECIAL: dict[str, Schema] = {
    QUANTITY: {**_INT_OR_STRING, "pattern": QUANTITY_PATTERN},
    INT_OR_STRING: _INT_OR_STRING,
}

# Keywords copied as they are. Anything else upstream starts using (allOf, nullable, an
# embedded resource...) fails the conversion instead of slipping into the CRD unexamined.
_VERBATIM = frozenset(
    {
        "description",
        "required",
        "enum",
        "format",
        "default",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)


def structural(definition: str) -> Schema:
    """The structural OpenAPI v3 schema (what a CRD accepts) of an upstream definition, e.g.
    ``"io.k8s.api.core.v1.EnvVar"``: a fresh copy, the caller may change it."""
    definitions = _load()
    if definition not in definitions:
        raise KeyError(f"{definition} is not vendored: add it to EMBEDDED and regenerate")
    return _inline(definition, definitions, ())


def unbounded(schema: Schema, path: str = "") -> list[str]:
    """Where ``schema`` has strings, lists or maps without a maximum size, as ``path: kind``.

    The API server estimates the worst-case cost of CEL rules from these bounds, so a rule that
    iterates over one of them (or over a list of objects containing one) is costed as if it
    were as large as a request can be. Upstream types are unbounded almost everywhere, and
    bounding them here would change what they mean: bound the list that holds them instead.
    """
    found = []
    where = path or "<root>"
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string") and "maxLength" not in schema:
        found.append(f"{where}: int-or-string")
    elif kind == "string" and "maxLength" not in schema and "enum" not in schema:
        found.append(f"{where}: string")
    elif kind == "array" and "maxItems" not in schema:
        found.append(f"{where}: list")
    elif kind == "object" and "additionalProperties" in schema and "maxProperties" not in schema:
        found.append(f"{where}: map")
    for name, child in schema.get("properties", {}).items():
        found += unbounded(child, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        found += unbounded(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += unbounded(schema["additionalProperties"], f"{path}.*")
    return found


def vendor() -> dict[str, Any]:
    """The content of the vendored file: the raw upstream definitions of :data:`EMBEDDED` and
    of everything they reference, keyed by name, plus the Kubernetes version they come from."""
    # kubernetes-validate is imported here (by resources.files) and nowhere else: it is only
    # installed where the file is regenerated or checked, never in the operator's image.
    package = resources.files("kubernetes_validate")
    source = package / "kubernetes-json-schema" / f"v{UPSTREAM_VERSION}-local" / "_definitions.json"
    if not source.is_file():
        shipped = sorted(p.name for p in (package / "kubernetes-json-schema").iterdir())
        raise FileNotFoundError(
            f"the installed kubernetes-validate has no schemas for Kubernetes {UPSTREAM_VERSION}"
            f" (it has {', '.join(shipped)}): change UPSTREAM_VERSION and regenerate"
        )
    everything: dict[str, Schema] = json.loads(source.read_text())["$defs"]
    picked: dict[str, Schema] = {}
    pending = list(EMBEDDED)
    while pending:
        name = pending.pop()
        if name not in picked:
            picked[name] = everything[name]
            pending += _references(everything[name])
    return {"version": UPSTREAM_VERSION, **picked}


@cache
def _load() -> dict[str, Schema]:
    text = (resources.files("agentflow_operator") / VENDORED_FILE).read_text()
    vendored: dict[str, Any] = json.loads(text)
    if vendored["version"] != UPSTREAM_VERSION:
        raise RuntimeError(f"{VENDORED_FILE} is stale: run `python -m {__name__}`")
    return {name: schema for name, schema in vendored.items() if name != "version"}


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield _target(value)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _target(ref: str) -> str:
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise ValueError(f"unexpected $ref {ref!r}: only local definitions are vendored")
    return ref.removeprefix(prefix)


def _inline(name: str, definitions: dict[str, Schema], via: tuple[str, ...]) -> Schema:
    if name in _SPECIAL:
        return copy.deepcopy(_SPECIAL[name])
    if name in via:
        # A CRD schema is a finite tree: a recursive type cannot be inlined at all.
        raise ValueError(f"recursive definition: {' -> '.join((*via, name))}")
    return _convert(definitions[name], definitions, (*via, name))


def _convert(node: Schema, definitions: dict[str, Schema], via: tuple[str, ...]) -> Schema:
    converted: Schema = {}
    if "$ref" in node:
        converted = _inline(_target(node["$ref"]), definitions, via)
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type":
            converted[key] = _single_type(value, via)
        elif key == "properties":
            converted[key] = {
                name: _convert(child, definitions, via) for name, child in value.items()
            }
        elif key == "items":
            converted[key] = _convert(value, definitions, via)
        elif key == "additionalProperties":
            # ``false`` is the default for a CRD (unknown fields are pruned); ``true`` would
            # need x-kubernetes-preserve-unknown-fields, which upstream types never ask for.
            if value is not False:
                converted[key] = _convert(value, definitions, via)
        elif key in _VERBATIM:
            # Next to a $ref, the field's own description replaces the type's: it says what
            # this field is for, which is what ``kubectl explain`` should show.
            converted[key] = copy.deepcopy(value)
        else:
            raise ValueError(f"{' -> '.join(via)}: no structural equivalent for {key!r}")
    return dict(sorted(converted.items()))


def _single_type(value: str | list[str], via: tuple[str, ...]) -> str:
    # Upstream marks optional fields ``[type, "null"]``. In a CRD an optional field is one that
    # is absent, and the API server prunes a null from a field that is not nullable.
    if isinstance(value, str):
        return value
    types = [kind for kind in value if kind != "null"]
    if len(types) != 1:
        raise ValueError(f"{' -> '.join(via)}: type {value} is not one type")
    return types[0]


def main() -> None:
    path = Path(__file__).with_name(VENDORED_FILE)
    path.write_text(json.dumps(vendor(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
