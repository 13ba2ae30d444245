"""Run brokers: what must reach other workers while a run is live.

A broker keeps each run's event log, so a client can join a run's stream from any worker
(replaying what was already emitted, then following it to the end), and carries stop requests
to the worker executing a run.

* :class:`LocalRunBroker` keeps logs in this process: joining and stopping work only on the
  worker that runs the run. It is what a single-process server needs.
* :class:`agentflow.runtime.redis_broker.RedisRunBroker` keeps logs in Redis streams and sends
  stops over Redis pub/sub, for many workers and replicas.

Publishing to a broker never blocks or fails a run: a broker that cannot keep up or is down
drops the log (joining degrades), and the run goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable

import orjson

from agentflow.errors import AgentflowError
from agentflow.graph.types import StreamChunk

StopHandler = Callable[[str, str, str | None], None]
"""Called with (thread_id, run_id, owner) when a stop request for a run arrives; the owner is
the requester's subject (None without auth), for the executing worker to check."""


class RunNotFoundError(AgentflowError):
    """No event log is kept for this run (unknown, or finished long ago)."""

    status, code = 404, "run_not_found"


def no_log(thread_id: str, run_id: str) -> RunNotFoundError:
    return RunNotFoundError(
        f"no events are kept for run {run_id} of thread '{thread_id}': it is unknown, or it "
        "finished too long ago"
    )


class NothingAfterTheEnd(Exception):
    """A join after the run's last event: the run ended and nothing is left to send (the
    answer is 204, on which EventSource stops reconnecting)."""


class BrokerUnavailableError(AgentflowError):
    """The broker cannot carry this request right now (Redis down, or no Redis at all)."""

    status, code = 503, "broker_unavailable"


class RunAbandonedError(AgentflowError):
    """A run's log will never have more events, though the run's end is not among them."""

    status, code = 410, "run_abandoned"


def broken_off(thread_id: str, run_id: str, error: AgentflowError) -> list[StreamChunk]:
    """How a joined stream ends when it cannot go on: an ``error`` naming why and an ``end``.
    Neither is an event of the run's log, so neither has a position (an SSE id): a client that
    joins again after the last id it saw misses nothing."""
    return [
        StreamChunk(
            "error",
            thread_id,
            run_id,
            data={"code": error.code, "message": str(error)},
            positioned=False,
        ),
        StreamChunk("end", thread_id, run_id, data={"status": "error"}, positioned=False),
    ]


class RunLog(ABC):
    """The event log of one run, written by the worker executing it."""

    @abstractmethod
    def publish(self, chunk: StreamChunk) -> None:
        """Append a chunk; never blocks, never raises."""

    @abstractmethod
    async def close(self) -> None:
        """The run ended (its ``end`` chunk was published): flush, and keep the log a while."""


class RunBroker(ABC):
    crosses_processes: bool = False

    async def start(self, on_stop: StopHandler) -> None:
        """Begin delivering stop requests for runs of this process to ``on_stop``."""

    async def close(self) -> None:
        """Stop delivering and release connections."""

    async def ping(self) -> None:
        """Raise :class:`BrokerUnavailableError` if the broker cannot be reached."""

    @abstractmethod
    async def open_run(self, thread_id: str, run_id: str, owner: str | None) -> RunLog:
        """Start the log of a run (of ``owner``), so joiners can find it from now on."""

    @abstractmethod
    async def follow(
        self, thread_id: str, run_id: str, after: int = -1, owner: str | None = None
    ) -> AsyncIterator[list[StreamChunk]]:
        """The run's chunks after index ``after``, in batches: those already published, then
        new ones as they come, until the ``end`` chunk. Raises :class:`RunNotFoundError` at
        once for a run with no log, or of another owner, and :class:`NothingAfterTheEnd` when
        the run ended at or before ``after``."""

    @abstractmethod
    async def request_stop(self, thread_id: str, run_id: str, owner: str | None) -> None:
        """Ask whichever worker executes the run to stop it, if it belongs to ``owner``."""


class _LocalLog(RunLog):
    """A run's chunks, kept serialised: what is bounded is their size, and a node that changes
    an object after emitting it cannot rewrite what joiners read. Beyond ``max_events`` or
    ``max_bytes`` the oldest are dropped (never the last one, which may be the ``end``)."""

    def __init__(
        self, thread_id: str, run_id: str, owner: str | None, max_events: int, max_bytes: int
    ) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.owner = owner
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.entries: deque[bytes] = deque()
        self.first = 0  # the position of entries[0] in the run
        self.size = 0
        self.closed_at: float | None = None
        self.changed = asyncio.Event()

    @property
    def count(self) -> int:
        """How many chunks the run published."""
        return self.first + len(self.entries)

    def publish(self, chunk: StreamChunk) -> None:
        raw = chunk.json()
        self.entries.append(raw)
        self.size += len(raw)
        while len(self.entries) > 1 and (
            len(self.entries) > self.max_events or self.size > self.max_bytes
        ):
            self.size -= len(self.entries.popleft())
            self.first += 1
        self.changed.set()

    async def close(self) -> None:
        self.closed_at = time.monotonic()
        self.changed.set()


class LocalRunBroker(RunBroker):
    """Logs in this process, kept ``retain_s`` after their run ended (at most ``max_runs``),
    each bounded to ``max_events`` chunks and ``max_bytes``."""

    def __init__(
        self,
        retain_s: float = 600,
        max_runs: int = 1000,
        max_events: int = 10_000,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.retain_s = retain_s
        self.max_runs = max_runs
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._logs: OrderedDict[str, _LocalLog] = OrderedDict()
        self._on_stop: StopHandler | None = None

    async def start(self, on_stop: StopHandler) -> None:
        self._on_stop = on_stop

    async def open_run(self, thread_id: str, run_id: str, owner: str | None) -> RunLog:
        self._forget_old()
        log = self._logs[run_id] = _LocalLog(
            thread_id, run_id, owner, self.max_events, self.max_bytes
        )
        return log

    def _forget_old(self) -> None:
        """Drop logs from the oldest end while they are finished and either expired or over
        the limit; stops at the first one to keep, so each call costs O(1) amortised."""
        now = time.monotonic()
        while self._logs:
            oldest = next(iter(self._logs.values()))
            if oldest.closed_at is None:
                break
            expired = now - oldest.closed_at > self.retain_s
            if not expired and len(self._logs) < self.max_runs:
                break
            self._logs.popitem(last=False)

    async def follow(
        self, thread_id: str, run_id: str, after: int = -1, owner: str | None = None
    ) -> AsyncIterator[list[StreamChunk]]:
        log = self._logs.get(run_id)
        if log is None or log.thread_id != thread_id or log.owner != owner:
            raise no_log(thread_id, run_id)
        if log.closed_at is not None and after + 1 >= log.count:
            raise NothingAfterTheEnd
        return self._read(log, after + 1)

    @staticmethod
    async def _read(log: _LocalLog, position: int) -> AsyncIterator[list[StreamChunk]]:
        while True:
            log.changed.clear()
            if position < log.first:  # dropped before this reader came for them: say so
                yield [StreamChunk.gap(log.thread_id, log.run_id, log.first - position)]
                position = log.first
                continue
            if position < log.count:
                kept = itertools.islice(log.entries, position - log.first, None)
                batch = [StreamChunk(**orjson.loads(raw)) for raw in kept]
                position += len(batch)
                yield batch
                continue
            if log.closed_at is not None:
                return
            await log.changed.wait()

    async def request_stop(self, thread_id: str, run_id: str, owner: str | None) -> None:
        if self._on_stop is not None:
            self._on_stop(thread_id, run_id, owner)
