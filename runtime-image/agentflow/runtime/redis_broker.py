"""RedisRunBroker: run event logs in Redis streams, stop requests over Redis pub/sub.

Layout, per graph (``{g}`` is the graph id):

* ``agentflow:{g}:thread:{thread_id}:run:{run_id}`` is a Redis stream. Entry ``0-1`` marks
  the run as started and names its owner (joiners must be the same subject); chunk number
  ``n`` is entry ``1-n``, so a joiner asking for the chunks
  after ``n`` reads the entries after ``1-n``. The stream expires ``retain_s`` after the last
  write, so logs of runs whose worker died disappear too.
* ``agentflow:{g}:stop`` is a pub/sub channel of ``{"thread_id", "run_id", "owner"}``
  messages; every worker listens and stops the run if it executes it and the owner matches.

A run never waits for Redis: chunks are buffered and written by a background flush, and
while Redis is failing the broker stops trying for a few seconds (and the logs lose chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agentflow.graph.types import StreamChunk
from agentflow.runtime.broker import (
    BrokerUnavailableError,
    NothingAfterTheEnd,
    RunBroker,
    RunLog,
    StopHandler,
    no_log,
)

logger = logging.getLogger("agentflow.runtime")

# How long to leave Redis alone after a failure, so runs do not each wait for its timeout.
BACKOFF_S = 5.0
# Blocking reads wake up this often to notice a log whose worker died without closing it.
FOLLOW_POLL_MS = 1000


class RedisRunBroker(RunBroker):
    crosses_processes = True

    def __init__(
        self,
        url: str,
        *,
        graph_id: str,
        timeout_s: float = 2.0,
        max_connections: int = 50,
        retain_s: float = 600,
    ) -> None:
        self.graph_id = graph_id
        self.timeout_s = timeout_s
        self.retain_s = retain_s
        self.redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            max_connections=max_connections,
        )
        self._down_until = 0.0
        self._listener: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self, on_stop: StopHandler) -> None:
        self._listener = asyncio.create_task(self._listen_for_stops(on_stop))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.redis.aclose()

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as error:
            raise _unavailable("answering a ping", error) from error

    @property
    def available(self) -> bool:
        """False while backing off after a failure (writes are dropped, not queued)."""
        return time.monotonic() >= self._down_until

    def _failed(self, doing: str, error: Exception) -> None:
        if self.available:
            logger.warning(
                "Redis failed while %s (%s); live streams and stops across workers are "
                "degraded, retrying in %.0fs",
                doing,
                error,
                BACKOFF_S,
            )
        self._down_until = time.monotonic() + BACKOFF_S

    @property
    def _stop_channel(self) -> str:
        return f"agentflow:{self.graph_id}:stop"

    def _log_key(self, thread_id: str, run_id: str) -> str:
        return f"agentflow:{self.graph_id}:thread:{thread_id}:run:{run_id}"

    # ------------------------------------------------------------------ logs

    async def open_run(self, thread_id: str, run_id: str, owner: str | None) -> RunLog:
        key = self._log_key(thread_id, run_id)
        if self.available:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(key, {"owner": owner or ""}, id="0-1")
                    pipe.expire(key, int(self.retain_s))
                    await pipe.execute()
                return _RedisLog(self, key)
            except (RedisError, OSError) as error:
                self._failed("starting a run's log", error)
        return _RedisLog(self, key, dropped=True)

    async def follow(
        self, thread_id: str, run_id: str, after: int = -1, owner: str | None = None
    ) -> AsyncIterator[list[StreamChunk]]:
        key = self._log_key(thread_id, run_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xrange(key, "0-1", "0-1")
                pipe.xrevrange(key, "+", "-", count=1)
                started, last = await pipe.execute()
        except (RedisError, OSError) as error:
            raise _unavailable("joining a run's stream", error) from error
        if not started or started[0][1].get(b"owner", b"").decode() != (owner or ""):
            raise no_log(thread_id, run_id)
        last_id, last_fields = last[0]
        if (
            b"c" in last_fields
            and orjson.loads(last_fields[b"c"])["event"] == "end"
            and int(last_id.split(b"-")[1]) <= after
        ):
            raise NothingAfterTheEnd
        return self._read(key, "0-1" if after < 0 else f"1-{after}")

    async def _read(self, key: str, position: str) -> AsyncIterator[list[StreamChunk]]:
        try:
            while True:
                # RESP2 shape: [[key, [(entry_id, {field: value})...]]]
                answer: Any = await self.redis.xread({key: position}, block=FOLLOW_POLL_MS)
                if not answer:
                    if not await self.redis.exists(key):  # expired: its worker died
                        return
                    continue
                batch = []
                for entry_id, fields in answer[0][1]:
                    position = entry_id.decode()
                    batch.append(StreamChunk(**orjson.loads(fields[b"c"])))
                    if batch[-1].event == "end":
                        yield batch
                        return
                yield batch
        except (RedisError, OSError) as error:
            raise _unavailable("joining a run's stream", error) from error

    # ------------------------------------------------------------------ stops

    async def request_stop(self, thread_id: str, run_id: str, owner: str | None) -> None:
        message = orjson.dumps({"thread_id": thread_id, "run_id": run_id, "owner": owner})
        try:
            await self.redis.publish(self._stop_channel, message)
        except (RedisError, OSError) as error:
            raise _unavailable("stopping a run on another worker", error) from error

    async def _listen_for_stops(self, on_stop: StopHandler) -> None:
        delay = 0.1
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._stop_channel)
                    delay = 0.1
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            request = orjson.loads(message["data"])
                            on_stop(request["thread_id"], request["run_id"], request["owner"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure: listen again after a pause
                self._failed("listening for stop requests", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_S)


class _RedisLog(RunLog):
    """Buffers chunks and writes them in pipelined batches from one background task."""

    def __init__(self, broker: RedisRunBroker, key: str, dropped: bool = False) -> None:
        self._broker = broker
        self._key = key
        self._dropped = dropped
        self._pending: list[tuple[int, bytes]] = []
        self._count = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None

    def publish(self, chunk: StreamChunk) -> None:
        index = self._count
        self._count += 1
        if self._dropped:
            return
        self._pending.append((index, chunk.json()))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever())
        self._wake.set()

    async def _flush_forever(self) -> None:
        while not (self._closing and not self._pending):
            await self._wake.wait()
            # One turn of the loop before writing: what is published in the same turn joins
            # this pipeline (a run's last step and its end event: one round trip, not two).
            await asyncio.sleep(0)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch or self._dropped:
            return
        if not self._broker.available:
            self._dropped = True
            return
        try:
            async with self._broker.redis.pipeline(transaction=False) as pipe:
                for index, data in batch:
                    pipe.xadd(self._key, {"c": data}, id=f"1-{index}")
                pipe.expire(self._key, int(self._broker.retain_s))
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._dropped = True  # a log with a hole would mislead joiners: stop writing it
            self._broker._failed("writing a run's events", error)

    async def close(self) -> None:
        """Wait until every chunk published so far is written (or dropped)."""
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            await self._flusher


def _unavailable(doing: str, error: Exception) -> BrokerUnavailableError:
    return BrokerUnavailableError(f"Redis failed while {doing}: {type(error).__name__}: {error}")
