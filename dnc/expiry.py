"""An opt-out's expiry (``expiresAt``): read, and checked against its event and receipt."""

from __future__ import annotations

from datetime import UTC, tzinfo

from dnc.errors import FieldProblem
from dnc.events import Action
from dnc.target import LATEST_MS
from dnc.timestamps import EventTime, TimestampProblem, parse_event_time


class ExpiryProblem(ValueError):
    """``expiresAt`` cannot be used; ``problem`` names field ``expiresAt`` and the reason."""

    def __init__(self, reason: str, message: str) -> None:
        self.problem = FieldProblem("expiresAt", reason, message)
        super().__init__(message)


def check_expiry(
    value: object, action: object, event_ms: int | None, now_ms: int, naive_zone: tzinfo = UTC
) -> EventTime | None:
    """Parse and check an opt-out's ``expiresAt`` (``None``: no expiry, returns ``None``).

    ``value`` takes the forms of ``timestamp`` (ISO 8601 or epoch ms; without a zone: read in
    ``naive_zone``); ``action`` is the event's ``Action`` (anything else: not checked against
    it); ``event_ms`` is the event time as sent and ``now_ms`` the receive time, both UTC epoch
    ms (``event_ms`` ``None``: the event time was unusable, not compared). Returns the expiry
    as an ``EventTime`` (UTC ms). Raises
    ``ExpiryProblem`` with reason ``not_for_opt_in``, ``wrong_type``, ``invalid``, ``too_old``,
    ``too_far`` (after 9999-12-31), ``before_event_time`` (at or before the event time) or
    ``already_lapsed`` (at or before ``now_ms``).
    """
    if value is None:
        return None
    if action is Action.OPT_IN:
        raise ExpiryProblem(
            "not_for_opt_in", "expiresAt is for opt-outs only: an opt-in does not lapse"
        )
    try:
        # The latest instant RFC 3339 can name bounds it, as DncChange and CXone require.
        expiry = parse_event_time(value, LATEST_MS, 0, naive_zone)
    except TimestampProblem as exc:
        reason = "too_far" if exc.reason == "in_future" else exc.reason
        raise ExpiryProblem(reason, _EXPIRY_MESSAGES.get(reason, str(exc))) from None
    if event_ms is not None and expiry.epoch_ms <= event_ms:
        raise ExpiryProblem(
            "before_event_time", "expiresAt is at or before the event time (timestamp)"
        )
    if expiry.epoch_ms <= now_ms:
        raise ExpiryProblem("already_lapsed", "expiresAt is already past: this opt-out has lapsed")
    return expiry


_EXPIRY_MESSAGES = {
    "wrong_type": "expiresAt must be an ISO 8601 string or epoch ms",
    "invalid": "expiresAt is not ISO 8601 or a usable number of epoch ms",
    "too_old": "expiresAt is before 2000-01-01 (epoch seconds sent as milliseconds?)",
    "too_far": "expiresAt is after 9999-12-31T23:59:59.999Z",
}
