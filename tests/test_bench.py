"""The benchmark harness measures what it says: its raw SSE client counts every event of a real
stream, holds streams open, and each scenario's servers start once with the bare reference
measured once."""

import asyncio

from bench import run, streams
from tests.conftest import Server


def test_the_raw_client_counts_every_custom_event_of_a_real_stream(server: Server):
    port = int(server.url.rsplit(":", 1)[1])
    body = {"initial_state": {"events": 250}}
    timing = asyncio.run(streams.read_one(port, "/v1/graph/stream", body, timeout_s=30))
    assert timing.events == 250
    assert 0 < timing.first_byte_s <= timing.first_event_s <= timing.total_s


def test_streams_held_open_stay_open_until_closed(server: Server):
    port = int(server.url.rsplit(":", 1)[1])
    bodies = [{"initial_state": {"events": 1, "async_sleep_s": 30}} for _ in range(5)]

    async def hold() -> int:
        writers = await streams.hold_open(port, "/v1/graph/stream", bodies, timeout_s=30)
        open_now = sum(not writer.is_closing() for writer in writers)
        for writer in writers:
            writer.close()
        return open_now

    assert asyncio.run(hold()) == 5


def test_each_server_starts_once_and_the_reference_is_measured_once():
    servers = run.plan(["invoke", "stream", "postgres"], run.scenarios("postgresql://x/db"))
    bare = next(server for server in servers if server.bare and server.sleep_ms == 10)
    assert len(servers[bare]) == 1  # the same reference for (a), (c) and (e)
    assert len(servers) == 3  # bare, agentflow memory, agentflow postgres
