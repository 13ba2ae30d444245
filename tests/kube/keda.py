"""KEDA's CustomResourceDefinitions for the API emulator: ScaledObject and TriggerAuthentication
of ``keda.sh/v1alpha1``, so the operator's KEDA objects meet the validation and pruning of a
cluster where KEDA is installed.

These are written from KEDA's API reference for its 2.x releases (the ScaledObject and
TriggerAuthentication specifications, ``KEDA_DOCS_VERSION``), not copied from KEDA's generated
CRDs, which no package registry this project can reach publishes. They describe the fields a
structural schema keeps; what they leave out (KEDA's other authentication providers,
``scalingModifiers``, the status in detail) would be pruned here where a real KEDA CRD keeps it,
which only matters to an object that sets those fields: the operator sets none of them, and its
tests check that an applied object comes back unpruned. The HorizontalPodAutoscaler
``behavior`` is Kubernetes' own schema as KEDA 2.16 embeds it. A test checks every field these
CRDs describe against the models generated from KEDA's own CRDs (cloudcoil-models-keda,
2.16.1), which were published where this project can install them.
"""

from __future__ import annotations

from typing import Any

from agentflow_operator.upstream import structural

KEDA_DOCS_VERSION = "2.16"
Schema = dict[str, Any]

_INT32: Schema = {"type": "integer", "format": "int32"}
_STRING: Schema = {"type": "string"}
_STATUS: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _behavior() -> Schema:
    """autoscaling/v2 HorizontalPodAutoscalerBehavior as KEDA 2.16 embeds it: from the
    Kubernetes libraries of its time, without the ``tolerance`` of the scaling rules that
    Kubernetes added later (a test compares these CRDs with KEDA's published models)."""
    schema = structural("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior")
    for rules in schema["properties"].values():
        rules["properties"].pop("tolerance", None)
    return schema


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


SCALED_OBJECT_SPEC = _object(
    {
        "scaleTargetRef": _object(
            {
                "apiVersion": _STRING,
                "kind": _STRING,
                "name": _STRING,
                "envSourceContainerName": _STRING,
            },
            ["name"],
        ),
        "pollingInterval": _INT32,
        "cooldownPeriod": _INT32,
        "initialCooldownPeriod": _INT32,
        "idleReplicaCount": _INT32,
        "minReplicaCount": _INT32,
        "maxReplicaCount": _INT32,
        "fallback": _object(
            {"failureThreshold": _INT32, "replicas": _INT32}, ["failureThreshold", "replicas"]
        ),
        "advanced": _object(
            {
                "restoreToOriginalReplicaCount": {"type": "boolean"},
                "horizontalPodAutoscalerConfig": _object(
                    {
                        "name": _STRING,
                        "behavior": _behavior(),
                    }
                ),
            }
        ),
        "triggers": {
            "type": "array",
            "items": _object(
                {
                    "type": _STRING,
                    "name": _STRING,
                    "metadata": {"type": "object", "additionalProperties": _STRING},
                    "authenticationRef": _object({"name": _STRING, "kind": _STRING}, ["name"]),
                    "metricType": _STRING,
                    "useCachedMetrics": {"type": "boolean"},
                },
                ["metadata", "type"],
            ),
        },
    },
    ["scaleTargetRef", "triggers"],
)

TRIGGER_AUTHENTICATION_SPEC = _object(
    {
        "secretTargetRef": {
            "type": "array",
            "items": _object(
                {"parameter": _STRING, "name": _STRING, "key": _STRING},
                ["key", "name", "parameter"],
            ),
        },
        "env": {
            "type": "array",
            "items": _object(
                {"parameter": _STRING, "name": _STRING, "containerName": _STRING},
                ["name", "parameter"],
            ),
        },
        "podIdentity": _object({"provider": _STRING, "identityId": _STRING}, ["provider"]),
    }
)


def _crd(kind: str, plural: str, short: str, spec: Schema) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.keda.sh"},
        "spec": {
            "group": "keda.sh",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": _object(
                            {
                                "apiVersion": _STRING,
                                "kind": _STRING,
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": _STATUS,
                            },
                            ["spec"],
                        )
                    },
                }
            ],
        },
    }


CRDS = [
    _crd("ScaledObject", "scaledobjects", "so", SCALED_OBJECT_SPEC),
    _crd("TriggerAuthentication", "triggerauthentications", "ta", TRIGGER_AUTHENTICATION_SPEC),
]
