"""Generates the AgentGraph CustomResourceDefinition from the API models.

Pydantic writes JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: every ``$ref``
inlined, no ``null`` alternatives (an absent field is simply not set), no ``title``, and no
``additionalProperties: false`` (unknown fields are pruned by the API server instead). Fields of
Kubernetes types (env, resources, affinity...) get the upstream schemas (upstream.py), so the
API server validates them when the AgentGraph is written.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from agentflow_operator.api import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    UPSTREAM_MARKER,
    VERSION,
    AgentGraphSpec,
    AgentGraphStatus,
)
from agentflow_operator.upstream import structural

_READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = [
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": f"{_READY}.status",
        "description": "Whether the graph serves requests.",
    },
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": f"{_READY}.reason",
        "description": "Why it is (not) ready.",
    },
    {
        "name": "Replicas",
        "type": "integer",
        "jsonPath": ".status.readyReplicas",
        "description": "Ready pods.",
    },
    {
        "name": "URL",
        "type": "string",
        "jsonPath": ".status.url",
        "description": "In-cluster URL of the graph's API.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def upstream_fields(model: type[BaseModel], prefix: str) -> dict[str, str]:
    """Where ``model`` (and the models it holds) has fields of Kubernetes types: path (as
    ``spec.resources``) -> upstream definition."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    found: dict[str, str] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        for alternative in [node, node.get("items") or {}, *node.get("anyOf", [])]:
            if UPSTREAM_MARKER in alternative:
                found[path] = alternative[UPSTREAM_MARKER]
                return
            if "$ref" in alternative:
                walk(definitions[alternative["$ref"].rsplit("/", 1)[1]], path)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")

    walk(raw, prefix)
    return found


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    return _convert(raw, definitions)


def _convert(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if UPSTREAM_MARKER in node:  # a Kubernetes type: its upstream schema, as controller-gen does
        extra = {k: v for k, v in node.items() if k in ("description", "default")}
        return {**structural(node[UPSTREAM_MARKER]), **extra}
    if "$ref" in node:
        target = _convert(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
        return {**target, **{k: v for k, v in node.items() if k in ("description", "default")}}
    alternatives = [a for a in node.get("anyOf", []) if a.get("type") != "null"]
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        if len(alternatives) != 1:
            raise ValueError(f"cannot express {node} in a structural schema")
        inner = _convert(alternatives[0], definitions)
        rest = {
            k: v
            for k, v in node.items()
            if k not in ("anyOf", "title") and not (k == "default" and v is None)
        }
        return {**inner, **rest}
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue
        if key == "properties":
            converted[key] = {name: _convert(child, definitions) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            converted[key] = _convert(value, definitions)
        else:
            converted[key] = value
    return converted


def build_crd() -> dict[str, Any]:
    spec = structural_schema(AgentGraphSpec)
    status = structural_schema(AgentGraphStatus)
    spec["description"] = "What to run: the graph, its image, scaling, security and placement."
    status["description"] = "What runs, as observed by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": ["agentflow"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An agent graph served over HTTP/SSE by replicas of "
                            "the agentflow runtime behind a Service.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = (
        "# Generated by `agentflow-operator crd` from agentflow_operator/api.py: do not edit.\n"
    )
    body: str = yaml.safe_dump(build_crd(), sort_keys=False, width=100)
    return header + body
