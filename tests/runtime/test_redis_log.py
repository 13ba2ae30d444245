"""A run's Redis log while Redis cannot be reached: the run never waits, and the log holds
only its newest chunk (it may be the run's end), however many the run publishes."""

import asyncio

import orjson

from agentflow.graph import StreamChunk
from agentflow.runtime.redis_broker import RedisRunBroker
from tests.conftest import free_port


async def test_a_log_holds_only_its_newest_chunk_while_redis_is_unreachable():
    broker = RedisRunBroker(f"redis://127.0.0.1:{free_port()}/0", graph_id="g", timeout_s=0.5)
    log = await broker.open_run("t", "r", None)  # Redis refuses: the run goes on regardless
    for index in range(100_000):
        log.publish(StreamChunk("custom", "t", "r", data={"index": index}))
        if index % 10_000 == 0:
            await asyncio.sleep(0)  # the flusher's turns, as a running graph gives them
    await asyncio.wait_for(log.close(), 5)  # does not wait for Redis to come back
    held = log._pending
    assert [orjson.loads(data)["data"]["index"] for _, data in held] == [99_999]
    await broker.close()
