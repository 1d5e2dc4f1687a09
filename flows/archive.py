"""The archive flow: copy the audit streams from Redis into the audit store, then purge what
is past retention.

Deployed on an interval from ``prefect.yaml`` (``archive-audit/archive-audit``, one run at a
time) and served by ``dnc-sync archive serve`` on the local stack; run once with
``dnc-sync archive run``. Each run migrates the database to the newest schema, archives every
stream (``dnc.audit.archive``: once per entry id, trimmed only after the commit) within its
time budget, purges rows older than ``DNC_AUDIT_RETENTION_DAYS`` (the purge is recorded), and
writes a table artifact. One run at a time (a Redis lease; a run that finds it taken does
nothing). It fails (``ArchiveLagging``, after the artifact) when the archive lags
(``dnc.audit.archive.lag_reason``), and emits ``dnc.audit.lagging`` / ``dnc.audit.gap``
events. Parameters hold no secrets: the database URL and Redis come from
the worker's ``DNC_*`` environment.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.events import emit_event

from dnc.audit.archive import Archiver, ArchiveReport
from dnc.audit.database import open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.lag import backlog, lag_reason, oldest_age_s
from dnc.audit.retention import PurgeReport, purge
from dnc.audit.streams import streams
from dnc.keys import RedisKeys
from dnc.settings import AuditSettings, IntakeSettings, RedisSettings
from dnc.store import open_redis
from flows.run_context import flow_run_id

SUMMARY_KEY = "dnc-archive-summary"


class ArchiveLagging(RuntimeError):
    """More stream entries wait to be archived than ``DNC_AUDIT_ARCHIVE_LAG_MAX_ENTRIES``, or
    the oldest has waited longer than ``DNC_AUDIT_ARCHIVE_LAG_MAX_S``: nothing is dropped (the
    streams keep them), but Redis grows and history lacks them until the archive catches up."""


@flow(name="archive-audit")
async def archive_audit(time_budget_s: float | None = None) -> dict[str, object]:
    """Archive the audit streams into the audit store and purge past retention.
    ``time_budget_s``: stop copying after this many seconds (default
    ``DNC_AUDIT_ARCHIVE_TIME_BUDGET_S``). Returns the run's counts: ``archived`` and
    ``backlog`` per stream, ``lost`` (entries found removed before archiving, per stream),
    ``purged`` rows. Raises ``ArchiveLagging`` as described above, and Redis's
    (``StoreError``) or the database's (SQLAlchemy) errors, after which nothing unarchived
    was trimmed."""
    redis_settings, audit = RedisSettings(), AuditSettings()
    region = IntakeSettings().policy().default_region
    keys = RedisKeys(redis_settings.namespace)
    engine = open_engine(audit.database_url.get_secret_value())
    client = open_redis(redis_settings)
    try:
        await asyncio.to_thread(upgrade, engine)
        archiver = Archiver(
            client,
            engine,
            streams(keys, normaliser(region)),
            lease_key=keys.archive_lease,
            batch=audit.archive_batch,
        )
        report = await archiver.run(time_budget_s or audit.archive_time_budget_s)
        if report.skipped:
            get_run_logger().info("another archive run holds the lease: nothing to do here")
            return {"skipped": True}
        purged = await asyncio.to_thread(
            purge, engine, int(time.time() * 1000), audit.retention_days, _run_id()
        )
        waiting = await backlog(client, keys)
    finally:
        await client.aclose()
        engine.dispose()
    counts = await _report(report, purged, redis_settings.namespace, audit.retention_days)
    entries = sum(count for count, _ in waiting.values())
    oldest = oldest_age_s(waiting, int(time.time() * 1000))
    why = lag_reason(entries, oldest, audit.archive_lag_max_entries, audit.archive_lag_max_s)
    if why is not None:
        emit_event(
            "dnc.audit.lagging",
            resource={"prefect.resource.id": f"dnc.audit.{redis_settings.namespace}"},
            payload={"unarchived": entries, "oldest_unarchived_s": round(oldest, 1)},
        )
        raise ArchiveLagging(f"{why}; nothing is dropped")
    return counts


async def _report(
    report: ArchiveReport, purged: PurgeReport, namespace: str, retention_days: int
) -> dict[str, object]:
    logger = get_run_logger()
    rows = [
        {
            "stream": name,
            "archived": report.archived[name],
            "lost before archiving": report.gaps[name],
            "still in Redis": report.backlog[name],
        }
        for name in report.archived
    ]
    await acreate_table_artifact(
        table=rows, key=SUMMARY_KEY, description="What this archive run copied into the store"
    )
    lost = {name: count for name, count in report.gaps.items() if count}
    if lost:
        logger.warning(
            "entries were removed from Redis before they were archived (recorded in "
            "audit_archive_gaps): %s",
            ", ".join(f"{name} {count:,}" for name, count in lost.items()),
        )
    if report.reset:
        logger.warning(
            "the count of %s restarted (the stream was deleted, or Redis came back without its "
            "data): entries added since the last archive run may be lost, in unknown number "
            "(recorded in audit_archive_gaps)",
            ", ".join(report.reset),
        )
    if lost or report.reset:
        emit_event(
            "dnc.audit.gap",
            resource={"prefect.resource.id": f"dnc.audit.{namespace}"},
            payload={"lost": lost, "unknown": report.reset},
        )
    if purged.total:
        logger.info(
            "purged %d events, %d rejections, %d applications older than %d days",
            purged.events,
            purged.rejections,
            purged.applications,
            retention_days,
        )
    logger.info(
        "archived %d entries (%s); %d left in Redis",
        report.total,
        ", ".join(f"{name} {count}" for name, count in report.archived.items()),
        sum(report.backlog.values()),
    )
    return {
        "archived": dict(report.archived),
        "backlog": dict(report.backlog),
        "lost": dict(report.gaps),
        "reset": list(report.reset),
        "purged": purged.total,
    }


def _run_id() -> str:
    return flow_run_id() or f"local-{uuid.uuid4()}"
