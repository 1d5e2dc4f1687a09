"""The events of one batch request, judged and recorded as single events are.

Every event goes through ``dnc.intake.build_event`` (warnings, dropped optional fields, alias
copies) with the batch's receive time and sender. The accepted ones are recorded in request
order by ``EventStore.record_groups`` (about ``StoreLimits.max_batch`` events per script call,
an event and its alias copies never split); an opt-out whose caller eventId was already used
for a different event is recorded again under its derived id (``under_derived_id``), an opt-in
then refused 409, exactly as ``POST /v1/events`` does. Warnings are counted in one store call,
metrics by (outcome, reason) once per batch, and every refusal is kept in the rejected stream
in one transaction (``EventStore.record_rejections``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from dnc.errors import EventValidationError, FieldProblem
from dnc.intake import AcceptedEvent, IntakePolicy, build_event, under_derived_id
from dnc.store import EventStore, RecordStatus
from receiver.batch_payload import BatchBody
from receiver.event_answers import INVALID_MESSAGE, REUSED, accepted_body


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused event: its ``index`` in the request, HTTP-like ``status`` (422, 409),
    ``error`` code, ``message``, ``problems`` and the number as sent (for the audit store's
    look-up by number; ``None`` when absent or not a string)."""

    index: int
    status: int
    error: str
    message: str
    problems: tuple[FieldProblem, ...]
    raw_number: str | None

    def result(self) -> dict[str, Any]:
        """The event's entry in ``results``."""
        return {
            "index": self.index,
            "status": "rejected",
            "httpStatus": self.status,
            "error": self.error,
            "message": self.message,
            "problems": [p.as_dict() for p in self.problems],
        }

    @property
    def reason(self) -> str:
        """The metrics reason, as ``Rejections.reject`` labels a single refusal."""
        return f"{self.error}:{','.join(sorted({p.reason for p in self.problems}))}"


@dataclass(slots=True)
class JudgedBatch:
    """A batch after intake and recording: ``results`` in request order (``None`` until
    filled), the ``refusals``, and counts per (outcome, reason) for the metrics."""

    results: list[dict[str, Any] | None]
    refusals: list[Refusal] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        """Events recorded (queued, duplicate or superseded)."""
        return len(self.results) - len(self.refusals)

    def body(self) -> dict[str, Any]:
        """The JSON answer: ``{"results": [...], "accepted": n, "rejected": m}``."""
        return {"results": self.results, "accepted": self.accepted, "rejected": len(self.refusals)}


def judge(
    batch: BatchBody, policy: IntakePolicy, now_ms: int, sender: str
) -> tuple[JudgedBatch, list[tuple[int, AcceptedEvent]]]:
    """Intake of every event of ``batch``, received at ``now_ms`` (UTC ms) from ``sender``:
    the batch with its refusals so far, and the accepted events with their indexes."""
    judged = JudgedBatch([None] * len(batch.items))
    accepted: list[tuple[int, AcceptedEvent]] = []
    for index, item in enumerate(batch.items):
        fields = item.fields
        number = fields.get("phoneNumber")
        raw_number = number if isinstance(number, str) else None
        if item.duplicate is not None:
            problem = FieldProblem(
                item.duplicate, "duplicate", f"{item.duplicate} is given more than once"
            )
            refuse(
                judged,
                Refusal(index, 422, "invalid_event", INVALID_MESSAGE, (problem,), raw_number),
            )
            continue
        try:
            accepted.append((index, build_event(fields, policy, now_ms, sender=sender)))
        except EventValidationError as exc:
            refusal = Refusal(
                index, 422, "invalid_event", INVALID_MESSAGE, tuple(exc.problems), raw_number
            )
            refuse(judged, refusal)
    return judged, accepted


def refuse(judged: JudgedBatch, refusal: Refusal) -> None:
    """Put ``refusal`` in ``judged`` (result, refusals, outcome count)."""
    judged.results[refusal.index] = refusal.result()
    judged.refusals.append(refusal)
    judged.outcomes["rejected", refusal.reason] += 1


