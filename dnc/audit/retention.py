"""Retention: purge audit rows older than ``DNC_AUDIT_RETENTION_DAYS``, and record the purge.

Record-keeping rules ask for years (the TSR's telemarketing records: 5 years since 2024),
hence the default of 1,830 days. A purge deletes by the row's own time (an event's receipt,
a refusal's receipt, an application's settling), in one transaction with its record in
``audit_purges``; a purge that deletes nothing leaves no record.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete

from dnc.audit import schema

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
    (by ``flow_run_id``) when it deleted anything. Raises SQLAlchemy's errors."""
    cutoff = now_ms - retention_days * DAY_MS
    with engine.begin() as connection:
        counts = [
            connection.execute(delete(table).where(column < cutoff)).rowcount
            for table, column in (
                (schema.events, schema.events.c.received_ms),
                (schema.rejections, schema.rejections.c.received_ms),
                (schema.applications, schema.applications.c.settled_ms),
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
