"""Event-time parsing: ISO 8601 forms, epoch ms, naive times, and refusals."""

from __future__ import annotations

import pytest

from dnc.timestamps import (
    TimestampProblem,
    UnknownTimeZone,
    iso_utc,
    parse_event_time,
    parse_time,
    time_zone,
)

NOW_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z
T_MS = 1_794_999_000_000


@pytest.mark.parametrize(
    ("value", "expected_ms", "naive"),
    [
        ("2026-11-18T09:30:00Z", 1_794_994_200_000, False),
        ("2026-11-18T09:30:00.250Z", 1_794_994_200_250, False),
        ("2026-11-18T10:30:00+01:00", 1_794_994_200_000, False),
        ("2026-11-18T04:30:00.5-05:00", 1_794_994_200_500, False),
        ("2026-11-18T09:30:00", 1_794_994_200_000, True),
        (T_MS, T_MS, False),
        (float(T_MS) + 0.9, T_MS, False),
        (str(T_MS), T_MS, False),
        (f" {T_MS} ", T_MS, False),
        (f"{T_MS}.0", T_MS, False),
        (f"{T_MS}.75", T_MS, False),
        # RFC 3339 leap second: the next second, as POSIX time counts it.
        ("2016-12-31T23:59:60Z", 1_483_228_800_000, False),
        ("2016-12-31T23:59:60.250+00:00", 1_483_228_800_250, False),
        ("2016-12-31T23:59:60", 1_483_228_800_000, True),
        ("2016-12-31 23:59:60Z", 1_483_228_800_000, False),
        # RFC 3339 section 5.6: "T" and "Z" may be lowercase.
        ("2026-11-18t09:30:00z", 1_794_994_200_000, False),
        ("2026-11-18T09:30:00.250z", 1_794_994_200_250, False),
        ("2026-11-18t10:30:00+01:00", 1_794_994_200_000, False),
        ("2016-12-31t23:59:60z", 1_483_228_800_000, False),
    ],
)
def test_accepted_forms(value: object, expected_ms: int, naive: bool) -> None:
    parsed = parse_event_time(value, NOW_MS, 300)
    assert (parsed.epoch_ms, parsed.naive) == (expected_ms, naive)


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        ("2026-11-18T09:30:00", 1_795_012_200_000),  # EST: UTC-5
        ("2026-07-01T09:30:00", 1_782_912_600_000),  # EDT: UTC-4
        ("2026-11-01T01:30:00", 1_793_511_000_000),  # clocks go back: the first 01:30 (EDT)
        ("2026-03-08T02:30:00", 1_772_955_000_000),  # clocks go forward: read with EST
        ("2026-11-18T09:30:00Z", 1_794_994_200_000),  # a zone given wins
        (1_794_994_200_000, 1_794_994_200_000),  # epoch ms carry no zone question
    ],
)
def test_a_time_without_a_zone_is_read_in_the_given_zone(value: object, expected_ms: int) -> None:
    parsed = parse_time(value, time_zone("America/New_York"))
    assert parsed.epoch_ms == expected_ms
    assert parsed.naive is (isinstance(value, str) and not value.endswith("Z"))


@pytest.mark.parametrize("name", ["Mars/Base", "../../etc/passwd", "/etc/localtime", "", "utc"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(UnknownTimeZone):
        time_zone(name)


def test_parse_time_has_no_future_limit() -> None:
    assert parse_time("2999-01-01T00:00:00Z").epoch_ms == 32_472_144_000_000
    with pytest.raises(TimestampProblem):
        parse_time("1999-12-31T23:59:59Z")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (NOW_MS + 301_000, "in_future"),
        ("2027-01-01T00:00:00Z", "in_future"),
        (1_794_999_000, "too_old"),  # epoch seconds sent by mistake
        ("1999-12-31T23:59:59Z", "too_old"),
        ("yesterday", "invalid"),
        ("2026-13-01T00:00:00Z", "invalid"),
        ("2016-12-31T23:59:61Z", "invalid"),
        ("2020-06-01T12:34:60Z", "invalid"),  # a leap second only ends a minute :59
        ("12.34.56", "invalid"),
        ("\u0662\u0660\u0662\u0666-01-01", "invalid"),
        (float("nan"), "invalid"),
        (float("inf"), "invalid"),
        (True, "wrong_type"),
        (None, "wrong_type"),
        ([], "wrong_type"),
    ],
)
def test_refused(value: object, reason: str) -> None:
    with pytest.raises(TimestampProblem) as info:
        parse_event_time(value, NOW_MS, 300)
    assert info.value.reason == reason


def test_future_skew_is_configurable() -> None:
    assert parse_event_time(NOW_MS + 299_000, NOW_MS, 300).epoch_ms == NOW_MS + 299_000
    with pytest.raises(TimestampProblem):
        parse_event_time(NOW_MS + 1_000, NOW_MS, 0)


def test_iso_utc_round_trips() -> None:
    assert iso_utc(1_794_994_200_250) == "2026-11-18T09:30:00.250Z"
    assert parse_event_time(iso_utc(T_MS), NOW_MS, 300).epoch_ms == T_MS
