"""The API calls reconciliation makes, over the official kubernetes client, and the errors they
become: server-side apply of owned objects and of the status, reads that the watch caches
cannot serve, deletions. Everything else is read from the caches (caches.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from urllib3.exceptions import HTTPError

from agentflow_operator.api import API_VERSION, KIND
from agentflow_operator.errors import ApiUnavailable, Refused

Manifest = dict[str, Any]
FIELD_MANAGER = "agentflow-operator"
# Holds Deployment.spec.replicas while it passes from the operator to the autoscaler, so that
# the operator's apply without replicas does not reset them to 1 (the Kubernetes documentation's
# "transferring ownership" recipe); the autoscaler's first scaling takes it over.
HANDOVER_MANAGER = "agentflow-operator-handover"
REQUEST_TIMEOUT_S = 30
# The reason a graph is refused with when an API group it needs is not installed.
_MISSING_APIS = {"keda.sh": "KedaNotInstalled"}


class ApiServer:
    """The verbs reconciliation needs, on dicts, with API failures turned into our errors."""

    def __init__(self, api_client: ApiClient) -> None:
        # The client caches API discovery in a file, by default one per API host in /tmp: shared
        # by every process that talks to that host, and outliving them (a restarted container
        # keeps its /tmp volume; tests reuse ports). A stale file names APIs the server no
        # longer serves, so each process discovers afresh into a file of its own.
        cache = Path(tempfile.gettempdir()) / f"agentflow-operator-discovery-{os.getpid()}.json"
        cache.unlink(missing_ok=True)
        self.client = DynamicClient(api_client, cache_file=str(cache))

    def _resource(self, api_version: str, kind: str) -> Any:
        """The kind's API, or :class:`Refused` when the API server does not serve it (its CRDs
        are not installed: the client rediscovers once before it says so)."""
        try:
            return self.client.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            group = api_version.split("/")[0]
            raise Refused(
                _MISSING_APIS.get(group, "KindNotServed"),
                f"the API server does not serve {kind} ({api_version}): install the CRDs of "
                f"{group}; the graph is reconciled again on its next retry",
            ) from None

    def apply(self, obj: Manifest, manager: str = FIELD_MANAGER, force: bool = True) -> Manifest:
        """Server-side apply ``obj`` as ``manager``: the object as the API server now holds it."""
        meta = obj["metadata"]
        with _translated(obj["kind"], meta.get("namespace"), meta["name"]):
            applied = self.client.server_side_apply(
                self._resource(obj["apiVersion"], obj["kind"]),
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=manager,
                force_conflicts=force,
                _request_timeout=REQUEST_TIMEOUT_S,
                serializer=_as_dict,
            )
        result: Manifest = applied
        return result

    def apply_status(self, namespace: str, name: str, status: Manifest) -> Manifest:
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        with _translated(KIND, namespace, name):
            applied = self.client.server_side_apply(
                self._resource(API_VERSION, KIND).status,
                body=body,
                name=name,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                _request_timeout=REQUEST_TIMEOUT_S,
                serializer=_as_dict,
            )
        result: Manifest = applied
        return result

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Manifest | None:
        with _translated(kind, namespace, name):
            try:
                found = self._resource(api_version, kind).get(
                    name=name,
                    namespace=namespace,
                    _request_timeout=REQUEST_TIMEOUT_S,
                    serializer=_as_dict,
                )
            except NotFoundError:
                return None
        result: Manifest = found
        return result

    def find(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object of that name, or None: a list selecting the name (an absent object is an
        empty list, not an error, which the client would build a traceback for)."""
        with _translated(kind, namespace, name):
            found = self._resource(api_version, kind).get(
                namespace=namespace,
                field_selector=f"metadata.name={name}",
                _request_timeout=REQUEST_TIMEOUT_S,
                serializer=_as_dict,
            )
        items = found.get("items") or []
        if not items:
            return None
        item: Manifest = items[0]
        return item

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with _translated(kind, namespace, name), contextlib.suppress(NotFoundError):
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT_S
            )

    def remove_finalizer(self, body: Manifest, finalizer: str) -> None:
        """Drop one finalizer, only from the version we read (a JSON patch with a test)."""
        meta = body["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "remove", "path": f"/metadata/finalizers/{finalizers.index(finalizer)}"},
        ]
        with _translated(KIND, meta["namespace"], meta["name"]):
            self._resource(API_VERSION, KIND).patch(
                body=patch,
                name=meta["name"],
                namespace=meta["namespace"],
                content_type="application/json-patch+json",
                _request_timeout=REQUEST_TIMEOUT_S,
            )

    def create_if_missing(self, obj: Manifest) -> bool:
        """Create ``obj`` unless it exists; False when its kind is not served (no CRD)."""
        try:
            resource = self._resource(obj["apiVersion"], obj["kind"])
        except Refused:
            return False
        with contextlib.suppress(ApiException):  # 409: it exists, which is all we need
            resource.create(body=obj, namespace=obj["metadata"].get("namespace"))
        return True


def _as_dict(client: Any, data: Manifest) -> Manifest:
    """The response as the JSON it is (the client's ResourceInstance wrapping costs more than
    the request, and reconciliation reads plain dicts)."""
    return data


@contextlib.contextmanager
def _translated(kind: str, namespace: str | None, name: str) -> Any:
    """API failures as our errors: a refusal (4xx) names the object and carries the API
    server's own message; anything else is the API being unavailable."""
    where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    try:
        yield
    except ApiException as error:
        if (
            error.status is not None
            and 400 <= error.status < 500
            and error.status not in (409, 429)
        ):
            reason, message = _status_of(error)
            raise Refused(reason, f"the API server refused {where}: {message}") from None
        raise ApiUnavailable(
            "ApiUnavailable", f"the API server failed on {where}: {error.status} {error.reason}"
        ) from None
    except (HTTPError, OSError) as error:
        raise ApiUnavailable(
            "ApiUnavailable", f"the API server did not answer on {where}: {error}"
        ) from None


def _status_of(error: ApiException) -> tuple[str, str]:
    """The reason and message of the API server's Status body."""
    import json

    try:
        status = json.loads(error.body or "{}")
    except ValueError:
        status = {}
    reason = str(status.get("reason") or error.reason or "Refused").replace(" ", "")
    return reason, str(status.get("message") or error.reason)
