"""The reconcile queue: one worker per key at a time, duplicates collapsed, failures retried
with a doubling, capped backoff that resets on success."""

import asyncio

from agentflow_operator.workqueue import WorkQueue


async def test_a_key_is_never_worked_on_twice_at_once_and_comes_back_if_added_meanwhile():
    running: set[str] = set()
    overlaps, runs = [], []
    release = asyncio.Event()

    async def work(key: str) -> bool:
        overlaps.append(key in running)
        running.add(key)
        runs.append(key)
        await release.wait()
        running.discard(key)
        return True

    queue: WorkQueue[str] = WorkQueue(work, workers=4, retry_base_s=1, retry_max_s=8)
    task = asyncio.create_task(queue.run())
    queue.add("a")
    await asyncio.sleep(0.01)
    for _ in range(5):  # events while "a" is being reconciled: one more round, not five
        queue.add("a")
    release.set()
    for _ in range(500):  # bounded
        if not len(queue):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert runs == ["a", "a"]
    assert not any(overlaps)


def test_backoff_doubles_up_to_its_cap_and_resets():
    queue: WorkQueue[str] = WorkQueue(lambda key: asyncio.sleep(0, True), 1, 2, 300)
    waits = []
    for failures in range(1, 11):
        queue._failures["g"] = failures
        waits.append(queue.backoff("g"))
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    queue.forget("g")
    assert queue.backoff("g") == 2


async def test_a_failing_key_is_retried_until_it_succeeds_then_its_backoff_resets():
    waits: list[float] = []

    async def work(key: str) -> bool:
        waits.append(queue.backoff(key))
        return len(waits) >= 3

    queue: WorkQueue[str] = WorkQueue(work, workers=1, retry_base_s=0.01, retry_max_s=1)
    task = asyncio.create_task(queue.run())
    queue.add("g")
    for _ in range(500):  # bounded: a few hundredths of a second of backoff in all
        if len(waits) >= 3 and not len(queue):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert waits == [0.01, 0.01, 0.02]  # before each attempt: the wait that preceded it
    assert queue.backoff("g") == 0.01  # succeeded: back to the first wait
