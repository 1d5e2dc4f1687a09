"""The one interface the sync flow pushes through: a DNC target applies a batch of changes and
says, per number, what happened.

Shapes: ``DncChange`` in, ``ChangeOutcome`` out (one per change, same order). A target raises
``dnc.cxone.errors.CxoneTransientError`` when the whole batch should be retried later (429,
5xx, timeout, connection error), ``CxoneAuthError`` when credentials are refused, and
``CxonePermanentError`` when the request itself is wrong; it never reports as applied what it
does not know was applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from dnc.events import Action

_E164 = re.compile(r"\+[1-9]\d{6,14}")
LATEST_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z in epoch ms: the last instant an RFC 3339 time can name."""


class OutcomeKind(StrEnum):
    """What a target did with one number."""

    APPLIED = "applied"
    """The target now holds the requested state because of this push."""
    ALREADY_APPLIED = "already_applied"
    """The target already held the requested state (e.g. the record existed)."""
    CONFLICT_RESOLVED = "conflict_resolved"
    """A conflict (409) was resolved by an upsert; the target now holds the requested state."""
    RETRYABLE = "retryable"
    """Not applied this time; try again later (``retry_after_s`` when the target said)."""
    REJECTED = "rejected"
    """Refused for good (``reason`` from the target); goes to the dead letter set."""
    NOT_OWNED = "not_owned"
    """An opt-in not sent: no record of this service's is there to remove, and a record
    someone else added stays (``dnc.ownership``); the number leaves the pending set."""

    @property
    def acknowledged(self) -> bool:
        """Whether the number may leave the pending set."""
        return self in (
            OutcomeKind.APPLIED,
            OutcomeKind.ALREADY_APPLIED,
            OutcomeKind.CONFLICT_RESOLVED,
            OutcomeKind.NOT_OWNED,
        )


@dataclass(frozen=True, slots=True)
class DncChange:
    """One number's requested state: ``e164`` (``+12025550123``), ``action`` (opt-out = on the
    DNC list), ``event_ms`` (when the person asked, UTC epoch ms) and an optional
    ``expires_at_ms`` (UTC epoch ms) after which an opt-out lapses."""

    e164: str
    action: Action
    event_ms: int
    expires_at_ms: int | None = None

    def __post_init__(self) -> None:
        if not _E164.fullmatch(self.e164):
            raise ValueError("e164 must be + and 7 to 15 digits, the first not 0")
        for name in ("event_ms", "expires_at_ms"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= LATEST_MS:
                raise ValueError(f"{name} must be UTC epoch ms between 1970 and 9999")


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """What happened to one change: ``kind``, the target's ``reason`` (empty when applied),
    ``retry_after_s`` (seconds) when the target asked for a delay, and for the audit trail
    the answer's ``http_status`` and the target's ``record_id`` for the number (DNC groups:
    the phone number as the group keys it; outbound contacts: the contact's record id, when
    the answer gave one). ``after_lost_reply``: an earlier attempt of the same request went
    unanswered (a timeout), so a record that "already exists" may be this service's own
    doing (``dnc.ownership``)."""

    e164: str
    kind: OutcomeKind
    reason: str = ""
    retry_after_s: float | None = None
    http_status: int | None = None
    record_id: str | None = None
    after_lost_reply: bool = False


class DncTarget(Protocol):
    """Something that applies DNC changes: CXone DNC groups, outbound contacts, the sandbox."""

    @property
    def name(self) -> str:
        """Short adapter name for logs and artifacts, e.g. ``dnc-groups``."""
        ...

    @property
    def batch_size(self) -> int:
        """Most changes one ``apply`` call accepts."""
        ...

    async def apply(self, changes: Sequence[DncChange]) -> list[ChangeOutcome]:
        """Apply ``changes`` (at most ``batch_size``); one outcome per change, same order."""
        ...


def check_batch(changes: Sequence[DncChange], batch_size: int) -> None:
    """Raise ``ValueError`` when ``changes`` holds more than ``batch_size`` changes or names a
    number twice (which of two states would win is the caller's decision: latest event time,
    opt-out on a tie, as the pending set already decides)."""
    if len(changes) > batch_size:
        raise ValueError(f"a batch holds at most {batch_size} changes")
    if len({change.e164 for change in changes}) != len(changes):
        raise ValueError("a batch must not name a number twice")
