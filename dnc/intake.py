"""Intake: raw body fields -> a validated, normalised ``StoredEvent``, or every reason it is not.

Shared by the HTTP receiver and the bulk importer, so a number is judged the same way whatever
door it came through.

An opt-out is never refused over an optional field (``eventId``, ``region``, ``metadata``,
``expiresAt``): a bad one is left out of the event (an unusable expiry leaves the opt-out
permanent, the stricter reading), named in ``AcceptedEvent.dropped`` and the warnings, and
kept in the event's audit record (``StoredEvent.dropped``). An opt-in lifts protection, so the
same problem refuses it. A region hint is dropped only when the number is written with its
country code: otherwise the hint is what identifies the number. An event time after receipt is
recorded as the receipt time (``StoredEvent.sentEventMs`` keeps the sent one); only an opt-in
more than ``max_future_skew_s`` ahead is refused.

The number (issue 11, rules 3 and 4; docs/numbering-plans.md): one written in a form its
country has retired is recorded under today's number, with a ``phoneNumber`` ``plan_change``
note. For an opt-out, a number of a possible length that the installed ``phonenumbers``
metadata does not know is kept with a ``phoneNumber`` ``unverified_number`` note
(``StoredEvent.unverifiedNumber``); an opt-in with it is refused (``invalid_number``). An
opt-out for a number whose subscriber has other E.164 forms (``E164Number.aliases``) is also
recorded under each of them: ``AcceptedEvent.alias_events``, one event per form, each with the
idempotency key ``alias_event_id(<eventId>, <form>)``; the caller records
``AcceptedEvent.events`` in one store call (``EventStore.record_group``), so all of them are
recorded or none. An opt-in is not spread: it lifts protection only from the form it names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo

from pydantic import ValidationError

from dnc.accepted_event import AcceptedEvent, under_derived_id
from dnc.e164 import E164Number, PhoneNumberProblem, is_supported_region, to_e164
from dnc.errors import EventValidationError, FieldProblem
from dnc.event_ids import (
    ALIAS_ID_SEPARATOR,
    alias_event_id,
    alias_events,
    derive_event_id,
    id_input,
)
from dnc.events import Action, DroppedField, EventBody, StoredEvent
from dnc.expiry import ExpiryProblem, check_expiry
from dnc.intake_messages import (
    AFTER_RECEIPT,
    CLAMP_WARNING,
    FIELD_ORDER,
    NO_TIME_ZONE,
    OPTIONAL,
    OPTIONAL_FIELDS,
    PLAN_CHANGE,
    REUSED_ID,
    UNKNOWN_REGION,
    UNVERIFIED_NUMBER,
    UNVERIFIED_WARNING,
    dropped_warning,
    in_future,
    metadata_too_large,
)
from dnc.intake_policy import IntakePolicy
from dnc.intake_refusal import action_hint, json_size, semantic_problems, shape_problems
from dnc.timestamps import EventTime, TimestampProblem, naive_warning, parse_time, time_zone

__all__ = [
    "AFTER_RECEIPT",
    "ALIAS_ID_SEPARATOR",
    "CLAMP_WARNING",
    "NO_TIME_ZONE",
    "OPTIONAL_FIELDS",
    "PLAN_CHANGE",
    "REUSED_ID",
    "UNVERIFIED_NUMBER",
    "UNVERIFIED_WARNING",
    "AcceptedEvent",
    "ExpiryProblem",
    "IntakePolicy",
    "alias_event_id",
    "build_event",
    "check_expiry",
    "derive_event_id",
    "under_derived_id",
]


@dataclass(frozen=True, slots=True)
class _Judged:
    """One problem and whether an opt-out survives it (the field is then dropped)."""

    problem: FieldProblem
    droppable: bool
    sent: str | None = None


def build_event(
    fields: Mapping[str, object], policy: IntakePolicy, now_ms: int, *, sender: str | None = None
) -> AcceptedEvent:
    """Validate and normalise one event's ``fields`` (wire names: ``phoneNumber``, ...).

    ``now_ms`` is the receive time (UTC epoch ms), stored as ``receivedMs``; an event time
    after it is recorded as it. ``sender`` (``StoredEvent.sender``: ``bearer-<n>``,
    ``hmac-<n>``, ``import``) is recorded with the event and its alias copies. Raises
    ``EventValidationError`` listing every bad field at once; an opt-out whose only problems
    are in optional fields is accepted without them.
    """
    # An empty optional field (an unset template variable) is an absent one.
    fields = {k: v for k, v in fields.items() if not (k in OPTIONAL and v in ("", None))}
    try:
        body = EventBody.model_validate(fields)
    except ValidationError as exc:
        problems = shape_problems(exc)
        malformed = {p.field for p in problems}
        if action_hint(fields.get("eventName")) is Action.OPT_OUT and malformed <= OPTIONAL:
            # Only optional fields are malformed: judge the opt-out without them.
            rest = {k: v for k, v in fields.items() if k not in malformed}
            judged = [_Judged(p, True, _excerpt(fields.get(p.field))) for p in problems]
            return _build_from_body(EventBody.model_validate(rest), policy, now_ms, judged, sender)
        problems.extend(semantic_problems(fields, policy, now_ms, malformed))
        raise EventValidationError(problems) from None
    return _build_from_body(body, policy, now_ms, [], sender)


def _build_from_body(
    body: EventBody,
    policy: IntakePolicy,
    now_ms: int,
    malformed: list[_Judged],
    sender: str | None,
) -> AcceptedEvent:
    """The event of a well-shaped ``body``; ``malformed``: optional fields of an opt-out
    already left out of it for their shape (all droppable)."""
    zone = time_zone(policy.naive_time_zone)
    bad_region = next((j for j in malformed if j.problem.field == "region"), None)
    number, judged = _number(body, policy, bad_region)
    judged += [j for j in malformed if j.problem.field != "region"]
    notes = _number_notes(number)
    event_time, sent_ms = _event_time(body, policy, now_ms, zone, judged, notes)
    expiry = _expiry(body, sent_ms, now_ms, zone, policy.naive_time_zone, judged, notes)
    metadata = body.metadata
    if metadata is not None and (size := json_size(metadata)) > policy.metadata_max_bytes:
        judged.append(_Judged(metadata_too_large(policy), True, f"{size} bytes"))
        metadata = None
    judged.sort(key=lambda j: FIELD_ORDER.get(j.problem.field, len(FIELD_ORDER)))
    opt_out = body.eventName is Action.OPT_OUT
    if any(not (j.droppable and opt_out) for j in judged) or number is None or event_time is None:
        raise EventValidationError([j.problem for j in judged])
    dropped = tuple(j.problem for j in judged)
    gone = {p.field for p in dropped}
    expires_ms = expiry.epoch_ms if expiry else None
    caller_id = None if "eventId" in gone else body.eventId
    event_id = caller_id or derive_event_id(
        id_input(number.e164, body.eventName, sent_ms, expires_ms)
    )
    region = body.region.upper() if body.region and "region" not in gone else None
    aliases = number.aliases if opt_out else ()
    event = StoredEvent(
        eventId=event_id,
        eventIdDerived=caller_id is None,
        e164=number.e164,
        action=body.eventName,
        eventMs=event_time.epoch_ms,
        receivedMs=now_ms,
        region=region or policy.default_region,
        extension=number.extension,
        metadata=metadata,
        expiresMs=expires_ms,
        sentEventMs=sent_ms if sent_ms != event_time.epoch_ms else None,
        naiveTimeZone=policy.naive_time_zone if event_time.naive else None,
        dropped=tuple(
            DroppedField(
                field=j.problem.field,
                reason=j.problem.reason,
                message=j.problem.message,
                sent=j.sent,
            )
            for j in judged
        )
        or None,
        planChange=number.plan_change,
        unverifiedNumber=True if number.unverified else None,
        aliases=aliases or None,
        sender=sender,
    )
    warnings = tuple(n.message for n in notes) + tuple(dropped_warning(p) for p in dropped)
    return AcceptedEvent(event, warnings, dropped, tuple(notes), alias_events(event, aliases))


def _number_notes(number: E164Number | None) -> list[FieldProblem]:
    """The notes on how the number was read: a retired form (``plan_change``), a range the
    metadata does not know (``unverified_number``)."""
    notes: list[FieldProblem] = []
    if number is not None and number.plan_change:
        message = (
            f"phoneNumber is written in a form its country has retired ({number.plan_change}); "
            f"recorded as {number.e164}, the number its subscriber is dialled at today"
        )
        notes.append(FieldProblem("phoneNumber", PLAN_CHANGE, message))
    if number is not None and number.unverified:
        notes.append(FieldProblem("phoneNumber", UNVERIFIED_NUMBER, UNVERIFIED_WARNING))
    return notes


def _number(
    body: EventBody, policy: IntakePolicy, bad_region: _Judged | None
) -> tuple[E164Number | None, list[_Judged]]:
    """The E.164 number of ``body`` (``None`` when it cannot be identified) and the problems
    found. ``bad_region``: a malformed region hint already left out of ``body``. For an
    opt-out a possible number the metadata does not know is kept (``unverified``)."""
    unverified = body.eventName is Action.OPT_OUT
    hint = bad_region
    if hint is None and body.region and not is_supported_region(body.region):
        hint = _Judged(UNKNOWN_REGION, True, body.region)
    if hint is not None:
        # The hint is unusable: only a number written with its country code is identified
        # without it; any other number needs it, so the hint's problem refuses the event.
        try:
            return to_e164(body.phoneNumber, None, allow_unverified=unverified), [hint]
        except PhoneNumberProblem as exc:
            if exc.reason == "invalid_country_code":
                return None, [_Judged(hint.problem, False)]
            return None, [_phone_problem(exc), hint]
    try:
        region = body.region.upper() if body.region else policy.default_region
        return to_e164(body.phoneNumber, region, allow_unverified=unverified), []
    except PhoneNumberProblem as exc:
        return None, [_phone_problem(exc)]


def _phone_problem(exc: PhoneNumberProblem) -> _Judged:
    return _Judged(FieldProblem("phoneNumber", exc.reason, f"phoneNumber {exc}"), False)


def _event_time(
    body: EventBody,
    policy: IntakePolicy,
    now_ms: int,
    zone: tzinfo,
    judged: list[_Judged],
    notes: list[FieldProblem],
) -> tuple[EventTime | None, int]:
    """The event time to record (``None``: unusable, its problem appended to ``judged``) and
    the time as sent, UTC ms. A time after ``now_ms`` is recorded as ``now_ms`` (noted)."""
    try:
        sent = parse_time(body.timestamp, zone, latest=body.eventName is Action.OPT_OUT)
    except TimestampProblem as exc:
        judged.append(_Judged(FieldProblem("timestamp", exc.reason, str(exc)), False))
        return None, 0
    if sent.naive:
        message = naive_warning("timestamp", policy.naive_time_zone)
        notes.append(FieldProblem("timestamp", NO_TIME_ZONE, message))
    if sent.epoch_ms <= now_ms:
        return sent, sent.epoch_ms
    too_far = sent.epoch_ms > now_ms + policy.max_future_skew_s * 1000
    if too_far and body.eventName is not Action.OPT_OUT:
        judged.append(_Judged(in_future(policy.max_future_skew_s), False))
        return None, sent.epoch_ms
    message = CLAMP_WARNING
    if too_far:
        message += f" (more than {policy.max_future_skew_s} s ahead: check the sender's clock)"
    notes.append(FieldProblem("timestamp", AFTER_RECEIPT, message))
    return EventTime(now_ms, sent.naive), sent.epoch_ms


def _expiry(
    body: EventBody,
    sent_ms: int | None,
    now_ms: int,
    zone: tzinfo,
    zone_name: str,
    judged: list[_Judged],
    notes: list[FieldProblem],
) -> EventTime | None:
    """The usable expiry of ``body`` or ``None``; a problem is appended to ``judged``
    (droppable for an opt-out), a time without a zone to ``notes``."""
    try:
        expiry = check_expiry(body.expiresAt, body.eventName, sent_ms or None, now_ms, zone)
    except ExpiryProblem as exc:
        judged.append(_Judged(exc.problem, True, _excerpt(body.expiresAt)))
        return None
    if expiry is not None and expiry.naive:
        notes.append(FieldProblem("expiresAt", NO_TIME_ZONE, naive_warning("expiresAt", zone_name)))
    return expiry


def _excerpt(value: object) -> str | None:
    """At most 64 characters of what was sent in a field, for the audit record."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:64]
