"""Offset paging (``skip``/``top``) with a few listing calls in flight, yielded in order.

The first call learns ``totalRecords``; the others are started ahead, at most ``concurrency``
at once (the transport's pacer still spaces them under the rate limit), and their pages are
yielded in ``skip`` order, so memory holds at most ``concurrency`` pages. A later page that
reports a larger total extends the plan; paging ends once every ``skip`` below the largest
total seen was listed. API calls = ceil(total / top), or 1 for an empty listing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One listing answer: its ``records`` and the listing's ``total`` (every record
    matched, not this page)."""

    records: list[T]
    total: int


async def ordered_pages(
    fetch: Callable[[int], Coroutine[Any, Any, Page[T]]], top: int, concurrency: int
) -> AsyncIterator[list[T]]:
    """Yield every page's records in order; ``fetch(skip)`` lists one page of ``top``.
    Raises what ``fetch`` raises (pages in flight are cancelled)."""
    first = await fetch(0)
    yield first.records
    total, next_skip = first.total, top
    in_flight: deque[tuple[int, asyncio.Task[Page[T]]]] = deque()
    try:
        while True:
            while len(in_flight) < concurrency and next_skip < total:
                in_flight.append((next_skip, asyncio.create_task(fetch(next_skip))))
                next_skip += top
            if not in_flight:
                return
            _, task = in_flight.popleft()
            page = await task
            yield page.records
            total = max(total, page.total)
    finally:
        for _, task in in_flight:
            task.cancel()
        await asyncio.gather(*(task for _, task in in_flight), return_exceptions=True)
