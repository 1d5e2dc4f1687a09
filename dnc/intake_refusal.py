"""Every reason a body is refused: its shape problems, then the meaning of its other fields.

``dnc.intake.build_event`` refuses a malformed body with one answer naming every problem, so
the fields whose shape was fine are judged here too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import from_json

from dnc.e164 import PhoneNumberProblem, is_supported_region, to_e164
from dnc.errors import FieldProblem
from dnc.events import Action
from dnc.expiry import ExpiryProblem, check_expiry
from dnc.intake_messages import UNKNOWN_REGION, in_future, metadata_too_large
from dnc.intake_policy import IntakePolicy
from dnc.timestamps import TimestampProblem, parse_time, time_zone

_SHAPE_REASONS = {
    "missing": "missing",
    "enum": "unknown_event_name",
    "string_too_long": "too_long",
    "string_too_short": "empty",
    "string_pattern_mismatch": "bad_format",
}


def shape_problems(exc: ValidationError) -> list[FieldProblem]:
    """One problem per field of the body's validation errors (the first of each)."""
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


def semantic_problems(
    fields: Mapping[str, object], policy: IntakePolicy, now_ms: int, failed: set[str]
) -> list[FieldProblem]:
    """Meaning checks of the fields whose shape was fine, so one answer names every problem."""
    problems: list[FieldProblem] = []
    action = action_hint(fields.get("eventName"))
    raw_phone = fields.get("phoneNumber")
    if "phoneNumber" not in failed and isinstance(raw_phone, str):
        region = _region_hint(fields.get("region"), policy)
        try:
            to_e164(raw_phone, region, allow_unverified=action is Action.OPT_OUT)
        except PhoneNumberProblem as exc:
            problems.append(FieldProblem("phoneNumber", exc.reason, f"phoneNumber {exc}"))
    problems.extend(_hint_and_metadata_problems(fields, policy, failed))
    zone = time_zone(policy.naive_time_zone)
    event_ms = None
    if "timestamp" not in failed and "timestamp" in fields:
        try:
            event_ms = parse_time(fields["timestamp"], zone).epoch_ms
        except TimestampProblem as exc:
            problems.append(FieldProblem("timestamp", exc.reason, str(exc)))
        beyond = now_ms + policy.max_future_skew_s * 1000
        if event_ms is not None and event_ms > beyond and action is not Action.OPT_OUT:
            problems.append(in_future(policy.max_future_skew_s))
    if "expiresAt" not in failed:
        try:
            check_expiry(fields.get("expiresAt"), action, event_ms, now_ms, zone)
        except ExpiryProblem as exc:
            problems.append(exc.problem)
    return problems


def _hint_and_metadata_problems(
    fields: Mapping[str, object], policy: IntakePolicy, failed: set[str]
) -> list[FieldProblem]:
    """An unknown region and metadata over the cap, when their shape was fine."""
    problems: list[FieldProblem] = []
    region = fields.get("region")
    if "region" not in failed and isinstance(region, str) and not is_supported_region(region):
        problems.append(UNKNOWN_REGION)
    metadata = fields.get("metadata")
    if "metadata" not in failed and metadata is not None:
        size = json_size(from_json(metadata) if isinstance(metadata, str) else metadata)
        if size > policy.metadata_max_bytes:
            problems.append(metadata_too_large(policy))
    return problems


def _region_hint(value: object, policy: IntakePolicy) -> str | None:
    if isinstance(value, str) and len(value) == 2 and is_supported_region(value):
        return value.upper()
    return policy.default_region


def action_hint(value: object) -> Action | None:
    """The ``Action`` a valid ``eventName`` names (any case, spaces around), else ``None``."""
    if isinstance(value, str):
        folded = value.strip().lower()
        return next((a for a in Action if a.value.lower() == folded), None)
    return None


def json_size(value: object) -> int:
    """Bytes of ``value`` as compact JSON (UTF-8)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))
