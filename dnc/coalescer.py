"""Group commit: concurrent writes of one event loop go to Redis in one round trip.

Under load many requests wait on Redis at once; sending each alone costs a round trip and the
client's per-command overhead every time. ``Coalescer.submit`` queues an item and, on the next
turn of the event loop, everything queued by then is flushed in one call (at most
``max_batch`` items per call, or items of that total ``size``; several calls may be in
flight). An item is never split: an item of several writes goes whole into one call. Each
caller gets its own result or exception, and only once the flush has completed, so an
acknowledgement still means "written". At low load a batch is one item and the added latency
is one loop turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

Flush = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]


class Coalescer(Generic[Item, Result]):
    """Batches ``submit`` calls into calls of ``flush(items) -> results`` (same length, same
    order). An exception from ``flush`` is raised to every caller of that batch. ``size``
    weighs an item (default 1 each): a call holds items of total size at most ``max_batch``,
    or a single item that weighs more."""

    def __init__(
        self,
        flush: Flush[Item, Result],
        max_batch: int,
        size: Callable[[Item], int] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._size = size
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """Queue ``item`` and wait for its result from the batch it joins."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start_flushes)
        return await future

    def _start_flushes(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for batch in self._batches(queue):
            task = asyncio.create_task(self._run(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    def _batches(
        self, queue: list[tuple[Item, asyncio.Future[Result]]]
    ) -> Iterator[list[tuple[Item, asyncio.Future[Result]]]]:
        """``queue`` in order, cut into batches of total size at most ``max_batch``."""
        if self._size is None:
            for start in range(0, len(queue), self._max_batch):
                yield queue[start : start + self._max_batch]
            return
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        total = 0
        for entry in queue:
            weight = self._size(entry[0])
            if batch and total + weight > self._max_batch:
                yield batch
                batch, total = [], 0
            batch.append(entry)
            total += weight
        if batch:
            yield batch

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:  # every waiter of the batch gets the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
