"""The HTTP face of the emulated API server: the REST paths, discovery, watch streams and the
Table format ``kubectl get`` asks for. The rules live in cluster.py.

Run it with :class:`EmulatorServer` (a Uvicorn server on a loopback port, in a thread of the
test process); ``kubeconfig()`` writes a kubeconfig for kubectl, kopf and the kubernetes client.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.kube.cluster import ApiError, Caller, Cluster, ResourceType
from tests.kube.printers import table
from tests.kube.rbac import Access, authenticate, token_for
from tests.polling import eventually

WATCH_BOOKMARK_S = 5.0


class JSONResponse(StarletteJSONResponse):
    """orjson: every object and watch event is serialised, the emulator's largest cost."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class Recorded:
    """A request as the emulator received it (to compare with RBAC rules, or to tell which
    client wrote what, as the API server's audit log does)."""

    method: str
    path: str
    query: dict[str, str]
    user_agent: str
    user: str


@dataclass
class Fault:
    """Answer matching requests with ``status`` (instead of serving them), ``times`` times."""

    method: str
    path: re.Pattern[str]
    status: int
    times: int
    delay_s: float = 0.0


class Emulator:
    def __init__(self) -> None:
        self.cluster = Cluster()
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.denied: list[tuple[str, str]] = []  # (user agent, message) of every 403
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self.dispatch, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
                )
            ]
        )

    def inject(
        self, method: str, path: str, status: int, times: int = 1, delay_s: float = 0.0
    ) -> None:
        self.faults.append(Fault(method, re.compile(path), status, times, delay_s))

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        agent = request.headers.get("user-agent", "")
        user = authenticate(request.headers.get("authorization")).name
        self.requests.append(
            Recorded(request.method, path, dict(request.query_params), agent, user)
        )
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and fault.path.search(path):
                fault.times -= 1
                await asyncio.sleep(fault.delay_s)
                error = ApiError(
                    fault.status,
                    "InternalError" if fault.status >= 500 else "Conflict",
                    f"injected fault {fault.status}",
                )
                return JSONResponse(error.status(), status_code=fault.status)
        try:
            return await self._serve(request, path)
        except ApiError as error:
            if error.code == 403:
                self.denied.append((agent, error.message))
            return JSONResponse(error.status(), status_code=error.code)
        finally:
            if request.method != "GET":
                # The controllers see what the request changed once it is answered, as on a
                # real cluster (where they are other processes), not on the caller's clock.
                asyncio.get_running_loop().call_soon(self.cluster.react)

    async def _serve(self, request: Request, path: str) -> Response:
        if path == "/version":
            return JSONResponse(
                {
                    "major": "1",
                    "minor": "37",
                    "gitVersion": "v1.37.0-agentflow-emulator",
                    "platform": "linux/amd64",
                }
            )
        if path in ("/api", "/api/"):
            return JSONResponse(
                {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            )
        if path in ("/apis", "/apis/"):
            return JSONResponse(self._groups())
        if path == "/openapi/v3":
            return JSONResponse(self._openapi_index())
        if path.startswith("/openapi/v3/"):
            return JSONResponse(self._openapi(path.removeprefix("/openapi/v3/")))
        if path.startswith(("/openapi", "/healthz", "/livez", "/readyz")):
            raise ApiError(404, "NotFound", "not served by the emulator")
        parts = [p for p in path.split("/") if p]
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource: {path}"
            )
        if not rest:
            return JSONResponse(self._resources(group, version))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, rest[2]) in self.cluster.types:
            namespace, rest = rest[1], rest[2:]
        rtype = self.cluster.resolve(group, rest[0])
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        caller = self._caller(request)
        access = Access(
            _verb_of(request, name is not None),
            rtype.group,
            rtype.plural,
            namespace,
            name,
            subresource or "",
        )
        if not self.cluster.authorizer.allows(caller.user, access):
            raise ApiError(403, "Forbidden", access.forbidden(caller.user))
        return await self._verb(request, rtype, namespace, name, subresource, caller)

    @staticmethod
    def _caller(request: Request) -> Caller:
        query = request.query_params
        manager = query.get("fieldManager")
        agent = request.headers.get("user-agent", "")
        return Caller(
            authenticate(request.headers.get("authorization")),
            manager or agent.split("/", 1)[0],
            manager is not None,
            query.get("fieldValidation") or "Warn",
        )

    async def _verb(
        self,
        request: Request,
        rtype: ResourceType,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        caller: Caller,
    ) -> Response:
        cluster, query, method = self.cluster, request.query_params, request.method
        if query.get("dryRun") and method in ("POST", "PUT", "PATCH", "DELETE"):
            # Refused rather than ignored: ignoring it would write what the caller asked only
            # to check (kubectl --dry-run=server).
            raise ApiError(
                400,
                "BadRequest",
                "dryRun is not emulated: the request would be carried out, so it is refused",
            )
        if name is None:
            if method == "GET" and query.get("watch") in ("1", "true"):
                return self._watch(request, rtype, namespace)
            if method == "GET":
                limit = query.get("limit")
                items, token = cluster.list_objects(
                    rtype,
                    namespace,
                    query.get("labelSelector"),
                    query.get("fieldSelector"),
                    int(limit) if limit and limit.isdigit() and int(limit) > 0 else None,
                    query.get("continue"),
                )
                if "as=Table" in request.headers.get("accept", ""):
                    return JSONResponse(table(rtype.kind, rtype.printer_columns, items))
                metadata = {"resourceVersion": str(cluster.rv)}
                if token:
                    metadata["continue"] = token
                return JSONResponse(
                    {
                        "kind": f"{rtype.kind}List",
                        "apiVersion": rtype.api_version,
                        "metadata": metadata,
                        "items": items,
                    }
                )
            if method == "POST":
                created = cluster.create(rtype, namespace, await self._body(request), caller)
                return JSONResponse(created, status_code=201)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        if method == "GET":
            obj = cluster.get(rtype, namespace, name)
            if sub == "scale":
                return JSONResponse(cluster.scale_of(rtype, obj))
            if "as=Table" in request.headers.get("accept", ""):
                return JSONResponse(table(rtype.kind, rtype.printer_columns, [obj]))
            return JSONResponse(obj)
        if method == "PUT":
            body = await self._body(request)
            return JSONResponse(cluster.replace(rtype, namespace, name, body, sub, caller))
        if method == "PATCH":
            content_type = request.headers.get("content-type", "")
            body = await self._body(request)
            force = query.get("force") in ("1", "true")
            existed = cluster.find(rtype, namespace, name) is not None
            patched = cluster.patch(rtype, namespace, name, body, content_type, sub, caller, force)
            return JSONResponse(patched, status_code=200 if existed else 201)
        if method == "DELETE":
            body = await self._body(request, required=False)
            propagation = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
            return JSONResponse(cluster.delete(rtype, namespace, name, propagation, caller))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    @staticmethod
    async def _body(request: Request, required: bool = True) -> Any:
        raw = await request.body()
        if not raw:
            if required:
                raise ApiError(400, "BadRequest", "the request has no body")
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            if "yaml" not in request.headers.get("content-type", ""):
                raise ApiError(400, "BadRequest", f"the body is not valid JSON: {error}") from None
        try:  # a YAML body (JSON is YAML too: clients mostly send it, and it parses faster)
            return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as error:
            raise ApiError(400, "BadRequest", f"the body is not valid YAML: {error}") from None

    # ------------------------------------------------------------------ watch

    def _watch(self, request: Request, rtype: ResourceType, namespace: str | None) -> Response:
        query = request.query_params
        timeout_s = float(query.get("timeoutSeconds") or 300)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        try:
            watcher, first = self.cluster.watch(
                rtype,
                namespace,
                "" if query.get("sendInitialEvents") == "true" else query.get("resourceVersion"),
                query.get("labelSelector"),
                query.get("fieldSelector"),
                asyncio.Queue(),
            )
        except ApiError as error:
            if error.code != 410:
                raise
            line = orjson.dumps({"type": "ERROR", "object": error.status()}) + b"\n"
            return Response(line, media_type="application/json")

        # Streaming lists (kubectl and client-go since Kubernetes 1.27): the current objects,
        # then a bookmark saying the initial events are over.
        initial_end = query.get("sendInitialEvents") == "true"

        async def stream() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout_s
            try:
                for event in first:
                    yield _line(event.type, event.obj)
                if initial_end:
                    marker = {
                        "kind": rtype.kind,
                        "apiVersion": rtype.api_version,
                        "metadata": {
                            "resourceVersion": str(self.cluster.rv),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    }
                    yield _line("BOOKMARK", marker)
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        event = await asyncio.wait_for(
                            watcher.queue.get(), min(left, WATCH_BOOKMARK_S)
                        )
                    except TimeoutError:
                        if bookmarks:
                            marker = {
                                "kind": rtype.kind,
                                "apiVersion": rtype.api_version,
                                "metadata": {"resourceVersion": str(self.cluster.rv)},
                            }
                            yield _line("BOOKMARK", marker)
                        continue
                    if event is None:
                        return
                    yield _line(event.type, event.obj)
            finally:
                self.cluster.watchers.discard(watcher)

        return StreamingResponse(stream(), media_type="application/json")

    def close_watches(self) -> None:
        """End every open watch (as an API server restart would)."""
        for watcher in list(self.cluster.watchers):
            watcher.queue.put_nowait(None)

    # ------------------------------------------------------------------ discovery and tables

    def _groups(self) -> dict[str, Any]:
        groups: dict[str, str] = {}
        for rtype in self.cluster.types.values():
            if rtype.group:
                groups.setdefault(rtype.group, rtype.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, v in sorted(groups.items())
            ],
        }

    def _resources(self, group: str, version: str) -> dict[str, Any]:
        found = [
            t for t in self.cluster.types.values() if t.group == group and t.version == version
        ]
        if not found:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource: {group}/{version}",
            )
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        resources = []
        for t in found:
            resources.append(
                {
                    "name": t.plural,
                    "singularName": t.singular,
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": verbs,
                    "shortNames": t.short_names,
                }
            )
            if t.status:
                resources.append(
                    {
                        "name": f"{t.plural}/status",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if t.scale is not None:
                resources.append(
                    {
                        "name": f"{t.plural}/scale",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _group_versions(self) -> dict[str, list[ResourceType]]:
        served: dict[str, list[ResourceType]] = {}
        for rtype in self.cluster.types.values():
            prefix = (
                f"apis/{rtype.group}/{rtype.version}" if rtype.group else f"api/{rtype.version}"
            )
            served.setdefault(prefix, []).append(rtype)
        return served

    def _openapi_index(self) -> dict[str, Any]:
        return {
            "paths": {
                gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={len(types)}"}
                for gv, types in self._group_versions().items()
            }
        }

    def _openapi(self, group_version: str) -> dict[str, Any]:
        """Enough OpenAPI v3 for kubectl: the schemas (for explain) and, on every write
        operation, the fieldValidation parameter that tells kubectl the server validates."""
        types = self._group_versions().get(group_version)
        if types is None:
            raise ApiError(404, "NotFound", f"no OpenAPI for {group_version}")
        schemas: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for t in types:
            gvk = [{"group": t.group, "version": t.version, "kind": t.kind}]
            schema = t.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            schemas[f"{t.group or 'core'}.{t.version}.{t.kind}"] = {
                **schema,
                "x-kubernetes-group-version-kind": gvk,
            }
            validation = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}]
            operation = {
                "parameters": validation,
                "x-kubernetes-group-version-kind": gvk[0],
                "responses": {},
            }
            scope = "namespaces/{namespace}/" if t.namespaced else ""
            paths[f"/{group_version}/{scope}{t.plural}"] = {"post": operation}
            paths[f"/{group_version}/{scope}{t.plural}/{{name}}"] = {
                "put": operation,
                "patch": operation,
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes (agentflow emulator)", "version": "v1.37.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        }


def _verb_of(request: Request, named: bool) -> str:
    """The RBAC verb of a request."""
    if request.method == "GET":
        if named:
            return "get"
        return "watch" if request.query_params.get("watch") in ("1", "true") else "list"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    return verbs[request.method]


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


class EmulatorServer:
    """The emulator on a loopback port, served by Uvicorn in a daemon thread."""

    def __init__(self, port: int) -> None:
        self.emulator = Emulator()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.emulator.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> EmulatorServer:
        self.thread.start()
        eventually(lambda: self.server.started, 10, "the API emulator started", every_s=0.02)
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's event loop (the cluster is not thread-safe)."""
        result: dict[str, Any] = {}
        done = threading.Event()

        async def run() -> None:
            try:
                result["value"] = fn()
            except BaseException as error:  # noqa: BLE001 - handed back to the calling thread
                result["error"] = error
            finally:
                done.set()

        self._loop().call_soon_threadsafe(lambda: asyncio.ensure_future(run()))
        if not done.wait(10):  # not a silent None: callers would take it for fn's answer
            raise TimeoutError("the emulator's loop did not run the call within 10 s")
        if "error" in result:
            raise result["error"]
        return result.get("value")

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            server = self.server.servers[0]
            self.loop = server.get_loop()
        return self.loop

    def stop(self) -> None:
        self.call(self.emulator.close_watches)
        self.server.should_exit = True
        self.thread.join(10)

    def kubeconfig(self, path: Path, service_account: tuple[str, str] | None = None) -> Path:
        """A kubeconfig for this emulator: as a cluster administrator, or as the ServiceAccount
        (namespace, name), whose requests RBAC then decides."""
        token = token_for(*service_account) if service_account else "emulator-admin"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "tester", "namespace": "default"},
                }
            ],
            "current-context": "emulator",
        }
        path.write_text(yaml.safe_dump(config))
        return path
