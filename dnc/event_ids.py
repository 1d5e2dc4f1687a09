"""Idempotency keys intake gives events: derived from the event, and those of alias copies."""

from __future__ import annotations

import hashlib

from dnc.events import Action, StoredEvent

ALIAS_ID_SEPARATOR = "~"
"""Between an event's eventId and the E.164 of an alias form in the alias copy's eventId."""


def derive_event_id(fingerprint: str) -> str:
    """Idempotency key for an event sent without one: ``d-`` + 32 hex of SHA-256(fingerprint).

    ``fingerprint`` is ``"<e164>|<action>|<event ms>"`` (``StoredEvent.fingerprint``), with
    ``"|<expiry ms>"`` appended by intake when the event has an expiry. The same number, action
    and event time (and expiry) always give the same key, so CXone Studio's automatic retries
    of one event, or a file imported twice, are recognised as duplicates.
    """
    return "d-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32]


def id_input(e164: str, action: Action, event_ms: int, expires_ms: int | None) -> str:
    """What a derived eventId hashes: the fingerprint ``"<e164>|<action>|<event ms>"``, plus
    ``"|<expiry ms>"`` only when the event has an expiry (so ids of events without one are
    those derived before expiries existed)."""
    fingerprint = f"{e164}|{action.value}|{event_ms}"
    return fingerprint if expires_ms is None else f"{fingerprint}|{expires_ms}"


def alias_event_id(event_id: str, alias: str) -> str:
    """The idempotency key of an opt-out's copy under the alias form ``alias`` (E.164):
    ``"<event_id>~<alias>"``. Derived from the event's own key, so a retry of the request
    (the same eventId, or the same derived one) finds every copy's key again: ``duplicate``
    for all."""
    return f"{event_id}{ALIAS_ID_SEPARATOR}{alias}"


def alias_events(event: StoredEvent, aliases: tuple[str, ...]) -> tuple[StoredEvent, ...]:
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
