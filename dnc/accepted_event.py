"""An event that passed intake (``dnc.intake``), and the same opt-out under a derived key."""

from __future__ import annotations

from dataclasses import dataclass

from dnc.errors import FieldProblem
from dnc.event_ids import alias_events, derive_event_id, id_input
from dnc.events import Action, DroppedField, StoredEvent
from dnc.intake_messages import NO_TIME_ZONE, REUSED_ID, dropped_warning


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


def under_derived_id(accepted: AcceptedEvent) -> AcceptedEvent | None:
    """``accepted`` (an opt-out whose caller ``eventId`` was already used for a different
    event) recorded under the key derived from number, action, time and expiry instead, with
    ``eventId`` dropped (reason ``reused``), so the opt-out is kept and a retry of it is still
    recognised. ``None`` for an opt-in (refused, 409) or an id that is already derived."""
    event = accepted.event
    if event.action is not Action.OPT_OUT or event.eventIdDerived:
        return None
    sent_ms = event.sentEventMs if event.sentEventMs is not None else event.eventMs
    derived = derive_event_id(id_input(event.e164, event.action, sent_ms, event.expiresMs))
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
        (*accepted.warnings, dropped_warning(REUSED_ID)),
        (*accepted.dropped, REUSED_ID),
        accepted.notes,
        alias_events(event, aliases),
    )
