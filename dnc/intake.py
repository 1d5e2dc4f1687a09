"""Intake: raw body fields -> a validated, normalised ``StoredEvent``, or every reason it is not.

Shared by the HTTP receiver and the bulk importer, so a number is judged the same way whatever
door it came through.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from dnc.e164 import E164Number, PhoneNumberProblem, is_supported_region, to_e164
from dnc.errors import EventValidationError, FieldProblem
from dnc.events import Action, EventBody, StoredEvent
from dnc.target import LATEST_MS
from dnc.timestamps import NAIVE_WARNING, EventTime, TimestampProblem, parse_event_time


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """The rules intake applies; built from ``IntakeSettings`` at the entry point.

    ``default_region``: ISO 3166-1 alpha-2 or ``None`` (only numbers with a country code).
    ``max_future_skew_s``: how far past our clock an event time may be, in seconds.
    ``metadata_max_bytes``: cap on the compact JSON of ``metadata``, in bytes (UTF-8).
    """

    default_region: str | None = "US"
    max_future_skew_s: int = 300
    metadata_max_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """An event that passed intake, with the warnings to return to the caller."""

    event: StoredEvent
    warnings: tuple[str, ...] = ()


def build_event(fields: Mapping[str, object], policy: IntakePolicy, now_ms: int) -> AcceptedEvent:
    """Validate and normalise one event's ``fields`` (wire names: ``phoneNumber``, ...).

    ``now_ms`` is the receive time (UTC epoch ms), stored as ``receivedMs`` and used for the
    future-time check. Raises ``EventValidationError`` listing every bad field at once.
    """
    # An empty optional field (an unset template variable) is an absent one.
    fields = {k: v for k, v in fields.items() if not (k in _OPTIONAL and v in ("", None))}
    try:
        body = EventBody.model_validate(fields)
    except ValidationError as exc:
        problems = _shape_problems(exc)
        problems.extend(_semantic_problems(fields, policy, now_ms, {p.field for p in problems}))
        raise EventValidationError(problems) from None
    return _build_from_body(body, policy, now_ms)


def _build_from_body(body: EventBody, policy: IntakePolicy, now_ms: int) -> AcceptedEvent:
    problems: list[FieldProblem] = []
    number = _number(body, policy, problems)
    event_time = None
    try:
        event_time = parse_event_time(body.timestamp, now_ms, policy.max_future_skew_s)
    except TimestampProblem as exc:
        problems.append(FieldProblem("timestamp", exc.reason, str(exc)))
    expiry = None
    try:
        expiry = check_expiry(
            body.expiresAt, body.eventName, event_time.epoch_ms if event_time else None, now_ms
        )
    except ExpiryProblem as exc:
        problems.append(exc.problem)
    if body.metadata is not None and _json_size(body.metadata) > policy.metadata_max_bytes:
        problems.append(
            FieldProblem(
                "metadata",
                "too_large",
                f"metadata is over {policy.metadata_max_bytes} bytes as JSON",
            )
        )
    if problems or number is None or event_time is None:
        raise EventValidationError(problems)
    expires_ms = expiry.epoch_ms if expiry else None
    event_id = body.eventId or derive_event_id(
        _id_input(number.e164, body.eventName, event_time.epoch_ms, expires_ms)
    )
    event = StoredEvent(
        eventId=event_id,
        eventIdDerived=body.eventId is None,
        e164=number.e164,
        action=body.eventName,
        eventMs=event_time.epoch_ms,
        receivedMs=now_ms,
        region=body.region.upper() if body.region else policy.default_region,
        extension=number.extension,
        metadata=body.metadata,
        expiresMs=expires_ms,
    )
    warnings: tuple[str, ...] = (NAIVE_WARNING,) if event_time.assumed_utc else ()
    if expiry and expiry.assumed_utc:
        warnings += (EXPIRY_NAIVE_WARNING,)
    return AcceptedEvent(event=event, warnings=warnings)


def _number(
    body: EventBody, policy: IntakePolicy, problems: list[FieldProblem]
) -> E164Number | None:
    """The E.164 number of ``body`` (``None`` with its problem appended to ``problems``)."""
    if body.region and not is_supported_region(body.region):
        problems.append(
            FieldProblem(
                "region",
                "unknown_region",
                "region is not a known ISO 3166-1 alpha-2 code with a numbering plan",
            )
        )
        return None  # a bad region hint would only add a misleading phone problem
    try:
        return to_e164(
            body.phoneNumber, body.region.upper() if body.region else policy.default_region
        )
    except PhoneNumberProblem as exc:
        problems.append(FieldProblem("phoneNumber", exc.reason, f"phoneNumber {exc}"))
        return None


def _id_input(e164: str, action: Action, event_ms: int, expires_ms: int | None) -> str:
    """What a derived eventId hashes: the fingerprint ``"<e164>|<action>|<event ms>"``, plus
    ``"|<expiry ms>"`` only when the event has an expiry (so ids of events without one are
    those derived before expiries existed)."""
    fingerprint = f"{e164}|{action.value}|{event_ms}"
    return fingerprint if expires_ms is None else f"{fingerprint}|{expires_ms}"


class ExpiryProblem(ValueError):
    """``expiresAt`` cannot be used; ``problem`` names field ``expiresAt`` and the reason."""

    def __init__(self, reason: str, message: str) -> None:
        self.problem = FieldProblem("expiresAt", reason, message)
        super().__init__(message)


def check_expiry(
    value: object, action: object, event_ms: int | None, now_ms: int
) -> EventTime | None:
    """Parse and check an opt-out's ``expiresAt`` (``None``: no expiry, returns ``None``).

    ``value`` takes the forms of ``timestamp`` (ISO 8601 or epoch ms); ``action`` is the
    event's ``Action`` (anything else: not checked against it); ``event_ms`` is the event time
    and ``now_ms`` the receive time, both UTC epoch ms (``event_ms`` ``None``: the event time
    was unusable, not compared). Returns the expiry as an ``EventTime`` (UTC ms). Raises
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
        expiry = parse_event_time(value, now_ms=LATEST_MS, max_future_skew_s=0)
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


