"""Event-time parsing: when a person opted in or out, as UTC epoch milliseconds.

Accepted forms (ISO 8601 / RFC 3339 as read by ``datetime.fromisoformat``):
``2026-11-29T22:26:37Z``, ``...37.123+01:00``, lowercase ``t`` and ``z`` (RFC 3339 section 5.6
allows them), ``...37`` (no zone: read in the configured zone, UTC by default, with a warning),
and epoch milliseconds as a JSON number or a digit string (form bodies carry only strings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EARLIEST_MS = 946_684_800_000
"""2000-01-01T00:00:00Z in ms: anything earlier is taken for a unit mistake, not an event."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPACE_FOR_PLUS = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}:?\d{2})$"
)
_EPOCH_TEXT = re.compile(r"\d{1,16}(?:\.\d{1,6})?")
_LEAP_SECOND = re.compile(r"([Tt ]\d\d:59:)60(?=[.,Zz+\-]|$)")

NAIVE_WARNING = "timestamp has no time zone; read as UTC"
"""The warning of a time without a zone read in the default zone, UTC (``naive_warning``)."""


def naive_warning(field: str, zone_name: str) -> str:
    """The warning for ``field`` (``timestamp``, ``expiresAt``) written without a zone and read
    in ``zone_name`` (an IANA name): ``"timestamp has no time zone; read as UTC"``."""
    return f"{field} has no time zone; read as {zone_name}"


class UnknownTimeZone(ValueError):
    """A time zone name that is not in the IANA database this process can read."""


@lru_cache(maxsize=64)
def time_zone(name: str) -> tzinfo:
    """The ``tzinfo`` of the IANA zone ``name`` (``"UTC"``, ``"America/New_York"``).

    Raises ``UnknownTimeZone`` for a name the IANA database (``zoneinfo``: the system's, else
    the ``tzdata`` package) does not hold, or that is not a zone name at all (``../x``).
    """
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: not a relative path of the database (absolute, '..'); OSError: a
        # directory or an unreadable file of the database.
        raise UnknownTimeZone(f"{name!r} is not an IANA time zone name") from None


class TimestampProblem(ValueError):
    """A timestamp cannot be used; ``reason`` is a snake_case code, ``str()`` a sentence."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class EventTime:
    """A parsed event time: ``epoch_ms`` (UTC, ms) and ``naive`` when the input had no zone
    (it was then read in the zone the caller passed, UTC by default)."""

    epoch_ms: int
    naive: bool = False


def parse_event_time(
    value: object, now_ms: int, max_future_skew_s: int, naive_zone: tzinfo = UTC
) -> EventTime:
    """Parse ``value`` (str or number) to an ``EventTime``.

    ``now_ms`` is the receiver's clock (UTC epoch ms); a time more than ``max_future_skew_s``
    seconds after it is refused (``in_future``), as is one before 2000 (``too_old``; a value of
    epoch *seconds* sent by mistake lands here). A time without a zone is read in
    ``naive_zone``. Raises ``TimestampProblem``.
    """
    time = parse_time(value, naive_zone)
    if time.epoch_ms > now_ms + max_future_skew_s * 1000:
        raise TimestampProblem(
            "in_future", f"timestamp is more than {max_future_skew_s} s in the future"
        )
    return time


def parse_time(value: object, naive_zone: tzinfo = UTC, *, latest: bool = False) -> EventTime:
    """Parse ``value`` (str or number) to an ``EventTime``, however far in the future.

    A time without a zone is read in ``naive_zone``. A local time that occurs twice when clocks
    go back is read as the first, one skipped when they go forward with the offset before the
    change; with ``latest``, either is read as the later of its two UTC instants (an opt-out
    takes the later, so an opt-in written at the same wall-clock time cannot beat it).
    Refuses (``TimestampProblem``) what is not a time (``invalid``, ``wrong_type``) and a
    time before 2000 (``too_old``: epoch seconds sent by mistake).
    """
    time = _parse_any(value, naive_zone, latest)
    if time.epoch_ms < EARLIEST_MS:
        raise TimestampProblem(
            "too_old",
            "timestamp is before 2000-01-01 (epoch seconds where milliseconds are expected?)",
        )
    return time


def _parse_any(value: object, naive_zone: tzinfo, latest: bool = False) -> EventTime:
    if isinstance(value, bool):
        raise TimestampProblem("wrong_type", "timestamp must be an ISO 8601 string or epoch ms")
    if isinstance(value, int | float):
        return _from_epoch_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_TEXT.fullmatch(text):  # form bodies carry epoch ms as text
            return _from_epoch_ms(float(text) if "." in text else int(text))
        return _from_iso(text, naive_zone, latest)
    raise TimestampProblem("wrong_type", "timestamp must be an ISO 8601 string or epoch ms")


def _from_epoch_ms(value: float) -> EventTime:
    if value != value or value in (float("inf"), float("-inf")) or abs(value) > 2**53:
        raise TimestampProblem("invalid", "timestamp is not a usable number of epoch ms")
    return EventTime(epoch_ms=int(value))


def _from_iso(text: str, naive_zone: tzinfo, latest: bool = False) -> EventTime:
    if not text or len(text) > 64 or not text.isascii():
        raise TimestampProblem("invalid", "timestamp is not ISO 8601")
    if text.endswith("z"):  # RFC 3339: "Z" may be lowercase (Python reads "t", not "z")
        text = text[:-1] + "Z"
    # A form body reads a raw "+" as a space: "...T10:00:00 02:00" was "+02:00" (a space
    # cannot stand there otherwise), the same trap the receiver repairs for phoneNumber.
    text = _SPACE_FOR_PLUS.sub(r"\g<1>+\g<2>", text)
    # RFC 3339 allows a leap second (:60); Python does not: read it as the next second,
    # as POSIX time does.
    leap_ms = 1000 if _LEAP_SECOND.search(text) else 0
    if leap_ms:
        text = _LEAP_SECOND.sub(r"\g<1>59", text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimestampProblem("invalid", "timestamp is not ISO 8601") from None
    if parsed.tzinfo is None:
        readings = [_to_ms(parsed.replace(tzinfo=naive_zone, fold=f)) for f in (0, 1)]
        epoch_ms = (max(readings) if latest else readings[0]) + leap_ms
        return EventTime(epoch_ms=epoch_ms, naive=True)
    return EventTime(epoch_ms=_to_ms(parsed) + leap_ms)


def _to_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def iso_utc(epoch_ms: int) -> str:
    """Render epoch ms as RFC 3339 UTC with milliseconds: ``2026-11-29T22:26:37.123Z``."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
