"""What ``kubectl get`` shows: the API server renders a list as a Table (``Accept: ...;as=Table``)
whose columns are a CRD's additionalPrinterColumns, or, for built-in kinds, those of
kube-apiserver's own printers (pkg/printers/internalversion), the ones listed here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.kube.jsonpath import evaluate as jsonpath

Obj = dict[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    cell: Callable[[Obj], Any]
    priority: int = 0


def age(obj: Obj) -> str:
    """The API server renders dates as ages, like "5m" or "2d"."""
    timestamp = obj["metadata"].get("creationTimestamp")
    if not timestamp:
        return "<unknown>"
    created = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _ports(obj: Obj) -> str:
    ports = _spec(obj).get("ports") or []
    shown = [
        f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort")
        else f"{p['port']}/{p.get('protocol', 'TCP')}"
        for p in ports
    ]
    return ",".join(shown) or "<none>"


def _external_ip(obj: Obj) -> str:
    ingress = (_status(obj).get("loadBalancer") or {}).get("ingress") or []
    found = [i.get("ip") or i.get("hostname") for i in ingress]
    if found:
        return ",".join(str(f) for f in found)
    return "<pending>" if _spec(obj).get("type") == "LoadBalancer" else "<none>"


def _targets(obj: Obj) -> str:
    current = {
        (m.get("resource") or {}).get("name"): m for m in _status(obj).get("currentMetrics") or []
    }
    shown = []
    for metric in _spec(obj).get("metrics") or []:
        resource = metric.get("resource") or {}
        target = (resource.get("target") or {}).get("averageUtilization")
        now = ((current.get(resource.get("name")) or {}).get("resource") or {}).get("current")
        value = f"{now['averageUtilization']}%" if now else "<unknown>"
        shown.append(f"{resource.get('name', metric.get('type'))}: {value}/{target}%")
    return ", ".join(shown) or "<none>"


BUILT_IN: dict[str, list[Column]] = {
    "Deployment": [
        Column(
            "Ready",
            "string",
            lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}",
        ),
        Column("Up-to-date", "integer", lambda o: _status(o).get("updatedReplicas", 0)),
        Column("Available", "integer", lambda o: _status(o).get("availableReplicas", 0)),
    ],
    "ReplicaSet": [
        Column("Desired", "integer", lambda o: _spec(o).get("replicas", 1)),
        Column("Current", "integer", lambda o: _status(o).get("replicas", 0)),
        Column("Ready", "integer", lambda o: _status(o).get("readyReplicas", 0)),
    ],
    "Service": [
        Column("Type", "string", lambda o: _spec(o).get("type", "ClusterIP")),
        Column("Cluster-IP", "string", lambda o: _spec(o).get("clusterIP") or "<none>"),
        Column("External-IP", "string", _external_ip),
        Column("Port(s)", "string", _ports),
    ],
    "HorizontalPodAutoscaler": [
        Column(
            "Reference",
            "string",
            lambda o: "{kind}/{name}".format(**(_spec(o).get("scaleTargetRef") or {})),
        ),
        Column("Targets", "string", _targets),
        Column("MinPods", "integer", lambda o: _spec(o).get("minReplicas", 1)),
        Column("MaxPods", "integer", lambda o: _spec(o).get("maxReplicas")),
        Column("Replicas", "integer", lambda o: _status(o).get("currentReplicas", 0)),
    ],
    "PodDisruptionBudget": [
        Column("Min Available", "string", lambda o: str(_spec(o).get("minAvailable", "N/A"))),
        Column("Max Unavailable", "string", lambda o: str(_spec(o).get("maxUnavailable", "N/A"))),
        Column("Allowed Disruptions", "integer", lambda o: _status(o).get("disruptionsAllowed", 0)),
    ],
    "Secret": [
        Column("Type", "string", lambda o: o.get("type", "Opaque")),
        Column("Data", "integer", lambda o: len(o.get("data") or {})),
    ],
    "ConfigMap": [Column("Data", "integer", lambda o: len(o.get("data") or {}))],
    "Namespace": [Column("Status", "string", lambda o: _status(o).get("phase", "Active"))],
}


def columns_of(kind: str, printer_columns: list[Obj]) -> list[Column]:
    """A CRD's printer columns, or a built-in kind's; Age last for built-ins, as kubectl's."""
    if printer_columns:
        return [_crd_column(column) for column in printer_columns]
    return [*BUILT_IN.get(kind, []), Column("Age", "date", age)]


def _crd_column(column: Obj) -> Column:
    path, kind = column["jsonPath"], column.get("type", "string")

    def cell(obj: Obj) -> Any:
        values = jsonpath(obj, path)
        if not values:
            return None
        if kind == "date":
            return age({"metadata": {"creationTimestamp": values[0]}})
        return values[0] if len(values) == 1 else ",".join(map(str, values))

    return Column(column["name"], kind, cell, column.get("priority", 0))


def table(kind: str, printer_columns: list[Obj], items: list[Obj]) -> Obj:
    columns = columns_of(kind, printer_columns)
    definitions = [
        {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
    ] + [
        {"name": c.name, "type": c.type, "format": "", "description": "", "priority": c.priority}
        for c in columns
    ]
    rows = [
        {
            "cells": [obj["metadata"]["name"], *(column.cell(obj) for column in columns)],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {
                    "name": obj["metadata"]["name"],
                    "namespace": obj["metadata"].get("namespace"),
                    "creationTimestamp": obj["metadata"].get("creationTimestamp"),
                },
            },
        }
        for obj in items
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": definitions,
        "rows": rows,
    }