EXPIRY_NAIVE_WARNING = "expiresAt has no time zone; read as UTC"
_EXPIRY_MESSAGES = {
    "wrong_type": "expiresAt must be an ISO 8601 string or epoch ms",
    "invalid": "expiresAt is not ISO 8601 or a usable number of epoch ms",
    "too_old": "expiresAt is before 2000-01-01 (epoch seconds sent as milliseconds?)",
    "too_far": "expiresAt is after 9999-12-31T23:59:59.999Z",
}


def derive_event_id(fingerprint: str) -> str:
    """Idempotency key for an event sent without one: ``d-`` + 32 hex of SHA-256(fingerprint).

    ``fingerprint`` is ``"<e164>|<action>|<event ms>"`` (``StoredEvent.fingerprint``), with
    ``"|<expiry ms>"`` appended by intake when the event has an expiry. The same number, action
    and event time (and expiry) always give the same key, so CXone Studio's automatic retries
    of one event, or a file imported twice, are recognised as duplicates.
    """
    return "d-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32]


def _region_hint(value: object, policy: IntakePolicy) -> str | None:
    if isinstance(value, str) and len(value) == 2 and is_supported_region(value):
        return value.upper()
    return policy.default_region


def _semantic_problems(
    fields: Mapping[str, object], policy: IntakePolicy, now_ms: int, failed: set[str]
) -> list[FieldProblem]:
    """Meaning checks of the fields whose shape was fine, so one answer names every problem."""
    problems: list[FieldProblem] = []
    raw_phone = fields.get("phoneNumber")
    if "phoneNumber" not in failed and isinstance(raw_phone, str):
        try:
            to_e164(raw_phone, _region_hint(fields.get("region"), policy))
        except PhoneNumberProblem as exc:
            problems.append(FieldProblem("phoneNumber", exc.reason, f"phoneNumber {exc}"))
    event_ms = None
    if "timestamp" not in failed and "timestamp" in fields:
        try:
            event_ms = parse_event_time(
                fields["timestamp"], now_ms, policy.max_future_skew_s
            ).epoch_ms
        except TimestampProblem as exc:
            problems.append(FieldProblem("timestamp", exc.reason, str(exc)))
    if "expiresAt" not in failed:
        action = _action_hint(fields.get("eventName"))
        try:
            check_expiry(fields.get("expiresAt"), action, event_ms, now_ms)
        except ExpiryProblem as exc:
            problems.append(exc.problem)
    return problems


def _action_hint(value: object) -> Action | None:
    """The ``Action`` a valid ``eventName`` names (any case, spaces around), else ``None``."""
    if isinstance(value, str):
        folded = value.strip().lower()
        return next((a for a in Action if a.value.lower() == folded), None)
    return None


_OPTIONAL = frozenset({"eventId", "region", "metadata", "expiresAt"})
_SHAPE_REASONS = {
    "missing": "missing",
    "enum": "unknown_event_name",
    "string_too_long": "too_long",
    "string_too_short": "empty",
    "string_pattern_mismatch": "bad_format",
}


def _shape_problems(exc: ValidationError) -> list[FieldProblem]:
    problems: dict[str, FieldProblem] = {}
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else "body"
        if field in problems:
            continue
        reason = _SHAPE_REASONS.get(error["type"], "wrong_type")
        message = (
            "eventName must be optOut or optIn"
            if reason == "unknown_event_name"
            else (f"{field}: {error['msg']}")
        )
        problems[field] = FieldProblem(field, reason, message)
    return list(problems.values())


def _json_size(value: object) -> int:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))
