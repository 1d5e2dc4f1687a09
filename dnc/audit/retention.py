"""Retention: purge audit rows older than ``DNC_AUDIT_RETENTION_DAYS``, and record the purge.

Record-keeping rules ask for years (the TSR's telemarketing records: 5 years since 2024),
hence the default of 1,830 days. A purge deletes by the row's own time (an event's receipt,
a refusal's receipt, an application's settling), in one transaction with its record in
``audit_purges``; a purge that deletes nothing leaves no record.

It never deletes the proof of a number's current state, however old: the number's last
``queued`` event (the one its state in Redis and CXone comes from: a permanent opt-out of
years ago still protects the person) and its last ``acknowledged`` application (when CXone
applied it). A call in year six to someone who opted out in year one is still provable.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, Table, and_, delete, exists, or_

from dnc.audit import schema
from dnc.audit.archive_writes import sanitised_errors

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Rows deleted per table, and the ``cutoff_ms`` (UTC ms) they were older than."""

    cutoff_ms: int
    events: int = 0
    rejections: int = 0
    applications: int = 0

    @property
    def total(self) -> int:
        """Rows deleted in all tables."""
        return self.events + self.rejections + self.applications


def purge(engine: Engine, now_ms: int, retention_days: int, flow_run_id: str) -> PurgeReport:
    """Delete rows older than ``retention_days`` before ``now_ms`` (UTC ms); record the purge
    (by ``flow_run_id``) when it deleted anything. Raises ``AuditWriteError``."""
    cutoff = now_ms - retention_days * DAY_MS
    events, applications = schema.events, schema.applications
    with sanitised_errors(), engine.begin() as connection:
        counts = [
            connection.execute(delete(table).where(old)).rowcount
            for table, old in (
                (events, and_(events.c.received_ms < cutoff, ~_last_of(events, "queued"))),
                (schema.rejections, schema.rejections.c.received_ms < cutoff),
                (
                    applications,
                    and_(
                        applications.c.settled_ms < cutoff,
                        ~_last_of(applications, "acknowledged"),
                    ),
                ),
            )
        ]
        report = PurgeReport(cutoff, *counts)
        if report.total:
            connection.execute(
                schema.purges.insert().values(
                    purged_ms=now_ms,
                    cutoff_ms=cutoff,
                    retention_days=retention_days,
                    events=report.events,
                    rejections=report.rejections,
                    applications=report.applications,
                    flow_run_id=flow_run_id,
                )
            )
    return report


def _last_of(table: Table, kind: str) -> ColumnElement[bool]:
    """Whether a row of ``table`` is its number's last (in stream order) with ``kind`` as its
    status (events) or outcome (applications): the proof of the current state, kept."""
    column = "status" if "status" in table.c else "outcome"
    newer = table.alias("newer")
    later = or_(
        newer.c.stream_ms > table.c.stream_ms,
        and_(newer.c.stream_ms == table.c.stream_ms, newer.c.stream_seq > table.c.stream_seq),
    )
    same = and_(newer.c.number == table.c.number, newer.c[column] == kind, later)
    return and_(table.c[column] == kind, ~exists().where(same))
