"""Publishers: where a run's :class:`StreamChunk` events go.

The engine calls a *publish* callable with each chunk as it happens (see
:meth:`CompiledGraph.start_run`). This module holds the publishers we ship:

* :class:`IteratorPublisher` queues chunks for one in-process consumer. It backs
  ``CompiledGraph.astream`` and the server's streaming endpoints, and is what to use when
  embedding a graph in your own asyncio program::

      publisher = IteratorPublisher()
      run = await graph.start_run({"messages": ["hi"]}, publish=publisher)
      task = asyncio.create_task(run.execute())
      task.add_done_callback(lambda _: publisher.close())
      async for chunk in publisher:
          print(chunk.event, chunk.data)

* :func:`encode_sse` and :func:`encode_ndjson` turn chunks into the bytes of the HTTP wire
  formats the server speaks (``text/event-stream`` and ``application/x-ndjson``).

This module depends on nothing but the graph's types, so the engine can use it without pulling
in the web server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from agentflow.graph.types import StreamChunk

SSE_MEDIA_TYPE = "text/event-stream"
NDJSON_MEDIA_TYPE = "application/x-ndjson"


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


def encode_sse(chunk: StreamChunk, index: int) -> bytes:
    """One Server-Sent Event: ``id: <index>``, ``event: <type>``, ``data: <StreamChunk JSON>``,
    blank line. The id is the chunk's position in the run, so a client that lost the stream can
    join it again after the last id it saw. JSON never contains a raw newline, so one
    ``data:`` line always suffices."""
    return b"".join(
        (
            b"id: %d\nevent: " % index,
            chunk.event.encode(),
            b"\ndata: ",
            orjson.dumps(chunk.to_dict()),
            b"\n\n",
        )
    )


def encode_ndjson(chunk: StreamChunk) -> bytes:
    """One StreamChunk JSON object per line, agentflow's streaming format."""
    return orjson.dumps(chunk.to_dict()) + b"\n"
