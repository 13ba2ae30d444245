"""The AgentGraph CRD: generated from the models, structural, described, and enforcing its
cross-field rules (CEL, evaluated here with cel-python)."""

import copy
from pathlib import Path

import pytest
import yaml

from agentflow_operator.api import AgentGraphSpec
from agentflow_operator.crd import build_crd, crd_yaml
from tests.kube.validation import apply_defaults, crd_schema, validate

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "agentgraphs.agentflow.dev.yaml"
EXAMPLES = [
    ROOT / "examples" / name
    for name in ("agentgraph.yaml", "agentgraph-autoscaled.yaml", "agentgraph-keda.yaml")
]


def test_the_committed_crd_is_generated_from_the_models():
    assert CRD_FILE.read_text() == crd_yaml(), (
        "crds/ is stale: run `agentflow-operator crd > crds/agentgraphs.agentflow.dev.yaml`"
    )


def walk(schema: dict, path: str = ""):
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from walk(schema[key], f"{path}[{key}]")


def test_the_schema_is_structural_and_every_field_is_described():
    schema = crd_schema(build_crd())
    for path, node in walk(schema):
        assert "$ref" not in node, path
        assert "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), path
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), path
        described = path.startswith((".spec.", ".status.")) and "[" not in path
        if described:
            assert node.get("description"), f"{path} has no description"


def documents(path: Path, kind: str = "AgentGraph") -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(example):
    schema = crd_schema(build_crd())
    for graph in documents(example):
        assert validate(apply_defaults(copy.deepcopy(graph), schema), schema) == []
        AgentGraphSpec.model_validate(graph["spec"])  # and the operator can read it


def problems_of(spec: dict) -> list[str]:
    """What the API server would say of an AgentGraph with this spec."""
    schema = crd_schema(build_crd())
    graph = {
        "apiVersion": "agentflow.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": "x"},
        "spec": spec,
    }
    return validate(apply_defaults(graph, schema), schema)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "minReplicas must not exceed maxReplicas",
        ),
        (
            {
                "checkpointer": {
                    "redis": {"url": "redis://r", "urlSecretRef": {"name": "s", "key": "k"}}
                }
            },
            "set exactly one of url and urlSecretRef",
        ),
        (
            {
                "checkpointer": {
                    "type": "memory",
                    "postgres": {"dsnSecretRef": {"name": "s", "key": "k"}},
                }
            },
            "postgres settings need type: postgres",
        ),
        (
            {"disruption": {"minAvailable": 1, "maxUnavailable": 1}},
            "set at most one of minAvailable and maxUnavailable",
        ),
    ],
)
def test_cross_field_rules(change, message):
    errors = problems_of({"graph": "app.graph:app", **change})
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"graph": "not a graph"}, "spec.graph"),
        ({"graph": "a:b", "workers": 0}, "spec.workers"),
        ({"graph": "a:b", "mode": "staging"}, "spec.mode"),
        ({"graph": "a:b", "service": {"port": 70000}}, "spec.service.port"),
    ],
)
def test_schema_rules(spec, field):
    errors = problems_of(spec)
    assert any(error.startswith(field) for error in errors), errors


def test_the_committed_reference_is_generated_from_the_models():
    from agentflow_operator.reference import reference_markdown

    committed = (ROOT / "docs" / "agentgraph-reference.md").read_text()
    assert committed == reference_markdown(), (
        "docs/agentgraph-reference.md is stale: run "
        "`agentflow-operator reference > docs/agentgraph-reference.md`"
    )
