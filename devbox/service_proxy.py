"""A Service proxy: the stand-in for kube-proxy and the Service's virtual IP.

One loopback port per Service. Each request goes to the next Ready Pod matching the
Service's selector (round robin), read from the API emulator every ``REFRESH_S``; a Pod leaves
the rotation as soon as it is not Ready. Responses are streamed through unbuffered, so SSE
passes event by event. Like kube-proxy, it does not retry a request whose backend failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from devbox.node_agent import HOST_PORT_ANNOTATION
from tests.kube.selectors import label_matcher
from tests.polling import eventually

REFRESH_S = 0.1
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


class ServiceProxy:
    def __init__(self, api_url: str, namespace: str, service: str, port: int) -> None:
        self.api_url, self.namespace, self.service, self.port = api_url, namespace, service, port
        self.url = f"http://127.0.0.1:{port}"
        self.endpoints: list[tuple[str, int]] = []  # (pod name, host port)
        self.served: list[str] = []  # which pod served each request, in order
        self._turn = itertools.count()
        app = Starlette(
            lifespan=self._lifespan,
            routes=[
                Route(
                    "/{path:path}",
                    self._forward,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                )
            ],
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServiceProxy:
        self.thread.start()
        eventually(lambda: self.server.started, 10, "the Service proxy started", every_s=0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=500)
        async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=2), limits=limits) as client:
            self.client = client
            refresher = asyncio.ensure_future(self._refresh())
            yield
            refresher.cancel()

    async def _refresh(self) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as api:
            while True:
                try:
                    service = await api.get(
                        f"/api/v1/namespaces/{self.namespace}/services/{self.service}"
                    )
                    if service.status_code == 200:
                        matches = label_matcher(
                            ",".join(
                                f"{k}={v}" for k, v in service.json()["spec"]["selector"].items()
                            )
                        )
                        pods = (await api.get(f"/api/v1/namespaces/{self.namespace}/pods")).json()[
                            "items"
                        ]
                        self.endpoints = [
                            (
                                pod["metadata"]["name"],
                                int(pod["metadata"]["annotations"][HOST_PORT_ANNOTATION]),
                            )
                            for pod in pods
                            if matches(pod["metadata"].get("labels") or {}) and _ready(pod)
                        ]
                    else:
                        self.endpoints = []
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(REFRESH_S)

    async def _forward(self, request: Request) -> Response:
        endpoints = list(self.endpoints)
        if not endpoints:
            return JSONResponse(
                {
                    "error": {
                        "code": "no_endpoints",
                        "message": f"service {self.service} has no ready endpoints",
                    }
                },
                503,
            )
        pod, port = endpoints[next(self._turn) % len(endpoints)]
        self.served.append(pod)
        url = f"http://127.0.0.1:{port}/{request.path_params['path']}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = self.client.build_request(
            request.method,
            url,
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as error:
            return JSONResponse(
                {"error": {"code": "bad_gateway", "message": f"{pod}: {error}"}}, 502
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        kept["x-served-by"] = pod
        return StreamingResponse(
            _relay(answer),
            status_code=answer.status_code,
            headers=kept,
            background=BackgroundTask(answer.aclose),
        )


async def _relay(answer: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in answer.aiter_raw():
        yield chunk


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
