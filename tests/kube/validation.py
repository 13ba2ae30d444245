"""Validates objects against a CRD's structural schema the way the API server does: OpenAPI
keywords through jsonschema, defaults applied, and ``x-kubernetes-validations`` CEL rules
evaluated with cel-python. Used by the API emulator and by the tests of examples/."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import celpy
import jsonschema

Schema = dict[str, Any]


def crd_schema(crd: dict[str, Any]) -> Schema:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


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
        return {"anyOf": [{"type": "integer"}, {"type": "string"}]}
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
        result = _program(check["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and result):
            errors.append(f"{path}: Invalid value: {check.get('message', check['rule'])}")
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                errors += _cel_errors(value[name], child, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += _cel_errors(item, schema["items"], f"{path}[{index}]")
    return errors


def validate(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Problems with ``obj`` (already defaulted), as the API server words them."""
    validator = jsonschema.Draft7Validator(_json_schema(schema))
    errors = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
    if errors:
        return errors
    return _cel_errors(obj, schema, "<root>")


def unknown_fields(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Fields the schema does not declare (and does not let through with
    x-kubernetes-preserve-unknown-fields): what strict field validation refuses and what
    pruning removes."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-int-or-string"
    ):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, child in value.items():
            where = f"{path}.{name}" if path else name
            if properties is not None and name in properties:
                found += unknown_fields(child, properties[name], where)
            elif isinstance(extra, dict):
                found += unknown_fields(child, extra, where)
            elif properties is not None or extra is False:
                found.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


def prune(value: Any, schema: Schema) -> Any:
    """Drop undeclared fields, as the API server does for custom resources."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-int-or-string"
    ):
        return value
    if isinstance(value, dict):
        properties, extra = schema.get("properties"), schema.get("additionalProperties")
        if properties is None and not isinstance(extra, dict):
            return value
        return {
            name: prune(child, properties[name] if properties and name in properties else extra)
            for name, child in value.items()
            if (properties and name in properties) or isinstance(extra, dict)
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in value]
    return value
