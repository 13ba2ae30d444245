"""HTTP routes: thin translations between requests and :class:`GraphService`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agentflow.runtime.service import GraphService


async def get_service(request: Request) -> GraphService:
    # async: FastAPI runs sync dependencies in a thread pool, a thread hop per request.
    service: GraphService = request.app.state.service
    return service


Service = Annotated[GraphService, Depends(get_service)]
