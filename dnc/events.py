"""Payload shapes: the webhook body as CXone sends it, and the event as stored in Redis."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    StrictInt,
)
from pydantic_core import from_json


class Action(StrEnum):
    """What the person asked for: ``optOut`` (add to DNC) or ``optIn`` (remove from DNC)."""

    OPT_OUT = "optOut"
    OPT_IN = "optIn"


_ACTIONS_FOLDED = {action.value.lower(): action for action in Action}


def _fold_action(value: object) -> object:
    if isinstance(value, str):
        return _ACTIONS_FOLDED.get(value.strip().lower(), value)
    return value


def _metadata_from_form(value: object) -> object:
    """Form bodies carry only strings: read ``metadata`` as a JSON object when it is one."""
    if isinstance(value, str):
        try:
            return from_json(value)  # bounded nesting; refuses lone surrogates
        except ValueError:
            return value
    return value


class EventBody(BaseModel):
    """The body CXone Studio / a Data Action posts (JSON or form fields of the same names).

    Shapes only; meaning (E.164, event time, region support, metadata size) is checked by
    ``dnc.intake.build_event``. Unknown fields are ignored so callers can add their own.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    phoneNumber: str = Field(
        min_length=1,
        max_length=100,
        description="The number in any human form: punctuation, tel: URI, extension, "
        "Unicode digits, vanity letters. Must be a valid number of its country. One written in "
        "a form its country has retired (Mexico's +52 1 and 044/045, Brazil's 8-digit mobiles, "
        "...) is recorded under the number it is dialled at today, with a warning. For an "
        "opt-out, a number of a possible length in a range the installed numbering metadata "
        "does not know is kept, with a warning; an opt-in with it is refused (invalid_number). "
        "An opt-out is also recorded under the subscriber's other E.164 forms (aliases).",
    )
    eventName: Annotated[Action, BeforeValidator(_fold_action)] = Field(
        description="optOut or optIn, any case."
    )
    timestamp: str | StrictInt | StrictFloat = Field(
        description="When the person opted in/out: RFC 3339 / ISO 8601 with Z or an offset "
        "(t and z may be lowercase; no zone: read in DNC_INTAKE_NAIVE_TIME_ZONE, UTC by "
        "default, with a warning), or epoch milliseconds. A time after receipt is recorded as "
        "the receipt time, the sent time kept, with a warning: an event cannot have happened "
        "after it was received. Refused: not a time, before 2000 (epoch seconds sent as "
        "milliseconds), and for an opt-in only, more than DNC_INTAKE_MAX_FUTURE_SKEW_S ahead."
    )
    eventId: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="The caller's idempotency key (printable ASCII, at most 128); derived when "
        "absent. A malformed one is refused for an opt-in; an opt-out is kept with a derived "
        "key instead, with a warning.",
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 alpha-2 region for numbers written without a country code. "
        "An unknown one is refused when the number has no country code (it cannot be "
        "identified) and for an opt-in; an opt-out written with its country code (+...) is "
        "kept without the hint, with a warning.",
    )
    metadata: Annotated[dict[str, JsonValue] | None, BeforeValidator(_metadata_from_form)] = Field(
        default=None,
        description="Free-form object kept with the event for audit, at most "
        "DNC_INTAKE_METADATA_MAX_BYTES as JSON. Over the cap or not an object: refused for an "
        "opt-in; an opt-out is kept without it, with a warning.",
    )
    expiresAt: str | StrictInt | StrictFloat | None = Field(
        default=None,
        description="Opt-outs only: when the opt-out lapses, in the same forms as timestamp "
        "(RFC 3339 with Z or an offset, or epoch milliseconds); absent: the opt-out never "
        "lapses. Any expiresAt on an opt-in is refused. An unusable one on an opt-out (not a "
        "time, at or before the event time, already past when received, before 2000, after "
        "9999) is dropped with a warning: the opt-out is kept and never lapses, the stricter "
        "reading.",
    )


class DroppedField(BaseModel):
    """An optional field left out of a recorded opt-out, kept in the audit record: the wire
    ``field`` name, the ``reason`` code and ``message`` it would have been refused with, and
    ``sent``: an excerpt of what was sent (at most 64 characters; for metadata over the cap,
    its size)."""

    model_config = ConfigDict(frozen=True)

    field: str
    reason: str
    message: str
    sent: str | None = None


class StoredEvent(BaseModel):
    """The latest-known event for a number, as kept in Redis (JSON, camelCase keys).

    ``eventMs`` and ``receivedMs`` are UTC epoch milliseconds. ``eventIdDerived`` is true when
    the caller sent no usable ``eventId`` and the key was derived from number, action and sent
    time (and the expiry, when there is one). ``expiresMs`` (UTC epoch ms, opt-outs only,
    ``None``: never) is when the opt-out lapses. ``sentEventMs`` (UTC epoch ms) is the event
    time as sent when it was after receipt (``eventMs`` is then the receipt time).
    ``naiveTimeZone`` is the IANA zone a timestamp written without one was read in.
    ``dropped`` lists the optional fields left out of an opt-out and why.
    Issue 11, rules 3 and 4 (docs/numbering-plans.md): ``planChange`` is the key of the
    numbering-plan change applied when the number was written in a form its country retired
    (``"MX-2019-mobile-1"``: ``e164`` is today's number); ``unverifiedNumber`` is true for an
    opt-out kept for a number of a possible length that the installed metadata does not know;
    ``aliases`` (on an opt-out) lists the other E.164 forms of the same subscriber the opt-out
    was also recorded under, and ``aliasOf`` (on such a copy) is the E.164 of the number as
    sent, its eventId being ``"<that event's eventId>~<this e164>"``. ``sender`` says who sent
    it, for the audit record: ``bearer-<n>``/``hmac-<n>`` (the credential's position in its
    setting, never the secret), ``unknown`` (authentication disabled), ``import``. Each of
    these is left out of the JSON when absent, so events without them are stored as before.
    """

    model_config = ConfigDict(frozen=True)

    eventId: str
    eventIdDerived: bool
    e164: str
    action: Action
    eventMs: int
    receivedMs: int
    region: str | None = None
    extension: str | None = None
    metadata: dict[str, Any] | None = None
    expiresMs: int | None = None
    sentEventMs: int | None = None
    naiveTimeZone: str | None = None
    dropped: tuple[DroppedField, ...] | None = None
    planChange: str | None = None
    unverifiedNumber: bool | None = None
    aliases: tuple[str, ...] | None = None
    aliasOf: str | None = None
    sender: str | None = None

    @property
    def fingerprint(self) -> str:
        """``"<e164>|<action>|<eventMs>"``: what an idempotency key must always stand for."""
        return f"{self.e164}|{self.action.value}|{self.eventMs}"
