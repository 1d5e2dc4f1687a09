"""Retry timing: exponential backoff with full jitter, and ``Retry-After`` parsing.

Pure functions, so tests are deterministic (pass ``jitter=False`` or a seeded ``random``).
Sources: "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015) for full jitter;
RFC 9110 section 10.2.3 for ``Retry-After`` (delay-seconds or an HTTP-date).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_DEFAULT_RNG = random.Random()  # noqa: S311 - timing jitter, not security


def backoff_delay_s(
    attempt: int,
    base_s: float,
    cap_s: float,
    *,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry).

    Without jitter: ``min(cap_s, base_s * 2 ** (attempt - 1))``. With full jitter: a uniform
    draw between 0 and that. Raises ``ValueError`` for ``attempt < 1`` or negative times.
    """
    if attempt < 1 or base_s < 0 or cap_s < 0:
        raise ValueError("attempt must be >= 1 and times must not be negative")
    ceiling: float = min(cap_s, base_s * float(2 ** min(attempt - 1, 62)))
    if not jitter:
        return ceiling
    generator = rng if rng is not None else _DEFAULT_RNG
    return generator.uniform(0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` when absent or
    unreadable. Accepts delay-seconds (``"120"``) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``); a date in the past gives ``0.0``. ``now`` defaults
    to the current UTC time."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)
