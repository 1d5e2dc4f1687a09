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

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo

from pydantic import ValidationError
from pydantic_core import from_json

from dnc.e164 import E164Number, PhoneNumberProblem, is_supported_region, to_e164
from dnc.errors import EventValidationError, FieldProblem
from dnc.events import Action, DroppedField, EventBody, StoredEvent
from dnc.target import LATEST_MS
from dnc.timestamps import (
    EventTime,
    TimestampProblem,
    naive_warning,
    parse_event_time,
    parse_time,
    time_zone,
)

AFTER_RECEIPT = "after_receipt"
"""Reason of the note on a timestamp later than receipt (recorded as the receipt time)."""
NO_TIME_ZONE = "no_time_zone"
"""Reason of the note on a timestamp or expiresAt written without a zone."""
OPTIONAL_FIELDS = ("eventId", "region", "metadata", "expiresAt")
"""The optional fields: a bad one is dropped from an opt-out, and refuses an opt-in."""
PLAN_CHANGE = "plan_change"
"""Reason of the note on a number written in a form its country has retired (stored under
today's number)."""
UNVERIFIED_NUMBER = "unverified_number"
"""Reason of the note on an opt-out's number that the installed metadata does not know."""
ALIAS_ID_SEPARATOR = "~"
"""Between an event's eventId and the E.164 of an alias form in the alias copy's eventId."""


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """The rules intake applies; built from ``IntakeSettings`` at the entry point.

    ``default_region``: ISO 3166-1 alpha-2 or ``None`` (only numbers with a country code).
    ``max_future_skew_s``: how far past our clock an opt-in's event time may be, in seconds
    (later: refused; an opt-out is never refused for it).
    ``metadata_max_bytes``: cap on the compact JSON of ``metadata``, in bytes (UTF-8).
    ``naive_time_zone``: IANA name of the zone a time written without one is read in.
    """

    default_region: str | None = "US"
    max_future_skew_s: int = 300
    metadata_max_bytes: int = 4096
    naive_time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """An event that passed intake, with what to tell the caller.

    ``warnings``: sentences for the caller, one per dropped field and per note.
    ``dropped``: the optional fields left out of an opt-out, each with the reason and message
    it would have been refused with. ``notes``: how a field was read (``phoneNumber``
    ``plan_change`` / ``unverified_number``; ``timestamp`` ``after_receipt``; ``timestamp`` /
    ``expiresAt`` ``no_time_zone``). ``alias_events``: the same opt-out under each other E.164
    form of its subscriber (``StoredEvent.aliasOf``), empty for an opt-in and for almost every
    number; ``events`` is what to record, as one group.
    """

    event: StoredEvent
    warnings: tuple[str, ...] = ()
    dropped: tuple[FieldProblem, ...] = ()
    notes: tuple[FieldProblem, ...] = ()
    alias_events: tuple[StoredEvent, ...] = ()

    @property
    def events(self) -> tuple[StoredEvent, ...]:
        """The event and its alias copies, in that order: one group, recorded atomically."""
        return (self.event, *self.alias_events)

    @property
    def naive_time(self) -> bool:
        """Whether the event time was written without a time zone."""
        return any(n.field == "timestamp" and n.reason == NO_TIME_ZONE for n in self.notes)

    @property
    def warning_reasons(self) -> list[str]:
        """``"<field>:<reason>"`` of every dropped field and note, for counting."""
        return [f"{p.field}:{p.reason}" for p in (*self.dropped, *self.notes)]


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
    fields = {k: v for k, v in fields.items() if not (k in _OPTIONAL and v in ("", None))}
    try:
        body = EventBody.model_validate(fields)
    except ValidationError as exc:
        problems = _shape_problems(exc)
        malformed = {p.field for p in problems}
        if _action_hint(fields.get("eventName")) is Action.OPT_OUT and malformed <= _OPTIONAL:
            # Only optional fields are malformed: judge the opt-out without them.
            rest = {k: v for k, v in fields.items() if k not in malformed}
            judged = [_Judged(p, True, _excerpt(fields.get(p.field))) for p in problems]
            return _build_from_body(EventBody.model_validate(rest), policy, now_ms, judged, sender)
        problems.extend(_semantic_problems(fields, policy, now_ms, malformed))
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
    if metadata is not None and (size := _json_size(metadata)) > policy.metadata_max_bytes:
        judged.append(_Judged(_metadata_too_large(policy), True, f"{size} bytes"))
        metadata = None
    judged.sort(key=lambda j: _FIELD_ORDER.get(j.problem.field, len(_FIELD_ORDER)))
    opt_out = body.eventName is Action.OPT_OUT
    if any(not (j.droppable and opt_out) for j in judged) or number is None or event_time is None:
        raise EventValidationError([j.problem for j in judged])
    dropped = tuple(j.problem for j in judged)
    gone = {p.field for p in dropped}
    expires_ms = expiry.epoch_ms if expiry else None
    caller_id = None if "eventId" in gone else body.eventId
    event_id = caller_id or derive_event_id(
        _id_input(number.e164, body.eventName, sent_ms, expires_ms)
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
    warnings = tuple(n.message for n in notes) + tuple(_dropped_warning(p) for p in dropped)
    return AcceptedEvent(event, warnings, dropped, tuple(notes), _alias_events(event, aliases))


def alias_event_id(event_id: str, alias: str) -> str:
    """The idempotency key of an opt-out's copy under the alias form ``alias`` (E.164):
    ``"<event_id>~<alias>"``. Derived from the event's own key, so a retry of the request
    (the same eventId, or the same derived one) finds every copy's key again: ``duplicate``
    for all."""
    return f"{event_id}{ALIAS_ID_SEPARATOR}{alias}"


def _alias_events(event: StoredEvent, aliases: tuple[str, ...]) -> tuple[StoredEvent, ...]:
    """``event`` (an opt-out) under each alias form: the same action, times and expiry, its
    own number (a pending number and watermark of its own) and key, ``aliasOf`` the number."""
    return tuple(
        event.model_copy(
            update={
                "eventId": alias_event_id(event.eventId, alias),
                "e164": alias,
                "aliases": None,
                "aliasOf": event.e164,
            }
        )
        for alias in aliases
    )


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


UNVERIFIED_WARNING = (
    "phoneNumber has a possible length for its country but is in a range the installed "
    "numbering metadata does not know (it may be new); the opt-out is kept and pushed, and "
    "dead-lettered with CXone's reason if CXone refuses the number"
)
"""The warning of an opt-out's number the metadata does not know (``unverified_number``)."""


def _metadata_too_large(policy: IntakePolicy) -> FieldProblem:
    message = f"metadata is over {policy.metadata_max_bytes} bytes as JSON"
    return FieldProblem("metadata", "too_large", message)


def _dropped_warning(problem: FieldProblem) -> str:
    """The caller's sentence for a field left out of an opt-out."""
    return f"{problem.field} dropped ({problem.reason}): {problem.message}; {_KEPT[problem.field]}"


_KEPT = {
    "expiresAt": "the opt-out is recorded without an expiry: it never lapses",
    "metadata": "the opt-out is recorded without it",
    "region": "the number has its country code and is read without the hint",
    "eventId": "the opt-out is recorded under a derived eventId",
}
_FIELD_ORDER = {
    name: index
    for index, name in enumerate(
        ("phoneNumber", "eventName", "timestamp", "eventId", "region", "metadata", "expiresAt")
    )
}
_UNKNOWN_REGION = FieldProblem(
    "region",
    "unknown_region",
    "region is not a known ISO 3166-1 alpha-2 code with a numbering plan",
)


def _number(
    body: EventBody, policy: IntakePolicy, bad_region: _Judged | None
) -> tuple[E164Number | None, list[_Judged]]:
    """The E.164 number of ``body`` (``None`` when it cannot be identified) and the problems
    found. ``bad_region``: a malformed region hint already left out of ``body``. For an
    opt-out a possible number the metadata does not know is kept (``unverified``)."""
    unverified = body.eventName is Action.OPT_OUT
    hint = bad_region
    if hint is None and body.region and not is_supported_region(body.region):
        hint = _Judged(_UNKNOWN_REGION, True, body.region)
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
        judged.append(_Judged(_in_future(policy.max_future_skew_s), False))
        return None, sent.epoch_ms
    message = CLAMP_WARNING
    if too_far:
        message += f" (more than {policy.max_future_skew_s} s ahead: check the sender's clock)"
    notes.append(FieldProblem("timestamp", AFTER_RECEIPT, message))
    return EventTime(now_ms, sent.naive), sent.epoch_ms


CLAMP_WARNING = (
    "timestamp is after the time of receipt; recorded as the receipt time (the time sent is "
    "kept as sentEventMs)"
)
"""The warning of an event time later than receipt (``after_receipt``)."""


def _in_future(skew_s: int) -> FieldProblem:
    return FieldProblem(
        "timestamp",
        "in_future",
        f"timestamp is more than {skew_s} s in the future (an opt-in must not be)",
    )


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
    action = _action_hint(fields.get("eventName"))
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
            problems.append(_in_future(policy.max_future_skew_s))
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
        problems.append(_UNKNOWN_REGION)
    metadata = fields.get("metadata")
    if "metadata" not in failed and metadata is not None:
        size = _json_size(from_json(metadata) if isinstance(metadata, str) else metadata)
        if size > policy.metadata_max_bytes:
            problems.append(_metadata_too_large(policy))
    return problems


def _action_hint(value: object) -> Action | None:
    """The ``Action`` a valid ``eventName`` names (any case, spaces around), else ``None``."""
    if isinstance(value, str):
        folded = value.strip().lower()
        return next((a for a in Action if a.value.lower() == folded), None)
    return None


_OPTIONAL = frozenset(OPTIONAL_FIELDS)
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


REUSED_ID = FieldProblem("eventId", "reused", "eventId was already used for a different event")


def under_derived_id(accepted: AcceptedEvent) -> AcceptedEvent | None:
    """``accepted`` (an opt-out whose caller ``eventId`` was already used for a different
    event) recorded under the key derived from number, action, time and expiry instead, with
    ``eventId`` dropped (reason ``reused``), so the opt-out is kept and a retry of it is still
    recognised. ``None`` for an opt-in (refused, 409) or an id that is already derived."""
    event = accepted.event
    if event.action is not Action.OPT_OUT or event.eventIdDerived:
        return None
    sent_ms = event.sentEventMs if event.sentEventMs is not None else event.eventMs
    derived = derive_event_id(_id_input(event.e164, event.action, sent_ms, event.expiresMs))
    dropped_field = DroppedField(
        field="eventId", reason="reused", message=REUSED_ID.message, sent=event.eventId[:64]
    )
    event = event.model_copy(
        update={
            "eventId": derived,
            "eventIdDerived": True,
            "dropped": (*(event.dropped or ()), dropped_field),
        }
    )
    aliases = tuple(alias.e164 for alias in accepted.alias_events)
    return AcceptedEvent(
        event,
        (*accepted.warnings, _dropped_warning(REUSED_ID)),
        (*accepted.dropped, REUSED_ID),
        accepted.notes,
        _alias_events(event, aliases),
    )
