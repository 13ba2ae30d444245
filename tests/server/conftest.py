from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Server


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http
