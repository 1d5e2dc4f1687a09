"""Group commit: concurrent submits share flushes, each caller gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from dnc.coalescer import Coalescer


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail

    async def flush(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("down")
        return [item * 10 for item in items]


async def test_concurrent_submits_share_one_flush() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, max_batch=100)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(20)))
    assert results == [i * 10 for i in range(20)]
    assert recorder.calls == [list(range(20))]


async def test_batches_are_capped() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, max_batch=8)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(20)))
    assert results == [i * 10 for i in range(20)]
    assert [len(call) for call in recorder.calls] == [8, 8, 4]


async def test_sequential_submits_flush_alone() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, max_batch=8)
    assert [await coalescer.submit(i) for i in range(3)] == [0, 10, 20]
    assert recorder.calls == [[0], [1], [2]]


async def test_failure_reaches_every_caller_of_the_batch() -> None:
    coalescer = Coalescer(Recorder(fail=True).flush, max_batch=8)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, max_batch=8)
    tasks = [asyncio.create_task(coalescer.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], asyncio.CancelledError)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(Recorder().flush, max_batch=0)


async def test_weighed_items_are_never_split() -> None:
    calls: list[list[str]] = []

    async def flush(items: Sequence[str]) -> list[int]:
        calls.append(list(items))
        return [len(item) for item in items]

    coalescer = Coalescer(flush, max_batch=4, size=len)
    items = ["a", "bb", "ccc", "dddddd", "e"]
    assert await asyncio.gather(*(coalescer.submit(i) for i in items)) == [1, 2, 3, 6, 1]
    # At most 4 in all per call; an item heavier than that goes alone, whole.
    assert calls == [["a", "bb"], ["ccc"], ["dddddd"], ["e"]]
