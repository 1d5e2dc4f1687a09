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
        "Unicode digits, vanity letters.",
    )
    eventName: Annotated[Action, BeforeValidator(_fold_action)] = Field(
        description="optOut or optIn, any case."
    )
    timestamp: str | StrictInt | StrictFloat = Field(
        description="When the person opted in/out: ISO 8601 with Z or an offset (no zone is "
        "read as UTC), or epoch milliseconds."
    )
    eventId: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="The caller's idempotency key (printable ASCII); derived when absent.",
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 alpha-2 region for numbers written without a country code.",
    )
    metadata: Annotated[dict[str, JsonValue] | None, BeforeValidator(_metadata_from_form)] = Field(
        default=None, description="Free-form object kept with the event for audit (size-capped)."
    )
    expiresAt: str | StrictInt | StrictFloat | None = Field(
        default=None,
        description="Opt-outs only: when the opt-out lapses, in the same forms as timestamp "
        "(ISO 8601 with Z or an offset, or epoch milliseconds). Must be after the event time "
        "and still in the future when received; absent: the opt-out never lapses.",
    )


class StoredEvent(BaseModel):
    """The latest-known event for a number, as kept in Redis (JSON, camelCase keys).

    ``eventMs`` and ``receivedMs`` are UTC epoch milliseconds. ``eventIdDerived`` is true when
    the caller sent no ``eventId`` and the key was derived from number, action and time (and
    the expiry, when there is one). ``expiresMs`` (UTC epoch ms, opt-outs only, ``None``: never)
    is when the opt-out lapses; it is left out of the JSON when absent.
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

    @property
    def fingerprint(self) -> str:
        """``"<e164>|<action>|<eventMs>"``: what an idempotency key must always stand for."""
        return f"{self.e164}|{self.action.value}|{self.eventMs}"
