"""What the DNC-group endpoints share: the group a request's path names, and a record's values
read as the sandbox reads them.

A phone number is valid when it is a string of digits, optionally with ``+ - ( ) .`` and
spaces, holding 7-15 digits; it is stored and matched as those digits (``formattedPhone``).
An ``expiredDate`` is a future ISO 8601 time (no zone: UTC) in a year up to 9998.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.context import Sandbox
from sandbox.http import Request, Response, error
from sandbox.state import DncGroup

_DIGITS = frozenset("0123456789")
_FORMATTING = frozenset(" +-().")
_LAST_YEAR = 9998


def phone_digits(value: object) -> tuple[str, bool]:
    """The digits of ``value`` (``formattedPhone``) and whether it is a valid number."""
    text = value if isinstance(value, str) else ""
    digits = "".join(c for c in text if c in _DIGITS)
    valid = isinstance(value, str) and set(text) <= _DIGITS | _FORMATTING
    return digits, valid and 7 <= len(digits) <= 15


def is_failing(sandbox: Sandbox, digits: str) -> bool:
    """Whether ``digits`` are one of ``failing_numbers`` (see ``listed``)."""
    return listed(sandbox.config.failing_numbers, digits)


def listed(numbers: list[str], digits: str) -> bool:
    """Whether ``digits`` are one of ``numbers``, reading 10 digits also as the +1 national
    form (``2025550123`` matches ``+12025550123`` and the reverse)."""
    if digits in numbers:
        return True
    if len(digits) == 10:
        return "1" + digits in numbers
    return len(digits) == 11 and digits.startswith("1") and digits[1:] in numbers


def parse_expiry(value: object, now_s: float) -> float | None:
    """``None`` (no expiry) or the epoch seconds of a future ISO 8601 date (no zone: UTC);
    ``ValueError`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expiredDate is not a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() <= now_s:
        raise ValueError("expiredDate is not in the future")
    if moment.astimezone(UTC).year > _LAST_YEAR:  # listable as RFC 3339 UTC, year <= 9999
        raise ValueError("expiredDate is too far in the future")
    return moment.timestamp()


def find_group(sandbox: Sandbox, request: Request) -> DncGroup | None:
    """The group the request's ``group_id`` path parameter names, ``None`` when none is."""
    return sandbox.state.groups.get(request.params["group_id"])


def no_group(request: Request) -> Response:
    """404 for a ``group_id`` that names no configured group."""
    return error(404, "not_found", f"DNC group {request.params['group_id']} does not exist")
