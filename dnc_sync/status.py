"""What ``dnc-sync status`` reports: the queue in Redis, the entries the archive found lost
before it copied them (the audit store's ``audit_archive_gaps``) and the last sync run in
Prefect.

Plain functions over an injected Redis client, audit store engine and Prefect client, so a
probe, the CLI and tests read the same figures.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Engine, func, select

from dnc.audit import schema
from dnc.audit.database import open_engine, require_current
from dnc.audit.lag import backlog, lag_reason
from dnc.audit.lag import oldest_age_s as archive_oldest_age_s
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.store import REDIS_FAILURES, convert_error
from dnc.sync import oldest_age_s
from dnc.timestamps import iso_utc

SUMMARY_KEY = "dnc-sync-summary"
"""Key of the table artifact each sync run writes (``flows/sync.py``)."""
FLOW_NAME = "sync-dnc"
"""Name of the sync flow in Prefect."""


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The queue in Redis: ``backlog`` numbers waiting to be applied (``retrying`` of them wait
    out a retry backoff after a temporary failure), ``oldest_pending_age_s`` (seconds the
    longest-waiting change has waited since receipt, retrying ones included),
    ``dead_letters``, ``rejected`` (refusals of authenticated callers and import rows),
    ``rejected_unauthenticated`` (refusals of callers without a valid secret), and per reason
    ``rejected_by_reason`` of the first and ``rejected_unauthenticated_by_reason`` of the
    second (``field:reason`` for invalid fields, else the error name;
    ``dnc.rejection_reasons``), counted as they were kept (``RedisKeys.rejection_counts``);
    ``warnings_by_reason``: recorded events (receiver and import, duplicates not counted) per
    ``field:reason`` of an optional field dropped from an opt-out or a field read with an
    adjustment (``timestamp:after_receipt``,
    ``timestamp:no_time_zone``, ``phoneNumber:plan_change``, ``phoneNumber:unverified_number``);
    ``naive_times_by_sender``: events with a timestamp without a zone per sender
    (``bearer-<n>``/``hmac-<n>``: the credential's position in its setting, ``unknown``,
    ``import``). These counts run since their Redis key was last deleted. ``unarchived``:
    stream entries not yet copied into the audit store, per stream, and
    ``oldest_unarchived_age_s`` the wait of the oldest of them (seconds; ``dnc.audit``)."""

    backlog: int
    oldest_pending_age_s: float
    dead_letters: int
    rejected: int
    rejected_by_reason: dict[str, int]
    rejected_unauthenticated: int = 0
    rejected_unauthenticated_by_reason: dict[str, int] = field(default_factory=dict)
    retrying: int = 0
    warnings_by_reason: dict[str, int] = field(default_factory=dict)
    naive_times_by_sender: dict[str, int] = field(default_factory=dict)
    unarchived: dict[str, int] = field(default_factory=dict)
    oldest_unarchived_age_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LastSync:
    """The latest finished sync run: its ``name``, ``state`` (Completed, Failed...),
    ``ended`` (ISO 8601 UTC), ``message`` and its summary counters (metric -> value, empty
    when the run wrote none)."""

    name: str
    state: str
    ended: str | None
    message: str | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GapCounts:
    """Entries lost before archiving (``audit_archive_gaps``): ``gaps`` recorded, ``missing``
    entries of the gaps whose size is known, ``unknown_size`` gaps of an unknown number of
    entries (a stream reset) and ``latest_found`` (RFC 3339 UTC, ``None`` without a gap)."""

    gaps: int = 0
    missing: int = 0
    unknown_size: int = 0
    latest_found: str | None = None


@dataclass(frozen=True, slots=True)
class ArchiveGaps:
    """The audit record's gaps: all streams' ``total`` and ``by_stream`` (stream name ->
    ``GapCounts``, only streams with a gap). Any gap means the record is incomplete for its
    period."""

    total: GapCounts
    by_stream: dict[str, GapCounts] = field(default_factory=dict)


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


