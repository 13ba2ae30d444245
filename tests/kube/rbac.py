"""RBAC as the API server's authorizer evaluates it, over the Roles, ClusterRoles and bindings
stored in the emulated cluster; and who the caller of a request is.

Users come from bearer tokens: ``serviceaccount:<namespace>:<name>`` is that ServiceAccount
(``system:serviceaccount:<namespace>:<name>``, groups ``system:serviceaccounts``,
``system:serviceaccounts:<namespace>`` and ``system:authenticated``); any other token, and no
token at all (the tests' own clients), is a cluster administrator (``system:masters``).
Not emulated: aggregated ClusterRoles, non-resource URLs, impersonation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
SERVICE_ACCOUNT_TOKEN = "serviceaccount:"
MASTERS = "system:masters"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @property
    def admin(self) -> bool:
        return MASTERS in self.groups


ADMIN = User("kubernetes-admin", (MASTERS, "system:authenticated"))
CONTROLLER_MANAGER = User("system:kube-controller-manager", (MASTERS, "system:authenticated"))


def service_account(namespace: str, name: str) -> User:
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


def token_for(namespace: str, name: str) -> str:
    """The bearer token a kubeconfig carries to act as this ServiceAccount."""
    return f"{SERVICE_ACCOUNT_TOKEN}{namespace}:{name}"


def authenticate(authorization: str | None) -> User:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if token.startswith(SERVICE_ACCOUNT_TOKEN):
        namespace, _, name = token.removeprefix(SERVICE_ACCOUNT_TOKEN).partition(":")
        return service_account(namespace, name)
    return ADMIN


@dataclass(frozen=True)
class Access:
    """A request as RBAC sees it."""

    verb: str
    group: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""

    def forbidden(self, user: User) -> str:
        """The API server's sentence for a denied request."""
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        target = (
            f'{what}{"." + self.group if self.group else ""} "{self.name}"' if self.name else what
        )
        scope = (
            f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        )
        return (
            f'{target} is forbidden: User "{user.name}" cannot {self.verb} resource "{what}" '
            f'in API group "{self.group}"{scope}'
        )


def _matches(rule: Obj, access: Access) -> bool:
    resource = access.resource + (f"/{access.subresource}" if access.subresource else "")
    groups, resources, verbs = (
        rule.get("apiGroups", []),
        rule.get("resources", []),
        rule.get("verbs", []),
    )
    names = rule.get("resourceNames") or []
    return (
        (access.group in groups or "*" in groups)
        and (
            resource in resources
            or "*" in resources
            or (bool(access.subresource) and f"*/{access.subresource}" in resources)
        )
        and (access.verb in verbs or "*" in verbs)
        and (not names or access.name in names)
    )


def _binds(binding: Obj, user: User) -> bool:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if (
            kind == "ServiceAccount"
            and user.name
            == f"system:serviceaccount:{subject.get('namespace') or binding['metadata'].get('namespace')}:{name}"
        ):
            return True
        if (kind == "User" and name == user.name) or (kind == "Group" and name in user.groups):
            return True
    return False


class Authorizer:
    """Decides with the RBAC objects that ``objects(kind)`` returns (the cluster's store)."""

    def __init__(self, objects: Callable[[str], Iterable[Obj]]) -> None:
        self.objects = objects

    def allows(self, user: User, access: Access) -> bool:
        if user.admin:
            return True
        roles = {
            (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
            for kind in ("Role", "ClusterRole")
            for o in self.objects(kind)
        }
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            for binding in self.objects(kind):
                if not _binds(binding, user):
                    continue
                scope = binding["metadata"].get("namespace")
                if kind == "RoleBinding" and access.namespace != scope:
                    continue
                ref = binding["roleRef"]
                role_scope = None if ref["kind"] == "ClusterRole" else scope
                role = roles.get((ref["kind"], role_scope, ref["name"]))
                if role and any(_matches(rule, access) for rule in role.get("rules") or []):
                    return True
        return False
