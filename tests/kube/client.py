"""A client of the emulated cluster, for tests to act as users and controllers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.kube.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "agentgraphs.agentflow.dev.yaml").read_text())
MERGE = {"content-type": "application/merge-patch+json"}
# The operator's shared Postgres DSN (AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET), made by prepare().
DEFAULT_DSN_SECRET = "agentflow-system/checkpointer"


@dataclass
class Kube:
    """A client of the emulated cluster, for the test to act as users and controllers."""

    server: EmulatorServer
    http: httpx.Client

    def path(self, api_version: str, plural: str, namespace: str | None, name: str = "") -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{scope}/{plural}" + (f"/{name}" if name else "")

    def get(
        self, api_version: str, plural: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        response = self.http.get(self.path(api_version, plural, namespace, name))
        found: dict[str, Any] | None = response.json() if response.status_code == 200 else None
        return found

    def create(self, obj: dict[str, Any], plural: str) -> dict[str, Any]:
        namespace = obj["metadata"].get("namespace")
        response = self.http.post(self.path(obj["apiVersion"], plural, namespace), json=obj)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def patch(
        self,
        api_version: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        sub: str = "",
    ) -> dict[str, Any]:
        path = self.path(api_version, plural, namespace, name) + (f"/{sub}" if sub else "")
        response = self.http.patch(path, json=patch, headers=MERGE)
        assert response.status_code == 200, response.text
        patched: dict[str, Any] = response.json()
        return patched

    def delete(self, api_version: str, plural: str, namespace: str | None, name: str) -> None:
        self.http.delete(self.path(api_version, plural, namespace, name))


def prepare(kube: Kube) -> None:
    """Make the cluster the operator's tests and benchmark start from: the AgentGraph CRD, the
    namespaces agentflow-system and agents, and the default DSN Secret."""
    kube.create(CRD, "customresourcedefinitions")
    for namespace in ("agentflow-system", "agents"):
        kube.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            "namespaces",
        )
    home, name = DEFAULT_DSN_SECRET.split("/")
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": home},
            "stringData": {
                "dsn": "postgresql://agentflow:pw@postgres.agentflow-system:5432/agentflow"
            },
        },
        "secrets",
    )
