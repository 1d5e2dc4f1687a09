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

from dnc.e164 import PhoneNumberProblem, is_supported_region, to_e164
from dnc.errors import EventValidationError, FieldProblem
from dnc.events import EventBody, StoredEvent
from dnc.timestamps import NAIVE_WARNING, TimestampProblem, parse_event_time


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
    region = body.region.upper() if body.region else policy.default_region
    if body.region and not is_supported_region(body.region):
        problems.append(
            FieldProblem(
                "region",
                "unknown_region",
                "region is not a known ISO 3166-1 alpha-2 code with a numbering plan",
            )
        )
    number = None
    if not problems:  # a bad region hint would only add a misleading phone problem
        try:
            number = to_e164(body.phoneNumber, region)
        except PhoneNumberProblem as exc:
            problems.append(FieldProblem("phoneNumber", exc.reason, f"phoneNumber {exc}"))
    event_time = None
    try:
        event_time = parse_event_time(body.timestamp, now_ms, policy.max_future_skew_s)
    except TimestampProblem as exc:
        problems.append(FieldProblem("timestamp", exc.reason, str(exc)))
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
    fingerprint = f"{number.e164}|{body.eventName.value}|{event_time.epoch_ms}"
    event = StoredEvent(
        eventId=body.eventId or derive_event_id(fingerprint),
        eventIdDerived=body.eventId is None,
        e164=number.e164,
        action=body.eventName,
        eventMs=event_time.epoch_ms,
        receivedMs=now_ms,
        region=region,
        extension=number.extension,
        metadata=body.metadata,
    )
    warnings = (NAIVE_WARNING,) if event_time.assumed_utc else ()
    return AcceptedEvent(event=event, warnings=warnings)


def derive_event_id(fingerprint: str) -> str:
    """Idempotency key for an event sent without one: ``d-`` + 32 hex of SHA-256(fingerprint).

    The same number, action and event time always give the same key, so CXone Studio's
    automatic retries of one event are recognised as duplicates.
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
    if "timestamp" not in failed and "timestamp" in fields:
        try:
            parse_event_time(fields["timestamp"], now_ms, policy.max_future_skew_s)
        except TimestampProblem as exc:
            problems.append(FieldProblem("timestamp", exc.reason, str(exc)))
    return problems


_OPTIONAL = frozenset({"eventId", "region", "metadata"})
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