async def read_queue(client: aioredis.Redis, keys: RedisKeys, now_ms: int) -> QueueStatus:
    """The queue's figures at ``now_ms`` (UTC ms). Raises ``StoreUnavailable``/``StoreError``."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.dead_letters)
            pipe.hgetall(keys.rejection_counts)
            pipe.hgetall(keys.warnings)
            pipe.hgetall(keys.naive_times)
            dead, refusals, warned, naive = await pipe.execute()
        unarchived = await backlog(client, keys)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    pending, oldest_ms, retrying = await PendingQueue(client, keys).backlog_counts()
    counts = _counts(refusals)
    by_reason: dict[str, Counter[str]] = {"auth": Counter(), "anon": Counter()}
    for key, count in counts.items():
        who, _, reason = key.partition(":")
        by_reason.setdefault(who, Counter())[reason] += count
    return QueueStatus(
        backlog=pending,
        retrying=retrying,
        oldest_pending_age_s=round(oldest_age_s(oldest_ms, now_ms), 1),
        dead_letters=int(dead),
        rejected=sum(n for key, n in counts.items() if key.startswith("auth:")),
        rejected_by_reason=dict(by_reason["auth"].most_common()),
        rejected_unauthenticated_by_reason=dict(by_reason["anon"].most_common()),
        rejected_unauthenticated=sum(n for key, n in counts.items() if key.startswith("anon:")),
        warnings_by_reason=_counts(warned),
        naive_times_by_sender=_counts(naive),
        unarchived={name: length for name, (length, _) in unarchived.items()},
        oldest_unarchived_age_s=round(archive_oldest_age_s(unarchived, now_ms), 1),
    )


def read_gaps(engine: Engine) -> ArchiveGaps:
    """The gaps the audit store records (``audit_archive_gaps``), counted per stream. Raises
    ``AuditStoreNotReady`` when the schema is not current, SQLAlchemy's errors when the
    database cannot be read."""
    require_current(engine)
    t = schema.gaps
    query = select(
        t.c.stream,
        func.count().label("gaps"),
        func.count(t.c.missing).label("known"),
        func.coalesce(func.sum(t.c.missing), 0).label("missing"),
        func.max(t.c.found_ms).label("found_ms"),
    ).group_by(t.c.stream)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    by_stream: dict[str, GapCounts] = {}
    found: list[int] = []
    for row in sorted(rows, key=lambda r: str(r["stream"])):
        gaps = int(row["gaps"])
        by_stream[str(row["stream"])] = GapCounts(
            gaps=gaps,
            missing=int(row["missing"]),  # PostgreSQL's SUM of a BIGINT is a NUMERIC
            unknown_size=gaps - int(row["known"]),
            latest_found=iso_utc(int(row["found_ms"])),
        )
        found.append(int(row["found_ms"]))
    counts = by_stream.values()
    total = GapCounts(
        gaps=sum(c.gaps for c in counts),
        missing=sum(c.missing for c in counts),
        unknown_size=sum(c.unknown_size for c in counts),
        latest_found=iso_utc(max(found)) if found else None,
    )
    return ArchiveGaps(total, by_stream)


async def read_store_gaps(database_url: str) -> ArchiveGaps:
    """``read_gaps`` of the audit store at ``database_url``, opened read-only
    (``create=False``: a SQLite file that is not there is not created) in a worker thread.
    Raises ``AuditStoreNotReady``, SQLAlchemy's errors or ``OSError``."""

    def read() -> ArchiveGaps:
        engine = open_engine(database_url, create=False)
        try:
            return read_gaps(engine)
        finally:
            engine.dispose()

    return await asyncio.to_thread(read)


def _counts(raw: dict[Any, Any]) -> dict[str, int]:
    """A counter hash as {name: count}, largest first (then by name)."""
    counts = {_text(k): int(v) for k, v in raw.items()}
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


async def read_last_sync(prefect: Any) -> LastSync | None:
    """The latest finished run of the sync flow and its summary artifact, read through
    ``prefect`` (a ``PrefectClient``); ``None`` when no run finished yet. Raises what the
    client raises (``httpx.HTTPError``, ``prefect.exceptions.PrefectHTTPStatusError``)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
    runs = await prefect.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=finished))
        ),
        sort=FlowRunSort.END_TIME_DESC,
        limit=1,
    )
    if not runs:
        return None
    run = runs[0]
    artifacts = await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[SUMMARY_KEY]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
        ),
        limit=1,
    )
    summary = _summary(artifacts[0].data) if artifacts else {}
    state = run.state
    return LastSync(
        name=run.name,
        state=state.name if state is not None else "unknown",
        ended=_iso(run.end_time),
        message=state.message if state is not None else None,
        summary=summary,
    )


def _summary(data: object) -> dict[str, Any]:
    rows = json.loads(data) if isinstance(data, str) else data
    if not isinstance(rows, list):
        return {}
    return {
        str(row["metric"]): row["value"]
        for row in rows
        if isinstance(row, dict) and {"metric", "value"} <= row.keys()
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
