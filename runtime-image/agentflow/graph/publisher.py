"""Publishers: where a run's :class:`StreamChunk` events go.

The engine calls a *publish* callable with each chunk as it happens (see
:meth:`CompiledGraph.start_run`). :class:`IteratorPublisher` queues them for one in-process
consumer. It backs ``CompiledGraph.astream`` and the server's streaming endpoints, and is what
to use when embedding a graph in your own asyncio program::

    publisher = IteratorPublisher()
    run = await graph.start_run({"messages": ["hi"]}, publish=publisher)
    task = asyncio.create_task(run.execute())
    task.add_done_callback(lambda _: publisher.close())
    async for chunk in publisher:
        print(chunk.event, chunk.data)
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

from agentflow.graph.types import StreamChunk


class IteratorPublisher:
    """A publish callable whose chunks are read back with ``async for``.

    A publishing node never blocks on a slow reader. With ``max_pending``, a reader that falls
    further behind loses the oldest chunks it has not read, and reads a ``gap`` chunk saying
    how many in their place: memory stays bounded whatever the reader does. Without it the
    queue is unbounded, and a reader that stops reading must :meth:`close` (or cancel the run).
    """

    def __init__(self, max_pending: int | None = None) -> None:
        self._queue: collections.deque[StreamChunk | None] = collections.deque()
        self._ready = asyncio.Event()
        self.max_pending = max_pending
        self._missed = 0
        self._last_dropped: StreamChunk | None = None

    def __call__(self, chunk: StreamChunk) -> None:
        self._queue.append(chunk)
        if self.max_pending is not None and len(self._queue) > self.max_pending:
            dropped = self._queue.popleft()
            assert dropped is not None  # the end marker is always last
            self._missed += 1
            self._last_dropped = dropped
        self._ready.set()

    def close(self) -> None:
        """End the iteration once the chunks already published have been read."""
        self._queue.append(None)
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def batches(self) -> AsyncIterator[list[StreamChunk]]:
        """The chunks in batches of those already published: a writer can send each batch at
        once (one write for the several events a step ends with) without delaying any."""
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            batch: list[StreamChunk] = []
            if self._missed:
                assert self._last_dropped is not None
                dropped = self._last_dropped
                batch.append(StreamChunk.gap(dropped.thread_id, dropped.run_id, self._missed))
                self._missed = 0
            while self._queue:
                chunk = self._queue.popleft()
                if chunk is None:
                    if batch:
                        yield batch
                    return
                batch.append(chunk)
            yield batch
