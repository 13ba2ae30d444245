"""RedisRunBroker: run event logs in Redis streams, stop requests over Redis pub/sub.

Layout, per graph (``{g}`` is the graph id):

* ``agentflow:{g}:thread:{thread_id}:run:{run_id}:start`` marks the run as started and names
  its owner (joiners must be the same subject) and the worker executing it.
* ``agentflow:{g}:thread:{thread_id}:run:{run_id}`` is a Redis stream of the run's chunks:
  chunk number ``n`` is entry ``1-n``, so a joiner asking for the chunks after ``n`` reads the
  entries after ``1-n``. It keeps about the newest ``max_events`` (older ones are trimmed);
  missing numbers (trimmed, lost while Redis could not be written, or lost by Redis) reach
  joiners as a ``gap``. Both keys expire ``retain_s`` after the last write.
* ``agentflow:{g}:worker:{worker_id}`` exists while that worker process lives (written every
  HEARTBEAT_S, expiring after WORKER_TTL_S): a joiner of a run whose worker died learns it
  within WORKER_TTL_S instead of waiting for the log to expire. The same heartbeat keeps the
  logs of the worker's runs in progress from expiring while a node is silent.
* ``agentflow:{g}:stop`` is a pub/sub channel of ``{"thread_id", "run_id", "owner"}``
  messages; every worker listens and stops the run if it executes it and the owner matches.

A run never waits for Redis: chunks are written by a background flush, and while Redis is
failing the broker leaves it alone for BACKOFF_S (the logs then lose chunks, and joiners are
told how many). Joiners read on a connection pool of their own, capped by
``max_followers``: a joiner past the cap gets 503, and nothing else notices. A stream that
cannot go on (Redis failed, the worker died, the log expired) ends with an ``error`` and an
``end`` that carry no position, so the client can join again after the last event it saw.
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
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from agentflow.errors import AgentflowError
from agentflow.graph.types import StreamChunk
from agentflow.ids import new_id
from agentflow.jsonbytes import dumps_to_keep
from agentflow.runtime.broker import (
    BrokerUnavailableError,
    NothingAfterTheEnd,
    RunAbandonedError,
    RunBroker,
    RunLog,
    StopHandler,
    broken_off,
    no_log,
)

logger = logging.getLogger("agentflow.runtime")

# How long to leave Redis alone after a failure, so runs do not each wait for its timeout.
BACKOFF_S = 5.0
# Blocking reads wake up this often to notice a log whose worker died or that expired.
FOLLOW_POLL_MS = 1000
# How often a worker says it is alive, and how long the word lasts.
HEARTBEAT_S = 2.0
WORKER_TTL_S = 10


def _pool_options(timeout_s: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        # A pooled connection that broke (Redis restarted) is replaced and the command sent
        # again, once, at once; a Redis that is down fails at once. (redis-py's default, ten
        # retries with backoff, held requests for seconds and made recovery take 13 s.)
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


class RedisRunBroker(RunBroker):
    crosses_processes = True

    def __init__(
        self,
        url: str,
        *,
        graph_id: str,
        timeout_s: float = 2.0,
        max_connections: int = 50,
        max_followers: int = 100,
        max_events: int = 10_000,
        retain_s: float = 600,
    ) -> None:
        self.graph_id = graph_id
        self.timeout_s = timeout_s
        self.retain_s = retain_s
        self.max_followers = max_followers
        self.max_events = max_events
        self.worker_id = new_id()
        # Writes, stops and pings: a burst of them waits (up to the timeout) for a connection.
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=timeout_s, **_pool_options(timeout_s)
            )
        )
        # Joiners: each holds a connection while it blocks in XREAD.
        follower_options = _pool_options(timeout_s + FOLLOW_POLL_MS / 1000)
        self.followers = aioredis.Redis(
            connection_pool=aioredis.ConnectionPool.from_url(
                url, max_connections=max_followers, **follower_options
            )
        )
        self._following = 0
        self._down_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self.live_logs: set[str] = set()  # keys of the logs of runs in progress here

    # ------------------------------------------------------------------ life cycle

    async def start(self, on_stop: StopHandler) -> None:
        self.keep(self._listen_for_stops(on_stop))
        self.keep(self._say_alive())

    def keep(self, work: Any) -> asyncio.Task[None]:
        """Run ``work`` in the background until it ends or the broker closes."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(RedisError, OSError):  # gone already: nothing to tell others
            await self.redis.delete(self._worker_key(self.worker_id))
        await self.redis.aclose()
        await self.followers.aclose()

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as error:
            raise _unavailable("answering a ping", error) from error

    @property
    def available(self) -> bool:
        """False while backing off after a failure (writes are held back, not queued)."""
        return time.monotonic() >= self._down_until

    @property
    def retry_in_s(self) -> float:
        return max(self._down_until - time.monotonic(), 0.0)

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

    async def _say_alive(self) -> None:
        """Mark this worker alive, and keep the logs of its runs in progress from expiring
        while a node is silent for longer than ``retain_s``."""
        key = self._worker_key(self.worker_id)
        while True:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.set(key, b"1", ex=WORKER_TTL_S)
                    for log_key in list(self.live_logs):
                        pipe.expire(log_key, int(self.retain_s))
                        pipe.expire(f"{log_key}:start", int(self.retain_s))
                    await pipe.execute()
            except (RedisError, OSError) as error:
                self._failed("telling other workers this one is alive", error)
            await asyncio.sleep(HEARTBEAT_S)

    @property
    def _stop_channel(self) -> str:
        return f"agentflow:{self.graph_id}:stop"

    def _log_key(self, thread_id: str, run_id: str) -> str:
        return f"agentflow:{self.graph_id}:thread:{thread_id}:run:{run_id}"

    def _worker_key(self, worker_id: str) -> str:
        return f"agentflow:{self.graph_id}:worker:{worker_id}"

    # ------------------------------------------------------------------ logs

    async def open_run(self, thread_id: str, run_id: str, owner: str | None) -> RunLog:
        log = _RedisLog(self, self._log_key(thread_id, run_id), owner)
        await log.start()
        return log

    async def follow(
        self, thread_id: str, run_id: str, after: int = -1, owner: str | None = None
    ) -> AsyncIterator[list[StreamChunk]]:
        if self._following >= self.max_followers:
            raise BrokerUnavailableError(
                f"this worker already follows {self.max_followers} run streams, its limit "
                "(AGENTFLOW_REDIS_MAX_FOLLOWERS): join again later, or through another replica"
            )
        key = self._log_key(thread_id, run_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(f"{key}:start")
                pipe.xrevrange(key, "+", "-", count=1)
                start, last = await pipe.execute()
        except (RedisError, OSError) as error:
            raise _unavailable("joining a run's stream", error) from error
        started = orjson.loads(start) if start else None
        if started is None or started["owner"] != (owner or ""):
            raise no_log(thread_id, run_id)
        if last:
            last_id, last_fields = last[0]
            if orjson.loads(last_fields[b"c"])["event"] == "end" and _index(last_id) <= after:
                raise NothingAfterTheEnd
        return self._read(thread_id, run_id, started["worker"], after)

    async def _read(
        self, thread_id: str, run_id: str, worker: str, after: int
    ) -> AsyncIterator[list[StreamChunk]]:
        key = self._log_key(thread_id, run_id)
        position = "0-1" if after < 0 else f"1-{after}"
        self._following += 1
        try:
            while True:
                ended: AgentflowError | None
                try:
                    # RESP2 shape: [[key, [(entry_id, {field: value})...]]]
                    answer: Any = await self.followers.xread({key: position}, block=FOLLOW_POLL_MS)
                    ended = None if answer else await self._why_silent(key, worker, run_id)
                except (RedisError, OSError) as error:
                    ended = _unavailable("following a run's stream", error)
                if ended is not None:
                    yield broken_off(thread_id, run_id, ended)
                    return
                batch = []
                for entry_id, fields in answer[0][1] if answer else ():
                    missed = _index(entry_id) - _index(position.encode()) - 1
                    if missed > 0:
                        batch.append(StreamChunk.gap(thread_id, run_id, missed))
                    batch.append(StreamChunk(**orjson.loads(fields[b"c"])))
                    position = entry_id.decode()
                    if batch[-1].event == "end":
                        yield batch
                        return
                if batch:
                    yield batch
        finally:
            self._following -= 1

    async def _why_silent(self, key: str, worker: str, run_id: str) -> RunAbandonedError | None:
        """Why a live log had nothing new to read, if it will never have: it expired, or the
        worker writing it died."""
        async with self.followers.pipeline(transaction=False) as pipe:
            pipe.exists(f"{key}:start")
            pipe.exists(self._worker_key(worker))
            log_kept, worker_alive = await pipe.execute()
        if not log_kept:
            return RunAbandonedError(
                f"the events of run {run_id} are gone before the run ended (its worker "
                "stopped, or Redis lost them)"
            )
        if not worker_alive:
            return RunAbandonedError(
                f"the worker running run {run_id} stopped before the run ended; the thread "
                "keeps its last checkpoint"
            )
        return None

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
    """Writes a run's chunks in pipelined batches from one background task.

    While Redis cannot be written, chunks are lost but for the newest (it may be the run's
    ``end``, which joiners need in order to stop), and once it can, the log goes on: joiners
    see the missing numbers as a gap. If Redis lost the log itself (it restarted without
    persistence), the log starts again, so the run can still be joined. A closing log does not
    wait for Redis to come back (the run's thread is released): the task goes on trying, for
    as long as the log would be kept."""

    def __init__(self, broker: RedisRunBroker, key: str, owner: str | None) -> None:
        self._broker = broker
        self._key = key
        self._start = dumps_to_keep({"owner": owner or "", "worker": broker.worker_id})
        self._started = False
        self._pending: list[tuple[int, bytes]] = []
        self._holding = False  # Redis failed: keep only the newest chunk until it answers
        self._count = 0
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()  # nothing pending, or Redis failing
        self._closed_at: float | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Mark the run as started, so that it can be joined from the moment it is."""
        self._broker.live_logs.add(self._key)
        if self._broker.available:
            await self._write()

    def publish(self, chunk: StreamChunk) -> None:
        entry = (self._count, chunk.json())
        self._count += 1
        if self._holding and self._pending:
            self._pending[-1] = entry  # Redis is failing: only the newest is kept
        else:
            self._pending.append(entry)
        self._settled.clear()
        if self._flusher is None:
            self._flusher = self._broker.keep(self._flush_forever())
        self._wake.set()

    async def _flush_forever(self) -> None:
        while self._pending or self._closed_at is None:
            if not self._pending:
                self._settled.set()
                await self._wake.wait()
                self._wake.clear()
                # One turn of the loop before writing: what is published in the same turn
                # joins this pipeline (a run's last step and its end: one round trip, not two).
                await asyncio.sleep(0)
                continue
            if self._broker.available and await self._write():
                self._holding = False
                continue
            self._holding = True
            del self._pending[:-1]  # lost but for the newest: it may be the run's end
            self._settled.set()  # close() does not wait for Redis to come back
            kept_until = (self._closed_at or time.monotonic()) + self._broker.retain_s
            if time.monotonic() > kept_until:  # the log has expired by now: nothing to mend
                break
            await asyncio.sleep(max(self._broker.retry_in_s, 0.1))
        self._settled.set()

    async def _write(self) -> bool:
        """Write what is pending (and the start mark, if Redis has none); False if Redis
        failed, with everything still pending."""
        batch, self._pending = self._pending, []
        try:
            # The start mark is written again only if Redis lost it (restarted without
            # persistence): the run can still be joined.
            if not await self._append(batch, with_start=not self._started):
                await self._append([], with_start=True)
        except ResponseError:
            pass  # an entry an earlier, broken-off attempt had written already: it is there
        except (RedisError, OSError) as error:
            self._broker._failed("writing a run's events", error)
            self._pending = batch + self._pending
            return False
        self._started = True
        return True

    async def _append(self, batch: list[tuple[int, bytes]], *, with_start: bool) -> bool:
        """One round trip; False if Redis has no start mark for the run."""
        broker, start = self._broker, f"{self._key}:start"
        retain_s = int(broker.retain_s)
        async with broker.redis.pipeline(transaction=False) as pipe:
            for index, data in batch:
                pipe.xadd(
                    self._key,
                    {"c": data},
                    id=f"1-{index}",
                    maxlen=broker.max_events,
                    approximate=True,
                )
            if batch:
                pipe.expire(self._key, retain_s)
            if with_start:
                pipe.set(start, self._start, ex=retain_s)
            else:
                pipe.expire(start, retain_s)
            written = await pipe.execute()
        return bool(written[-1])

    async def close(self) -> None:
        """Wait until every chunk published so far is written, unless Redis is failing."""
        self._closed_at = time.monotonic()
        self._broker.live_logs.discard(self._key)
        self._wake.set()
        if self._flusher is not None:
            await self._settled.wait()


def _index(entry_id: bytes) -> int:
    """A chunk's position from its entry id ``1-n`` (``0-1``, where reading starts, is
    before the first chunk)."""
    major, minor = entry_id.split(b"-")
    return int(minor) if major == b"1" else -1


def _unavailable(doing: str, error: Exception) -> BrokerUnavailableError:
    return BrokerUnavailableError(f"Redis failed while {doing}: {type(error).__name__}: {error}")
