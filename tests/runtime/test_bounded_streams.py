"""Streams keep their memory bounded whatever their readers do: a run's log for joiners, and
the buffer of a stream's client that reads slower than the run writes, drop their oldest
events and say so with a ``gap`` event; positions (SSE ids) stay those of the run."""

import asyncio

import httpx
import pytest

from agentflow.graph import StreamChunk
from agentflow.graph.publisher import IteratorPublisher
from agentflow.runtime.broker import LocalRunBroker
from bench.procfs import peak_rss_mb
from tests.conftest import start_server
from tests.polling import eventually
from tests.server.test_observability import sample


def chunk(index: int, size: int = 10) -> StreamChunk:
    return StreamChunk("custom", "t", "r", data={"index": index, "pad": "x" * size})


async def read_all(batches) -> list[StreamChunk]:
    return [c async for batch in batches for c in batch]


async def test_a_slow_reader_loses_the_oldest_chunks_and_is_told_how_many():
    publisher = IteratorPublisher(max_pending=3)
    for index in range(10):
        publisher(chunk(index))
    publisher.close()
    read = await read_all(publisher.batches())
    assert [c.event for c in read] == ["gap", "custom", "custom", "custom"]
    assert read[0].data == {"missed": 7}
    assert [c.data["index"] for c in read[1:]] == [7, 8, 9]


async def test_a_reader_that_keeps_up_loses_nothing():
    publisher = IteratorPublisher(max_pending=3)
    read: list[StreamChunk] = []

    async def reader() -> None:
        read.extend(await read_all(publisher.batches()))

    task = asyncio.create_task(reader())
    for index in range(10):
        publisher(chunk(index))
        await asyncio.sleep(0)  # the reader's turn
    publisher.close()
    await task
    assert [c.data["index"] for c in read] == list(range(10))


async def test_a_runs_log_keeps_its_newest_events_within_count_and_bytes():
    broker = LocalRunBroker(max_events=5, max_bytes=10_000)
    log = await broker.open_run("t", "r", None)
    for index in range(20):
        log.publish(chunk(index))
    await log.close()
    read = await read_all(await broker.follow("t", "r"))
    assert read[0].event == "gap"
    assert read[0].data == {"missed": 15}
    assert [c.data["index"] for c in read[1:]] == [15, 16, 17, 18, 19]
    later = await read_all(await broker.follow("t", "r", after=17))  # kept: no gap
    assert [c.data["index"] for c in later] == [18, 19]

    by_size = LocalRunBroker(max_events=1000, max_bytes=64 * 1024)
    log = await by_size.open_run("t", "r2", None)
    for index in range(100):
        log.publish(chunk(index, size=4000))
    await log.close()
    read = await read_all(await by_size.follow("t", "r2"))
    kept = read[1:]
    assert 10 <= len(kept) < 17  # about 64 KiB of 4 KB events
    assert read[0].data == {"missed": 100 - len(kept)}


@pytest.mark.slow
def test_ten_unread_streams_of_200k_events_keep_the_server_under_300_mb(tmp_path):
    """Ten clients open a stream of 200,000 events each and never read it: with the default
    settings the server holds at most AGENTFLOW_STREAM_MAX_EVENTS of each (buffer and log).
    Unbounded, the two million events held twice grew it by over 2 GB."""
    server = start_server(tmp_path, {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"})
    body = {"messages": ["hi"], "initial_state": {"events": 200_000, "async_sleep_s": 0}}
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            streams = [client.stream("POST", "/v1/graph/stream", json=body) for _ in range(10)]
            opened = [stream.__enter__() for stream in streams]  # headers read, body never
            assert all(response.status_code == 200 for response in opened)

            def runs_in_flight() -> float:
                return sample(client.get("/metrics").text, "agentflow_runs_in_flight")

            eventually(lambda: runs_in_flight() == 0, within_s=300, what="all runs done")
            peak = peak_rss_mb(server.process.pid)
            for stream in streams:
                stream.__exit__(None, None, None)
    finally:
        server.stop()
    assert peak < 300, f"the server's resident memory peaked at {peak:.0f} MB"
