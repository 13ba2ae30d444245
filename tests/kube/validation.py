"""Validates objects against a CRD's structural schema the way the API server does: OpenAPI
keywords through jsonschema, defaults applied, and ``x-kubernetes-validations`` CEL rules
evaluated with cel-python; and validates CRDs themselves as the API server does when they are
written: structural schemas, CEL rules that compile, and CEL rules the cost estimator accepts.
Used by the API emulator and by the tests of examples/."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel

Schema = dict[str, Any]


def crd_schema(crd: dict[str, Any]) -> Schema:
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Structural defaulting: fill absent properties that have a ``default``, recursively."""
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = apply_defaults(value[name], child)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in schema.get("properties", {}):
                    value[name] = apply_defaults(value[name], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def _json_schema(schema: Schema) -> Schema:
    """OpenAPI v3 -> JSON Schema: int-or-string, and nothing Kubernetes-only to trip on."""
    if schema.get("x-kubernetes-int-or-string"):
        int_or_string: Schema = {"type": ["integer", "string"]}
        if "pattern" in schema:  # a Quantity: JSON Schema applies patterns to strings only
            int_or_string["pattern"] = schema["pattern"]
        return int_or_string
    converted: Schema = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            converted[key] = {name: _json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            converted[key] = _json_schema(value)
        else:
            converted[key] = value
    return converted


@cache
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _cel_errors(value: Any, schema: Schema, path: str) -> list[str]:
    errors = []
    for check in schema.get("x-kubernetes-validations", []):
        result = _program(check["rule"]).evaluate({"self": json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and result):
            # As the API server words it: `spec.x: Invalid value: "object": <message>`.
            if isinstance(value, dict | list):
                shown = '"object"' if isinstance(value, dict) else '"array"'
            else:
                shown = json.dumps(value)
            message = check.get("message", f"failed rule: {check['rule']}")
            errors.append(f"{path.lstrip('.') or '<nil>'}: Invalid value: {shown}: {message}")
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                errors += _cel_errors(value[name], child, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += _cel_errors(item, schema["items"], f"{path}[{index}]")
    return errors


_validators: dict[int, tuple[Schema, Any]] = {}  # id -> (the schema, kept alive; its validator)


def _validator(schema: Schema) -> Any:
    """One validator per schema: CRD schemas do not change while their type is served."""
    found = _validators.get(id(schema))
    if found is None or found[0] is not schema:
        if len(_validators) >= 64:  # tests build many schemas: keep the latest few
            _validators.clear()
        found = _validators[id(schema)] = (schema, jsonschema.Draft7Validator(_json_schema(schema)))
    return found[1]


def validate(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Problems with ``obj`` (already defaulted), as the API server words them."""
    validator = _validator(schema)
    errors = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
    if errors:
        return errors
    return _cel_errors(obj, schema, "")


# ---------------------------------------------------------------------- custom resources' metadata


# ---------------------------------------------------------------------- CRDs themselves

# The API server's CEL budget (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel):
PER_CALL_LIMIT = 1_000_000
CRD_COST_LIMIT = 100_000_000
MAX_REQUEST_BYTES = 3 * 1024 * 1024
UNBOUNDED_STRING = MAX_REQUEST_BYTES  # a string may take the whole request
UNBOUNDED_LIST = MAX_REQUEST_BYTES // 2  # the smallest element serialises in two bytes
MACRO_BODY = 10  # a macro's body: a few comparisons per element
_CALL = re.compile(
    r"(self(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\.(matches|contains|startsWith|endsWith|find|findAll|"
    r"split|replace|lowerAscii|upperAscii|all|exists|exists_one|map|filter)\("
)
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
ADVICE = (
    "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, "
    "maps, and strings are declared)"
)


def crd_problems(crd: dict[str, Any]) -> list[str]:
    """What the API server refuses in a CustomResourceDefinition's schemas."""
    errors: list[str] = []
    for index, version in enumerate(crd.get("spec", {}).get("versions") or []):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        where = f"spec.versions[{index}].schema.openAPIV3Schema"
        if not isinstance(schema, dict):
            errors.append(f"{where}: Required value: schemas are required")
            continue
        errors += _structural_problems(schema, where, root=True)
        total = 0.0
        for path, node, cardinality in _nodes(schema, where, 1.0):
            for rule_index, check in enumerate(node.get("x-kubernetes-validations") or []):
                rule_path = f"{path}.x-kubernetes-validations[{rule_index}].rule"
                try:
                    _program(check["rule"])
                except Exception as error:  # noqa: BLE001 - cel-python's parse errors share no base
                    errors.append(
                        f"{rule_path}: Invalid value: {check['rule']!r}: compilation failed: {error}"
                    )
                    continue
                cost = _rule_cost(check["rule"], node)
                if cost > PER_CALL_LIMIT:
                    factor = cost / PER_CALL_LIMIT
                    errors.append(
                        f"{rule_path}: Forbidden: estimated rule cost exceeds budget by factor of "
                        f"{factor:.1f}x {ADVICE}"
                    )
                total += cost * cardinality
        if total > CRD_COST_LIMIT:
            errors.append(
                f"{where}: Forbidden: x-kubernetes-validations estimated rule cost total for "
                f"entire OpenAPIv3 schema exceeds budget by factor of "
                f"{total / CRD_COST_LIMIT:.1f}x {ADVICE}"
            )
    return errors


def _nodes(schema: Schema, path: str, cardinality: float) -> Iterator[tuple[str, Schema, float]]:
    """Every node, with how many times a rule on it may run per object."""
    yield path, schema, cardinality
    for name, child in (schema.get("properties") or {}).items():
        yield from _nodes(child, f"{path}.properties[{name}]", cardinality)
    if isinstance(schema.get("items"), dict):
        size = schema.get("maxItems", UNBOUNDED_LIST)
        yield from _nodes(schema["items"], f"{path}.items", cardinality * size)
    if isinstance(schema.get("additionalProperties"), dict):
        size = schema.get("maxProperties", UNBOUNDED_LIST)
        yield from _nodes(
            schema["additionalProperties"], f"{path}.additionalProperties", cardinality * size
        )


def _target(node: Schema, reference: str) -> Schema | None:
    for name in reference.split(".")[1:]:
        node = (node.get("properties") or {}).get(name)  # type: ignore[assignment]
        if node is None:
            return None
    return node


def _rule_cost(rule: str, node: Schema) -> float:
    """An estimate of the worst-case cost of one evaluation, the way the API server's
    estimator sizes it: string functions cost the string's maximum length, macros the list's
    maximum size times their body."""
    cost = 1.0
    for match in _CALL.finditer(rule):
        target = _target(node, match.group(1))
        if target is None:
            continue
        if match.group(2) in _MACROS:
            size = target.get("maxItems") or target.get("maxProperties") or UNBOUNDED_LIST
            cost += float(size) * MACRO_BODY
        else:
            cost += float(target.get("maxLength") or UNBOUNDED_STRING)
    return cost


def _structural_problems(schema: Schema, path: str, root: bool = False) -> list[str]:
    """The structural-schema rules a v1 CRD must follow (the ones our generator could break)."""
    errors = []
    if "$ref" in schema:
        errors.append(f"{path}.$ref: Forbidden: $ref is not allowed in structural schemas")
    typed = (
        "type" in schema
        or schema.get("x-kubernetes-int-or-string")
        or schema.get("x-kubernetes-preserve-unknown-fields")
    )
    if not typed and not root:
        errors.append(f"{path}.type: Required value: must not be empty for specified object fields")
    for name, child in (schema.get("properties") or {}).items():
        errors += _structural_problems(child, f"{path}.properties[{name}]")
    items = schema.get("items")
    if isinstance(items, dict):
        errors += _structural_problems(items, f"{path}.items")
        if schema.get("x-kubernetes-list-type") == "map":
            for key in schema.get("x-kubernetes-list-map-keys") or []:
                child = (items.get("properties") or {}).get(key, {})
                if key not in (items.get("required") or []) and "default" not in child:
                    errors.append(
                        f"{path}.items.properties[{key}]: Required value: this property is in "
                        "x-kubernetes-list-map-keys, so it must have a default or be a required "
                        "property"
                    )
    if isinstance(schema.get("additionalProperties"), dict):
        errors += _structural_problems(
            schema["additionalProperties"], f"{path}.additionalProperties"
        )
    return errors
