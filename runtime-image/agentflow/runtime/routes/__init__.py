"""HTTP routes: thin translations between requests and :class:`GraphService`.

Routes take the service and the caller's subject from the request (:func:`service_of`,
:func:`agentflow.runtime.auth.subject_of`) rather than as FastAPI dependencies: each
dependency costs every request its own resolution step, which measured about 15% of the
server's time for a short run (docs/benchmarks.md).
"""

from __future__ import annotations

from fastapi import Request

from agentflow.runtime.service import GraphService


def service_of(request: Request) -> GraphService:
    service: GraphService = request.app.state.service
    return service
