"""Injected trouble: latency, a token-bucket rate limit (429 + Retry-After), random 5xx and
hangs, and lost replies (a write applied, then its answer lost), decided by one seeded random
generator so a run can be repeated exactly.

Order for every API and token call: sleep ``latency_ms``; take a rate-limit token (none left:
429); draw one number in [0, 1): below ``timeout_rate`` hang ``hang_s`` then 504, below
``timeout_rate + error_rate`` answer 500/502/503 (a second draw picks which). Nothing is drawn
while both rates are 0. Retry-After follows RFC 9110 §10.2.3 (delta-seconds or IMF-fixdate).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from dataclasses import dataclass
from email.utils import formatdate

from receiver.asgi import Receive
from sandbox.http import Response, error
from sandbox.settings import FaultConfig, RetryAfterMode

ERROR_STATUSES = (500, 502, 503)


class TokenBucket:
    """``rate_per_s`` tokens a second, holding at most ``max(1, rate_per_s)``; starts full."""

    def __init__(self, rate_per_s: float, now_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s)
        self._tokens = self.capacity
        self._last_s = now_s

    def take(self, now_s: float) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        elapsed = max(0.0, now_s - self._last_s)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)
        self._last_s = now_s
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate_per_s


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of answering: ``kind`` is ``rate_limited`` (with ``wait_s``),
    ``error`` (with ``status``) or ``timeout``."""

    kind: str
    status: int
    wait_s: float = 0.0


class FaultInjector:
    """Decides, per call, whether a fault replaces the answer (see the module docstring)."""

    def __init__(self, config: FaultConfig, now_s: float) -> None:
        self._rng = random.Random(config.seed)  # noqa: S311 - fault injection, not security
        self._bucket = TokenBucket(config.rate_limit_rps, now_s)

    def restart(self, config: FaultConfig, now_s: float) -> None:
        """Reseed the generator from ``config.seed`` and refill the rate-limit bucket."""
        self._rng.seed(config.seed)
        self._bucket = TokenBucket(config.rate_limit_rps, now_s)

    def roll(self) -> float:
        """One draw in [0, 1) from the seeded generator."""
        return self._rng.random()

    def draw(self, config: FaultConfig, now_s: float) -> Fault | None:
        """The fault for this call, or ``None`` to answer normally."""
        if config.rate_limit_rps > 0:
            if self._bucket.rate_per_s != config.rate_limit_rps:
                self._bucket = TokenBucket(config.rate_limit_rps, now_s)
            wait_s = self._bucket.take(now_s)
            if wait_s > 0:
                return Fault("rate_limited", 429, wait_s)
        if config.timeout_rate == 0 and config.error_rate == 0:
            return None
        roll = self._rng.random()
        if roll < config.timeout_rate:
            return Fault("timeout", 504)
        if roll < config.timeout_rate + config.error_rate:
            return Fault("error", self._rng.choice(ERROR_STATUSES))
        return None


def lose_reply(injector: FaultInjector, config: FaultConfig) -> bool:
    """Whether the answer to a successful API call (an applied write, an answered read) is
    lost (``lost_reply_rate``)."""
    return config.lost_reply_rate > 0 and injector.roll() < config.lost_reply_rate


def retry_after(mode: RetryAfterMode, wait_s: float, now_s: float) -> tuple[bytes, bytes] | None:
    """The Retry-After header for a wait of ``wait_s`` seconds from ``now_s`` (epoch), in
    ``mode``: whole seconds rounded up (at least 1), an IMF-fixdate, or ``None``."""
    seconds = max(1, math.ceil(wait_s))
    if mode == "seconds":
        return (b"retry-after", str(seconds).encode())
    if mode == "http-date":
        return (b"retry-after", formatdate(math.ceil(now_s) + seconds, usegmt=True).encode())
    return None


def fault_response(fault: Fault, mode: RetryAfterMode, now_s: float) -> Response:
    """The answer a fault gives: 429 (``rate_limited``), 500/502/503 or 504."""
    if fault.kind == "rate_limited":
        header = retry_after(mode, fault.wait_s, now_s)
        return error(429, "rate_limited", "too many requests", (header,) if header else ())
    if fault.kind == "timeout":
        return error(504, "gateway_timeout", "injected timeout")
    return error(fault.status, "injected_fault", f"injected {fault.status}")


async def hang(receive: Receive, seconds: float) -> bool:
    """Wait ``seconds``, or less if the client disconnects first; ``True`` if it did."""
    waiter = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    return bool(done)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
