"""Offset paging (``skip``/``top``) with a few listing calls in flight, yielded in order.

The first call learns ``totalRecords``; the others are started ahead, at most ``concurrency``
at once (the transport's pacer still spaces them under the rate limit), and their pages are
yielded in ``skip`` order, so memory holds at most ``concurrency`` pages. A later page that
reports a larger total extends the plan; paging ends once every ``skip`` below the largest
total seen was listed. API calls = ceil(total / top), or 1 for an empty listing. An answer
without a total is paged one call at a time until a page shorter than ``top``. The readers
count what the pages held (``PagedReader.listed``): fewer than the total means records were
skipped (removed while paging, or a server that pages differently).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class Counted(Protocol):
    """What a reader counts calls with: the transport's ``calls``."""

    calls: int


class PagedReader:
    """What the readers (``dnc.held_records.RecordReader``) share: the page size, the
    concurrency, the listing's total so far and the calls made through ``transport`` since
    the reader was built."""

    def __init__(self, transport: Counted, page_size: int, concurrency: int) -> None:
        self._transport = transport
        self._page_size = page_size
        self._concurrency = concurrency
        self._calls_before = transport.calls
        self._total = 0
        self._listed = 0

    def _count(self, listed: int, total: int | None) -> None:
        """Count one answer: ``listed`` items in it (before any filtering), its total."""
        self._listed += listed
        self._total = max(self._total, self._listed if total is None else total)

    @property
    def listed(self) -> int:
        """Items the listing's answers held so far (every contact, flagged or not)."""
        return self._listed

    @property
    def page_size(self) -> int:
        """Records (or contacts) per listing call (``top``)."""
        return self._page_size

    @property
    def total(self) -> int:
        """The largest ``totalRecords`` a listing answer gave so far (0 before the first)."""
        return self._total

    @property
    def calls(self) -> int:
        """Calls made through the transport since this reader was built (listing and
        one-number lookups, retries included)."""
        return self._transport.calls - self._calls_before


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One listing answer: its ``records``, the listing's ``total`` (every record matched,
    not this page; ``None`` when the answer did not say) and how many items it ``listed``
    before any filtering (``None``: as many as ``records``)."""

    records: list[T]
    total: int | None
    listed: int | None = None

    @property
    def size(self) -> int:
        """Items the answer held, before any filtering."""
        return len(self.records) if self.listed is None else self.listed


async def ordered_pages(
    fetch: Callable[[int], Coroutine[Any, Any, Page[T]]], top: int, concurrency: int
) -> AsyncIterator[list[T]]:
    """Yield every page's records in order; ``fetch(skip)`` lists one page of ``top``.
    Raises what ``fetch`` raises (pages in flight are cancelled)."""
    first = await fetch(0)
    yield first.records
    if first.total is None:  # no total: one page at a time, to the first short one
        page, skip = first, 0
        while page.size >= top:
            skip += top
            page = await fetch(skip)
            yield page.records
        return
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
            total = max(total, page.total or 0)
    finally:
        for _, task in in_flight:
            task.cancel()
        await asyncio.gather(*(task for _, task in in_flight), return_exceptions=True)
