"""``dnc.cxone.paging.ordered_pages``: pages in ``skip`` order whatever order the fetches
finish in, a bounded number in flight, the plan from the totals, errors and cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import pytest

from dnc.cxone.paging import Page, ordered_pages

Fetch = Callable[[int], Coroutine[Any, Any, Page[int]]]


def others() -> set[asyncio.Task[Any]]:
    """Tasks of this loop other than the running one."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def collect(fetch: Fetch, top: int, concurrency: int) -> list[list[int]]:
    return [page async for page in ordered_pages(fetch, top, concurrency)]


def records(skip: int, top: int, total: int) -> list[int]:
    return list(range(skip, min(skip + top, total)))


async def test_pages_come_in_skip_order_when_later_fetches_finish_first() -> None:
    top, total = 10, 50
    gates = {skip: asyncio.Event() for skip in range(top, total, top)}
    started: list[int] = []
    finished: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        started.append(skip)
        if skip:
            await gates[skip].wait()
        finished.append(skip)
        return Page(records(skip, top, total), total)

    consumer = asyncio.create_task(collect(fetch, top, concurrency=4))
    for _ in range(20):  # let the first page through and the other four start
        await asyncio.sleep(0)
    assert sorted(started) == [0, 10, 20, 30, 40]
    for skip in (40, 30, 20, 10):  # the last page answers first
        gates[skip].set()
        for _ in range(5):
            await asyncio.sleep(0)
    pages = await consumer
    assert finished == [0, 40, 30, 20, 10]
    assert pages == [records(skip, top, total) for skip in range(0, total, top)]


@pytest.mark.parametrize("concurrency", [1, 2, 3, 5])
async def test_never_more_than_concurrency_fetches_in_flight(concurrency: int) -> None:
    top, total = 10, 120
    running = 0
    most = 0
    calls: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        nonlocal running, most
        calls.append(skip)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * ((skip // top) % 3))  # uneven answer times
        running -= 1
        return Page(records(skip, top, total), total)

    pages = await collect(fetch, top, concurrency)
    assert most == concurrency
    assert sorted(calls) == list(range(0, total, top))
    assert [n for page in pages for n in page] == list(range(total))


async def test_an_empty_listing_makes_one_call() -> None:
    calls: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        calls.append(skip)
        return Page([], 0)

    assert await collect(fetch, 100, 4) == [[]]
    assert calls == [0]


@pytest.mark.parametrize(("total", "top"), [(1, 10), (10, 10), (11, 10), (95, 10), (1000, 7)])
async def test_calls_are_ceil_total_over_top(total: int, top: int) -> None:
    calls: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        calls.append(skip)
        await asyncio.sleep(0)
        return Page(records(skip, top, total), total)

    pages = await collect(fetch, top, 3)
    assert len(calls) == math.ceil(total / top)
    assert sorted(calls) == list(range(0, total, top))
    assert [n for page in pages for n in page] == list(range(total))


async def test_a_total_that_grows_on_a_later_page_extends_the_plan() -> None:
    top = 10
    totals = {0: 20, 10: 35, 20: 35, 30: 35}  # records were added while paging
    calls: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        calls.append(skip)
        return Page(records(skip, top, totals[skip]), totals[skip])

    pages = await collect(fetch, top, 4)
    assert calls == [0, 10, 20, 30]
    assert [n for page in pages for n in page] == list(range(35))


async def test_a_total_that_shrinks_does_not_cut_the_plan() -> None:
    top = 10
    totals = {0: 40, 10: 15, 20: 15, 30: 15}
    calls: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        calls.append(skip)
        return Page(records(skip, top, totals[skip]), totals[skip])

    pages = await collect(fetch, top, 1)
    assert calls == [0, 10, 20, 30]  # the largest total seen is what is planned
    assert pages == [list(range(10)), [10, 11, 12, 13, 14], [], []]


async def test_a_failing_fetch_propagates_and_cancels_the_others() -> None:
    top, total = 10, 100
    cancelled: list[int] = []
    started: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        started.append(skip)
        if skip == 0:
            return Page(records(0, top, total), total)
        if skip == 10:
            await asyncio.sleep(0.01)  # the others are in flight by then
            raise ValueError("listing refused")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(skip)
            raise
        raise AssertionError("unreachable")

    seen: list[list[int]] = []
    async with asyncio.timeout(5):  # pages left running would hang here
        with pytest.raises(ValueError, match="listing refused"):
            async for page in ordered_pages(fetch, top, 4):
                seen.append(page)
    assert seen == [records(0, top, total)]
    assert started == [0, 10, 20, 30, 40]
    assert sorted(cancelled) == [20, 30, 40]
    assert others() == set()  # nothing left pending


async def test_a_failing_first_fetch_starts_nothing_else() -> None:
    started: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        started.append(skip)
        raise RuntimeError("down")

    with pytest.raises(RuntimeError, match="down"):
        await collect(fetch, 10, 4)
    assert started == [0]
    assert others() == set()


async def test_closing_the_pages_early_cancels_the_fetches_in_flight() -> None:
    top, total = 10, 100
    cancelled: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        if skip <= 10:
            return Page(records(skip, top, total), total)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(skip)
            raise
        raise AssertionError("unreachable")

    pages = ordered_pages(fetch, top, 3)
    assert isinstance(pages, AsyncGenerator)
    assert await anext(pages) == records(0, top, total)
    assert await anext(pages) == records(10, top, total)
    async with asyncio.timeout(5):
        await pages.aclose()  # closed at page 10's yield: 20 and 30 were in flight, 40 not yet
    assert sorted(cancelled) == [20, 30]
    assert others() == set()


async def test_an_answer_without_a_total_is_paged_one_call_at_a_time_to_a_short_page() -> None:
    calls: list[int] = []

    async def fetch(skip: int) -> Page[int]:
        calls.append(skip)
        return Page(list(range(skip, min(skip + 3, 7))), None)

    pages = [page async for page in ordered_pages(fetch, 3, 4)]
    assert pages == [[0, 1, 2], [3, 4, 5], [6]] and calls == [0, 3, 6]
