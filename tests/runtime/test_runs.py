"""Run rules that are hard to reach over HTTP at the exact moment: a stop that arrives
before its run's task ever starts, or after it ended."""

import asyncio

import pytest

from agentflow.checkpoint import InMemoryCheckpointer
from agentflow.leases import InMemoryLeases
from agentflow.runtime.broker import LocalRunBroker
from agentflow.runtime.errors import RunStoppedError
from agentflow.runtime.runs import RunOptions, Runs, _LocalRun
from agentflow.runtime.threads import Threads
from tests.graphs.versatile import app


@pytest.fixture
async def runs():
    store = InMemoryCheckpointer()
    graph = app.with_checkpointer(store)
    runs = Runs(graph, Threads(graph, store, InMemoryLeases()), LocalRunBroker())
    await runs.start()
    yield runs
    await runs.aclose()


async def test_a_stop_before_the_run_starts_still_frees_the_thread(runs):
    # The stop reaches this worker while the run is still being launched (it holds the
    # thread, but its task has not run yet): the run is stopped at registration.
    runs._on_stop_request("t", "early-run", None)
    with pytest.raises(RunStoppedError, match="stopped by a stop request"):
        await runs.invoke(RunOptions(input={}, thread_id="t", recursion_limit=5), "early-run")
    assert await runs.leases.holder("t") is None
    result = await runs.invoke(RunOptions(input={}, thread_id="t", recursion_limit=5), "next-run")
    assert result.values["count"] == 1


async def test_a_stream_stopped_before_it_starts_ends_with_error_and_end(runs):
    runs._on_stop_request("s", "early-stream", None)
    chunks = await runs.stream(
        RunOptions(input={}, thread_id="s", recursion_limit=5), "early-stream"
    )
    events = [chunk.event async for batch in chunks for chunk in batch]
    assert events == ["error", "end"]
    assert await runs.leases.holder("s") is None


async def test_a_stop_that_lands_as_the_run_ends_by_itself_stops_nothing(runs):
    """The run's task finished (its stream ends in success) while its end is still queued to
    be processed: the stop must not answer that it stopped it."""
    result = await runs.invoke(RunOptions(input={}, thread_id="f", recursion_limit=5), "done")
    finished = asyncio.get_running_loop().create_future()
    finished.set_result(result)
    runs._running["f"] = _LocalRun("f", "done", None, finished)
    assert await runs.stop("f") is None