async def record(
    store: EventStore, judged: JudgedBatch, accepted: list[tuple[int, AcceptedEvent]]
) -> list[AcceptedEvent]:
    """Record ``accepted`` in request order and fill their results (an opt-in whose eventId
    was used for another event becomes a 409 refusal). Returns the events that were recorded
    anew (not duplicates), whose warnings are to be counted. Raises ``StoreError`` /
    ``StoreUnavailable`` when Redis fails (some events may be recorded: a resend of the batch
    finds them as duplicates).

    Recorded run by run (``runs``): no number twice in a run, so an opt-out re-recorded under
    its derived id is in Redis before any later event of its number, as sent one by one
    (recorded in one go, a later opt-in of the number was queued first: answered ``queued``
    where one by one says ``superseded``, and claimable by the sync before the opt-out)."""
    fresh: list[AcceptedEvent] = []
    for run in runs(accepted):
        fresh += await _record_run(store, judged, run)
    return fresh


def runs(
    accepted: list[tuple[int, AcceptedEvent]],
) -> list[list[tuple[int, AcceptedEvent]]]:
    """``accepted`` cut into consecutive runs in which no number (an event's or one of its
    alias forms) appears twice; a batch of distinct numbers is one run."""
    found: list[list[tuple[int, AcceptedEvent]]] = []
    run: list[tuple[int, AcceptedEvent]] = []
    seen: set[str] = set()
    for item in accepted:
        numbers = {event.e164 for event in item[1].events}
        if numbers & seen:
            found.append(run)
            run, seen = [], set()
        run.append(item)
        seen |= numbers
    if run:
        found.append(run)
    return found


async def _record_run(
    store: EventStore, judged: JudgedBatch, accepted: list[tuple[int, AcceptedEvent]]
) -> list[AcceptedEvent]:
    """``record`` of one run (no number twice)."""
    statuses = await store.record_groups([event.events for _, event in accepted])
    redo = [
        (position, rekeyed)
        for position, (status, *_) in enumerate(statuses)
        if status is RecordStatus.ID_CONFLICT
        and (rekeyed := under_derived_id(accepted[position][1])) is not None
    ]
    if redo:  # opt-outs are kept whatever their eventId says
        again = await store.record_groups([rekeyed.events for _, rekeyed in redo])
        for (position, rekeyed), found in zip(redo, again, strict=True):
            accepted[position] = (accepted[position][0], rekeyed)
            statuses[position] = found
    fresh: list[AcceptedEvent] = []
    for (index, event), (status, *alias_statuses) in zip(accepted, statuses, strict=True):
        if status is RecordStatus.ID_CONFLICT:
            refusal = Refusal(
                index, 409, "id_conflict", REUSED.message, (REUSED,), event.event.e164
            )
            refuse(judged, refusal)
            continue
        judged.results[index] = accepted_result(index, event, status, alias_statuses)
        judged.outcomes[status.value, ""] += 1
        if status is not RecordStatus.DUPLICATE:
            fresh.append(event)
    return fresh


def accepted_result(
    index: int, accepted: AcceptedEvent, status: RecordStatus, aliases: list[RecordStatus]
) -> dict[str, Any]:
    """The entry of a recorded event: the single event's 202 body (``accepted_body``) plus
    ``index``."""
    return {"index": index, **accepted_body(accepted, status, aliases)}


def rejection_entries(
    batch: BatchBody,
    refusals: list[Refusal],
    base: dict[str, str],
    excerpt_bytes: int,
) -> list[dict[str, str]]:
    """The rejected-stream entries of ``refusals``, as a single refusal's entry: ``base``
    (method, path, receivedMs, sender) plus status, error, detail, the event's own JSON as
    the body excerpt (at most ``excerpt_bytes``), the number as sent and the event's index."""
    entries: list[dict[str, str]] = []
    for refusal in sorted(refusals, key=lambda r: r.index):
        source = batch.source(refusal.index).encode()
        entry = {
            **base,
            "status": str(refusal.status),
            "error": refusal.error,
            "detail": to_json([p.as_dict() for p in refusal.problems]).decode(),
            "batchIndex": str(refusal.index),
            "body": source[:excerpt_bytes].decode("utf-8", "replace"),
            "bodyTruncated": str(len(source) > excerpt_bytes).lower(),
        }
        if refusal.raw_number is not None:
            entry["phoneNumber"] = refusal.raw_number[:64]
        entries.append(entry)
    return entries
