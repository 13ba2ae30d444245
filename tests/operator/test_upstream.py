"""The upstream Kubernetes schemas the AgentGraph CRD embeds for the fields it passes through to
pods: vendored from kubernetes-validate, structural, and refusing what the upstream types
refuse."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from agentflow_operator import upstream
from tests.kube.validation import validate

VENDORED = Path(upstream.__file__).with_name(upstream.VENDORED_FILE)
REGENERATE = "run `python -m agentflow_operator.upstream` and review the diff"

ENV_VAR = "io.k8s.api.core.v1.EnvVar"
ENV_FROM = "io.k8s.api.core.v1.EnvFromSource"
RESOURCES = "io.k8s.api.core.v1.ResourceRequirements"
TOLERATION = "io.k8s.api.core.v1.Toleration"
AFFINITY = "io.k8s.api.core.v1.Affinity"
SPREAD = "io.k8s.api.core.v1.TopologySpreadConstraint"
REFERENCE = "io.k8s.api.core.v1.LocalObjectReference"
BEHAVIOR = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior"
SCALARS = {"string", "integer", "number", "boolean"}


# ---------------------------------------------------------------------- the vendored file


def test_the_vendored_file_is_what_kubernetes_validate_ships():
    assert json.loads(VENDORED.read_text()) == upstream.vendor(), (
        f"{VENDORED.name} differs from kubernetes-validate's Kubernetes"
        f" {upstream.UPSTREAM_VERSION} schemas: {REGENERATE}"
    )


def test_the_vendored_file_is_written_as_the_entry_point_writes_it():
    expected = json.dumps(upstream.vendor(), indent=1, sort_keys=True) + "\n"
    assert VENDORED.read_text() == expected, f"{VENDORED.name} was edited by hand: {REGENERATE}"


def test_the_embedded_version_is_the_newest_kubernetes_validate_ships():
    newest = kubernetes_validate.latest_version()
    assert newest == upstream.UPSTREAM_VERSION, (
        f"kubernetes-validate now ships Kubernetes {newest}: set UPSTREAM_VERSION to it in"
        f" agentflow_operator/upstream.py, {REGENERATE}, then regenerate the CRD"
    )


def test_the_runtime_reads_only_the_vendored_file():
    # The operator's image has no kubernetes-validate: make importing it fail, as it would there.
    script = (
        "import sys; sys.modules['kubernetes_validate'] = None\n"
        "from agentflow_operator.upstream import EMBEDDED, structural\n"
        "print(len([structural(name) for name in EMBEDDED]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(upstream.EMBEDDED))


def test_structural_returns_a_copy_the_caller_may_change():
    first = upstream.structural(ENV_VAR)
    first["properties"]["name"]["description"] = "changed"
    first["required"].append("value")
    second = upstream.structural(ENV_VAR)
    assert second["properties"]["name"]["description"] != "changed"
    assert second["required"] == ["name"]


# ---------------------------------------------------------------------- structural


def nodes(schema: dict, path: str = ""):
    """Every schema node with its path: properties, list items and map values."""
    yield path or "<root>", schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}.*")


def structural_problems(schema: dict) -> list[str]:
    """What the API server's structural-schema checks would say (those that can apply to a
    schema made of properties, items, maps and int-or-string)."""
    found = []
    for path, node in nodes(schema):
        for keyword in ("$ref", "oneOf", "allOf", "not", "nullable"):
            if keyword in node:
                found.append(f"{path}: {keyword}")
        kind = node.get("type")
        if isinstance(kind, list):
            found.append(f"{path}: type {kind} is not one type")
        if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
            found.append(f"{path}: additionalProperties: {node['additionalProperties']}")
        if "properties" in node and "additionalProperties" in node:
            found.append(f"{path}: both properties and additionalProperties")
        if node.get("x-kubernetes-int-or-string"):
            if kind is not None:
                found.append(f"{path}: int-or-string with a type")
            if node.get("anyOf") != [{"type": "integer"}, {"type": "string"}]:
                found.append(f"{path}: int-or-string anyOf is {node.get('anyOf')}")
        else:
            if "anyOf" in node:
                found.append(f"{path}: anyOf")
            if kind is None and not node.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{path}: no type")
        if ("properties" in node or "additionalProperties" in node) and kind != "object":
            found.append(f"{path}: fields on a {kind}")
        if "x-kubernetes-map-type" in node and kind != "object":
            found.append(f"{path}: x-kubernetes-map-type on a {kind}")
        if "items" in node and kind != "array":
            found.append(f"{path}: items on a {kind}")
        list_type = node.get("x-kubernetes-list-type")
        if list_type is not None and kind != "array":
            found.append(f"{path}: x-kubernetes-list-type on a {kind}")
        items = node.get("items", {})
        keys = node.get("x-kubernetes-list-map-keys")
        if (list_type == "map") != (keys is not None):
            found.append(f"{path}: list-type {list_type} with list-map-keys {keys}")
        if list_type == "map":
            if items.get("type") != "object":
                found.append(f"{path}: a list-map of {items.get('type')}")
            for key in keys or []:
                field = items.get("properties", {}).get(key)
                if field is None or field.get("type") not in SCALARS:
                    found.append(f"{path}: list-map key {key} is not a scalar field")
                elif key not in items.get("required", []) and "default" not in field:
                    found.append(f"{path}: list-map key {key} is neither required nor defaulted")
        if list_type == "set" and not (
            items.get("type") in SCALARS or items.get("x-kubernetes-map-type") == "atomic"
        ):
            found.append(f"{path}: a set of non-atomic {items.get('type')}")
    return found


@pytest.mark.parametrize("definition", upstream.EMBEDDED)
def test_the_schema_is_structural(definition):
    assert structural_problems(upstream.structural(definition)) == []


@pytest.mark.parametrize("definition", upstream.EMBEDDED)
def test_descriptions_are_kept(definition):
    schema = upstream.structural(definition)
    undescribed = [
        path for path, node in nodes(schema) if path != "<root>" and not node.get("description")
    ]
    # Only map values and list items (whose field says what they are) go without one.
    assert all(path.endswith(("[*]", ".*")) for path in undescribed), undescribed


def test_the_quantity_is_int_or_string_with_the_controller_gen_pattern():
    divisor = upstream.structural(ENV_VAR)["properties"]["valueFrom"]["properties"][
        "resourceFieldRef"
    ]["properties"]["divisor"]
    assert divisor == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "description": divisor["description"],
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        "x-kubernetes-int-or-string": True,
    }
    assert divisor["description"].startswith("Specifies the output format")


def test_list_and_map_markers_are_kept():
    claims = upstream.structural(RESOURCES)["properties"]["claims"]
    assert claims["x-kubernetes-list-type"] == "map"
    assert claims["x-kubernetes-list-map-keys"] == ["name"]
    assert claims["items"]["required"] == ["name"]
    selector = upstream.structural(SPREAD)["properties"]["labelSelector"]
    assert selector["x-kubernetes-map-type"] == "atomic"
    assert selector["properties"]["matchExpressions"]["x-kubernetes-list-type"] == "atomic"


def test_a_crd_embedding_them_is_a_valid_custom_resource_definition():
    # kubernetes-validate's schema of JSONSchemaProps: keyword names and their value types.
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Thing", "plural": "things"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": wrap(*upstream.EMBEDDED)},
                }
            ],
        },
    }
    kubernetes_validate.validate(crd, upstream.UPSTREAM_VERSION, strict=True)


def test_a_recursive_definition_is_refused(monkeypatch):
    definitions = {
        "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}},
    }
    monkeypatch.setattr(upstream, "_load", lambda: definitions)
    with pytest.raises(ValueError, match="recursive definition: Node -> Node"):
        upstream.structural("Node")


def test_an_unknown_keyword_is_refused(monkeypatch):
    definitions = {"Odd": {"type": "object", "allOf": [{"type": "object"}]}}
    monkeypatch.setattr(upstream, "_load", lambda: definitions)
    with pytest.raises(ValueError, match="no structural equivalent for 'allOf'"):
        upstream.structural("Odd")


def test_unbounded_lists_what_cel_cost_estimates_cannot_bound():
    assert upstream.unbounded(upstream.structural(REFERENCE)) == ["name: string"]
    assert upstream.unbounded(upstream.structural(RESOURCES)) == [
        "claims: list",
        "claims[*].name: string",
        "claims[*].request: string",
        "limits: map",
        "limits.*: int-or-string",
        "requests: map",
        "requests.*: int-or-string",
    ]


# ---------------------------------------------------------------------- round trip


def wrap(*definitions: str) -> dict:
    """A small object schema with one field per definition, named after it."""
    return {
        "type": "object",
        "properties": {name: upstream.structural(name) for name in definitions},
    }


def problems(definition: str, value) -> list[str]:
    return validate({definition: value}, wrap(definition))


VALID = [
    (ENV_VAR, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}),
    (
        ENV_VAR,
        {
            "name": "CPU_LIMIT",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": 1}},
        },
    ),
    (ENV_VAR, {"name": "MODE", "value": "production"}),
    (ENV_FROM, {"prefix": "DB_", "secretRef": {"name": "database", "optional": True}}),
    (ENV_FROM, {"configMapRef": {"name": "settings"}}),
    (RESOURCES, {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": "500m"}}),
    (RESOURCES, {"requests": {"memory": "1.5Gi", "ephemeral-storage": "2e9"}}),
    (
        TOLERATION,
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "agents",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ),
    (TOLERATION, {"operator": "Exists"}),
    (
        AFFINITY,
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app": "support-agent"}},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
    ),
    (
        AFFINITY,
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "gpu", "operator": "In", "values": ["a100", "h100"]}
                            ]
                        }
                    ]
                }
            }
        },
    ),
    (
        SPREAD,
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {
                "matchExpressions": [{"key": "app", "operator": "In", "values": ["agent"]}]
            },
            "matchLabelKeys": ["pod-template-hash"],
        },
    ),
    (REFERENCE, {"name": "registry-credentials"}),
    (
        BEHAVIOR,
        {
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 50, "periodSeconds": 60},
                    {"type": "Pods", "value": 2, "periodSeconds": 60},
                ],
            },
            "scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
        },
    ),
]

INVALID = [
    pytest.param(ENV_VAR, {"value": "x"}, "'name' is a required property", id="env-without-name"),
    pytest.param(
        ENV_VAR,
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api"}}},
        "'key' is a required property",
        id="secret-ref-without-key",
    ),
    pytest.param(
        ENV_FROM, {"secretRef": {"name": 3}}, "3 is not of type 'string'", id="env-from-name"
    ),
    pytest.param(
        RESOURCES,
        {"limits": {"cpu": 0.5}},
        "0.5 is not of type 'integer', 'string'",
        # Upstream takes any JSON number; a CRD can only say int-or-string (as controller-gen's
        # CRDs do), so a fraction has to be written "500m".
        id="fractional-quantity",
    ),
    pytest.param(
        RESOURCES,
        {"limits": {"cpu": "lots"}},
        "does not match",
        id="quantity-not-a-quantity",
    ),
    pytest.param(
        RESOURCES,
        {"claims": [{"request": "gpu"}]},
        "'name' is a required property",
        id="claim-without-name",
    ),
    pytest.param(
        TOLERATION,
        {"key": "dedicated", "tolerationSeconds": "x"},
        "'x' is not of type 'integer'",
        id="toleration-seconds-not-a-number",
    ),
    pytest.param(
        AFFINITY,
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": {}}}
                ]
            }
        },
        "'topologyKey' is a required property",
        id="affinity-term-without-topology-key",
    ),
    pytest.param(
        SPREAD,
        {"maxSkew": 1, "topologyKey": "zone"},
        "'whenUnsatisfiable' is a required property",
        id="spread-without-when-unsatisfiable",
    ),
    pytest.param(REFERENCE, {"name": ["a"]}, "['a'] is not of type 'string'", id="reference-name"),
    pytest.param(
        BEHAVIOR,
        {"scaleDown": {"policies": [{"value": 50, "periodSeconds": 60}]}},
        "'type' is a required property",
        id="scaling-policy-without-type",
    ),
]


def test_every_embedded_type_has_valid_and_invalid_samples():
    assert {definition for definition, _ in VALID} == set(upstream.EMBEDDED)
    assert {case.values[0] for case in INVALID} == set(upstream.EMBEDDED)


@pytest.mark.parametrize(("definition", "value"), VALID)
def test_valid_values_are_accepted(definition, value):
    assert problems(definition, value) == []


@pytest.mark.parametrize(("definition", "value", "message"), INVALID)
def test_invalid_values_are_refused(definition, value, message):
    found = problems(definition, value)
    assert any(message in problem for problem in found), found


@pytest.mark.parametrize(
    ("quantity", "accepted"),
    [
        (1, True),
        ("1", True),
        ("500m", True),
        ("1Gi", True),
        ("1.5Gi", True),
        ("2e9", True),
        ("+.5k", True),
        ("lots", False),
        ("1GB", False),
        ("1 Gi", False),
        ("", False),
    ],
)
def test_the_quantity_pattern(quantity, accepted):
    # What the API server does with the pattern that tests.kube.validation leaves out: the
    # structural schema is plain JSON Schema once the x-kubernetes-* markers are ignored.
    validator = jsonschema.Draft7Validator(upstream.structural(RESOURCES))
    errors = list(validator.iter_errors({"limits": {"cpu": quantity}}))
    assert (errors == []) == accepted, errors
