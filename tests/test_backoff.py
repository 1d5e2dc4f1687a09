"""Backoff and Retry-After: the pure timing functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from dnc.backoff import backoff_delay_s, parse_retry_after

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 10.0), (100, 10.0)]
)
def test_exponential_without_jitter_is_capped(attempt: int, expected: float) -> None:
    assert backoff_delay_s(attempt, 0.5, 10.0, jitter=False) == expected


def test_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    draws = [backoff_delay_s(4, 0.5, 10.0, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in draws)
    assert min(draws) < 0.5 and max(draws) > 3.5  # spread over the whole range


def test_seeded_jitter_is_repeatable() -> None:
    assert backoff_delay_s(3, 1, 60, rng=random.Random(1)) == backoff_delay_s(
        3, 1, 60, rng=random.Random(1)
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay_s(0, 1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 29 Nov 2026 12:00:30 GMT", 30.0),
        ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
