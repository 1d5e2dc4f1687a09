"""Client-side pacing: at most ``rate_per_s`` requests per second and ``max_concurrency`` in
flight, so a tenant's configured limit is respected rather than discovered through 429s."""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiolimiter import AsyncLimiter


class Pacer:
    """An async context manager around each request. ``rate_per_s`` ``None`` or 0: no rate
    limit (the concurrency limit still holds)."""

    def __init__(self, rate_per_s: float | None, max_concurrency: int) -> None:
        self._limiter = _limiter(rate_per_s) if rate_per_s else None
        self._slots = asyncio.Semaphore(max_concurrency)

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        if self._limiter is not None:
            try:
                await self._limiter.acquire()
            except BaseException:
                self._slots.release()
                raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._slots.release()


def _limiter(rate_per_s: float) -> AsyncLimiter:
    """At least one request per window: below 1/s the window grows instead (0.5/s = 1 per 2 s);
    aiolimiter needs a capacity of at least one."""
    if rate_per_s >= 1:
        return AsyncLimiter(rate_per_s, 1.0)
    return AsyncLimiter(1, 1 / rate_per_s)
