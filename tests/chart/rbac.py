"""Which RBAC rule allows a request the operator made (method, path, query)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Access:
    verb: str
    group: str
    resource: str  # "deployments" or "agentgraphs/status"
    namespace: str | None
    name: str | None


def access_of(method: str, path: str, query: dict[str, str]) -> Access | None:
    """The RBAC view of a request; None for discovery (allowed to every authenticated user)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    name = rest[1] if len(rest) > 1 else None
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return Access(verb, group, resource, namespace, name)


def allows(rule: dict[str, Any], access: Access) -> bool:
    return (
        access.group in rule.get("apiGroups", [])
        and access.resource in rule.get("resources", [])
        and (access.verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        and (not rule.get("resourceNames") or access.name in rule["resourceNames"])
    )


def permitted(objects: list[dict[str, Any]], subject: str, access: Access) -> bool:
    """Whether the rendered RBAC objects let ServiceAccount ``subject`` make this access."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(
            s.get("kind") == "ServiceAccount" and s.get("name") == subject
            for s in binding["subjects"]
        ):
            continue
        ref = binding["roleRef"]
        scope = None if ref["kind"] == "ClusterRole" else binding["metadata"].get("namespace")
        role = roles.get((ref["kind"], scope, ref["name"]))
        if role is None:
            continue
        in_scope = binding["kind"] == "ClusterRoleBinding" or access.namespace == binding[
            "metadata"
        ].get("namespace")
        if in_scope and any(allows(rule, access) for rule in role["rules"]):
            return True
    return False
