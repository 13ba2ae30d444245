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
from collections.abc import AsyncIterator

from agentflow.graph.types import StreamChunk


class IteratorPublisher:
    """A publish callable whose chunks are read back with ``async for``.

    The queue is unbounded so a publishing node never blocks on a slow reader; a reader that
    stops reading must :meth:`close` (or cancel the run) so memory is released.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[StreamChunk | None] = asyncio.Queue()

    def __call__(self, chunk: StreamChunk) -> None:
        self._queue.put_nowait(chunk)

    def close(self) -> None:
        """End the iteration once the chunks already published have been read."""
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def batches(self) -> AsyncIterator[list[StreamChunk]]:
        """The chunks in batches of those already published: a writer can send each batch at
        once (one write for the several events a step ends with) without delaying any."""
        while (first := await self._queue.get()) is not None:
            batch = [first]
            while not self._queue.empty():
                chunk = self._queue.get_nowait()
                if chunk is None:
                    yield batch
                    return
                batch.append(chunk)
            yield batch
