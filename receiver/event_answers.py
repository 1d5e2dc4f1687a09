"""What an event is answered and counted as, the same on ``POST /v1/events`` and in each entry of
``POST /v1/events:batch``: the refusal wording both routes share, the 202 body of a recorded
event, and the warning counts of events recorded anew."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dnc.errors import FieldProblem
from dnc.intake import AcceptedEvent
from dnc.store import RecordStatus
from receiver.metrics import ReceiverMetrics

INVALID_MESSAGE = "one or more fields are missing or invalid"
"""The message of a 422 ``invalid_event``; the problems name each field."""
REUSED = FieldProblem("eventId", "reused", "eventId was already used for a different event")
"""The problem of a 409 ``id_conflict`` (an opt-in whose eventId names another event)."""


def accepted_body(
    accepted: AcceptedEvent,
    status: RecordStatus,
    alias_statuses: list[RecordStatus],
    body_warnings: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The 202's JSON body for ``accepted`` recorded as ``status`` (its alias copies as
    ``alias_statuses``, in ``alias_events`` order): status, eventId, warnings (the body's
    ``body_warnings`` first), and dropped, notes and aliases when there are any."""
    payload: dict[str, Any] = {
        "status": status.value,
        "eventId": accepted.event.eventId,
        "warnings": [*body_warnings, *accepted.warnings],
    }
    if accepted.dropped:
        payload["dropped"] = [p.as_dict() for p in accepted.dropped]
    if accepted.notes:
        payload["notes"] = [p.as_dict() for p in accepted.notes]
    if accepted.alias_events:
        payload["aliases"] = [
            {"e164": alias.e164, "status": alias_status.value}
            for alias, alias_status in zip(accepted.alias_events, alias_statuses, strict=True)
        ]
    return payload


def warning_counts(
    fresh: list[AcceptedEvent], sender: str, metrics: ReceiverMetrics
) -> tuple[Counter[str], dict[str, int]]:
    """Count the warnings of the events recorded anew in the metrics; return what
    ``EventStore.count_warnings`` takes: events per ``field:reason``, naive times per
    sender."""
    reasons: Counter[str] = Counter()
    labels: Counter[tuple[str, str]] = Counter()
    naive = 0
    for event in fresh:
        if not (event.dropped or event.notes):
            continue
        reasons.update(event.warning_reasons)
        labels.update((p.field, p.reason) for p in (*event.dropped, *event.notes))
        naive += event.naive_time
    for (name, reason), count in labels.items():
        metrics.event_warnings.labels(name, reason).inc(count)
    if naive:
        metrics.naive_times.labels(sender).inc(naive)
    return reasons, ({sender: naive} if naive else {})
