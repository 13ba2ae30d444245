"""HTTP routes: thin translations between requests and :class:`GraphService`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agentflow.runtime.service import GraphService


def get_service(request: Request) -> GraphService:
    service: GraphService = request.app.state.service
    return service


Service = Annotated[GraphService, Depends(get_service)]
