"""What ``dnc-sync status`` reports: the queue in Redis, the entries the archive found lost
before it copied them (the audit store's ``audit_archive_gaps``) and the last sync run in
Prefect.

Plain functions over an injected Redis client, audit store engine and Prefect client, so a
probe, the CLI and tests read the same figures: ``dnc_sync.queue_status`` (Redis),
``dnc_sync.archive_gaps`` (the audit store) and ``dnc_sync.last_sync`` (Prefect); ``Status``
holds them all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dnc.audit.lag import lag_reason
from dnc_sync.archive_gaps import ArchiveGaps, GapCounts, read_gaps, read_store_gaps
from dnc_sync.last_sync import (
    FLOW_NAME,
    SUMMARY_KEY,
    LastSync,
    read_last_sync,
    read_running_sync,
)
from dnc_sync.queue_status import QueueStatus, read_queue

__all__ = [
    "FLOW_NAME",
    "SUMMARY_KEY",
    "ArchiveGaps",
    "GapCounts",
    "LastSync",
    "QueueStatus",
    "Status",
    "read_gaps",
    "read_last_sync",
    "read_queue",
    "read_running_sync",
    "read_store_gaps",
]


@dataclass(frozen=True, slots=True)
class Status:
    """Everything ``dnc-sync status`` prints. ``last_sync`` is ``None`` when no run finished
    yet; ``prefect_error`` says why Prefect could not be asked (then ``last_sync`` is None).
    ``archive_gaps`` is ``None`` when the audit store was not read; ``audit_error`` then says
    why it could not be (one line, never the URL)."""

    queue: QueueStatus
    lag_limit_s: int
    last_sync: LastSync | None
    prefect_error: str | None = None
    archive_lag_max_entries: int = 200_000
    archive_lag_max_s: int = 900
    archive_gaps: ArchiveGaps | None = None
    audit_error: str | None = None
    last_reconcile: dict[str, Any] | None = None
    """The last reconciliation's report (``dnc.reconcile.report.ReconcileReport`` as a dict),
    ``None`` before the first."""
    running_sync: str | None = None
    """The sync run running now, when no run has finished yet (``read_running_sync``)."""

    @property
    def has_gaps(self) -> bool:
        """Whether the audit store records entries lost before archiving (``False`` when it
        could not be read: that part is unknown)."""
        return self.archive_gaps is not None and self.archive_gaps.total.gaps > 0

    @property
    def drifted(self) -> bool:
        """Whether the last reconciliation found protection missing in CXone (an opt-out
        with no record, or a record that lapses at another time) or could not finish. Records
        that keep a person off the calls though they opted in (``opt_in_record``,
        ``not_owned``) are shown, and do not count here: no one is called against their
        wish."""
        last = self.last_reconcile
        if last is None:
            return False
        drift = dict(last.get("drift") or {})
        missing = drift.get("opt_out_missing", 0) or drift.get("expiry_differs", 0)
        return not last.get("complete") or bool(missing)

    @property
    def lagging(self) -> bool:
        """Whether a pending change has waited longer than the limit."""
        return self.queue.oldest_pending_age_s > self.lag_limit_s

    @property
    def archive_lag(self) -> str | None:
        """Why the archive is lagging (``dnc.audit.archive.lag_reason``: too many entries
        wait, or the oldest has waited too long), or ``None``; nothing is dropped."""
        queue = self.queue
        return lag_reason(
            sum(queue.unarchived.values()),
            queue.oldest_unarchived_age_s,
            self.archive_lag_max_entries,
            self.archive_lag_max_s,
        )

    @property
    def archive_lagging(self) -> bool:
        """Whether the archive is lagging (``archive_lag``)."""
        return self.archive_lag is not None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready data (``--json``)."""
        return {
            **asdict(self),
            "lagging": self.lagging,
            "archive_lagging": self.archive_lagging,
            "archive_lag": self.archive_lag,
            "has_gaps": self.has_gaps,
            "drifted": self.drifted,
        }
