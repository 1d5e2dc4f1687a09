"""The reconciliation flow: read CXone back, report drift, and (``repair``) requeue what the
sync can fix.

Deployed from ``prefect.yaml`` (``reconcile-dnc/reconcile-dnc``, daily, one run at a time),
served by ``make run`` and run ad hoc with ``dnc-sync reconcile [--repair]`` or
``prefect deployment run 'reconcile-dnc/reconcile-dnc' -p repair=true``. A run holds the sync
lease (``dnc.reconcile.lease``: sync runs meanwhile do nothing) and pages through the group at
the sync's rate limit (``DNC_CXONE_RATE_LIMIT_RPS``), so the two never race for CXone's
calls; what it compares is in ``dnc.reconcile``. It writes a progress artifact while paging,
then a table artifact (counts per class) and a markdown artifact (masked samples), keeps the
report for ``dnc-sync status`` and ``/metrics``, emits ``dnc.reconcile.completed`` and, when
drift is found, ``dnc.reconcile.drift``. It fails (``ReconcileIncomplete``, after the
report) when it could not read every page (time budget, lease lost). Parameters hold no
secrets: credentials come from the worker's ``DNC_*`` environment.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import httpx
import redis.asyncio as aioredis
from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.events import emit_event

from dnc.cxone.dnc_groups import DncGroupsTarget
from dnc.cxone.factory import build_http_client, build_reader, build_target
from dnc.errors import StoreError
from dnc.fence import takeover_grace_s
from dnc.handover import Handover
from dnc.keys import RedisKeys
from dnc.masking import redact
from dnc.ownership import OwnershipLedger
from dnc.pending import PendingQueue
from dnc.reconcile.lease import SyncLeaseHolder
from dnc.reconcile.report import ReconcileReport, save_last
from dnc.reconcile.run import Progress, ReconcileOptions, Reconciliation
from dnc.reconcile.state import StateReader
from dnc.settings import CxoneSettings, ReconcileSettings, RedisSettings, SyncSettings
from dnc.store import open_redis
from flows.run_context import flow_run_id
from tasks.sync_tasks import discover_endpoints

SUMMARY_KEY = "dnc-reconcile-summary"
SAMPLE_KEY = "dnc-reconcile-drift"
PROGRESS_KEY = "dnc-reconcile-progress"
PROGRESS_EVERY_S = 2.0
"""Least seconds between two updates of the progress artifact."""


class ReconcileIncomplete(RuntimeError):
    """The run could not read every page (time budget spent, lease lost): what it found is
    reported, but missing opt-outs were not looked for."""


@flow(name="reconcile-dnc")
async def reconcile_dnc(
    repair: bool = False, time_budget_s: float | None = None
) -> dict[str, object]:
    """Compare CXone's records with this service's state. ``repair``: requeue the numbers
    whose drift the sync can fix; ``time_budget_s``: stop paging after this many seconds
    (default ``DNC_RECONCILE_TIME_BUDGET_S``). Returns the report
    (``dnc.reconcile.report.ReconcileReport`` as a dict). Raises ``ReconcileIncomplete`` as
    described above, ``dnc.reconcile.lease.LeaseBusy`` when the sync lease stays taken, and
    CXone (``dnc.cxone.errors``) or Redis (``StoreError``) errors."""
    redis_settings, cxone = RedisSettings(), CxoneSettings()
    sync, settings = SyncSettings(), ReconcileSettings()
    keys = RedisKeys(redis_settings.namespace)
    report = ReconcileReport(
        flow_run_id=_run_id(), adapter=cxone.adapter, started_ms=int(time.time() * 1000)
    )
    client, http = open_redis(redis_settings), build_http_client(cxone)
    try:
        await _reconcile(
            report,
            _Parts(client, http, keys, cxone, sync, settings),
            repair,
            time_budget_s or settings.time_budget_s,
        )
    except Exception as exc:  # kept as the last reconciliation: status shows it failed
        report.finished_ms = int(time.time() * 1000)
        report.incomplete_reason = f"failed: {type(exc).__name__}: {redact(str(exc))}"
        with contextlib.suppress(StoreError):
            await save_last(client, keys, report)
        raise
    else:
        await save_last(client, keys, report)
    finally:
        await http.aclose()
        await client.aclose()
    await _report(report, redis_settings.namespace)
    if not report.complete:
        raise ReconcileIncomplete(f"reconciliation incomplete: {report.incomplete_reason}")
    return report.model_dump()


@dataclass(frozen=True, slots=True)
class _Parts:
    """What one run works with (built from settings inside the run; never a parameter)."""

    client: aioredis.Redis
    http: httpx.AsyncClient
    keys: RedisKeys
    cxone: CxoneSettings
    sync: SyncSettings
    settings: ReconcileSettings


async def _reconcile(report: ReconcileReport, parts: _Parts, repair: bool, budget_s: float) -> None:
    """Take the sync lease, read CXone back and fill ``report``."""
    cxone, settings = parts.cxone, parts.settings
    target = build_target(cxone, parts.http)
    queue = PendingQueue(parts.client, parts.keys)
    holder = SyncLeaseHolder(
        queue,
        f"reconcile-{report.flow_run_id}",
        ttl_s=parts.sync.lease_ttl_s,
        grace_s=takeover_grace_s(parts.sync, cxone),
        wait_s=settings.lease_wait_s,
        handover=Handover(parts.client, parts.keys),
    )
    async with holder:
        if isinstance(target, DncGroupsTarget):
            endpoints = await discover_endpoints(target, cxone.issuer_url, cxone.access_key_id)
            target.adopt_endpoints(endpoints)
        reader = build_reader(target, settings.page_size, settings.page_concurrency)
        options = ReconcileOptions(
            repair=repair,
            repair_not_owned=parts.sync.remove_foreign_records,
            sample_size=settings.sample_size,
            verify_limit=settings.verify_limit,
            lookup_concurrency=settings.page_concurrency,
        )
        deadline = time.monotonic() + budget_s

        def should_stop() -> str:
            if holder.lost:
                return holder.lost
            if time.monotonic() >= deadline:
                return f"the time budget of {budget_s:.0f} s was spent"
            return ""

        artifact, progress = await _progress(reader.page_size, lambda: reader.total)
        states = StateReader(parts.client, parts.keys)
        ledger = OwnershipLedger(parts.client, parts.keys)
        await Reconciliation(reader, states, queue, options, report, ledger).run(
            should_stop, progress
        )
        if report.complete:
            await aupdate_progress_artifact(artifact, 100.0)


async def _progress(page_size: int, total: Callable[[], int]) -> tuple[UUID, Progress]:
    """A progress artifact and the callback that updates it (at most every
    ``PROGRESS_EVERY_S``); ``total`` returns the listing's total so far."""
    artifact = await acreate_progress_artifact(
        0.0, key=PROGRESS_KEY, description="Records of CXone read in this reconciliation"
    )
    last = time.monotonic()

    async def update(pages: int) -> None:
        nonlocal last
        if time.monotonic() - last < PROGRESS_EVERY_S:
            return
        last = time.monotonic()
        records = total()
        done = 100.0 if not records else min(100.0, 100.0 * pages * page_size / records)
        await aupdate_progress_artifact(artifact, done)

    return artifact, update


async def _report(report: ReconcileReport, namespace: str) -> None:
    """Artifacts, events and the summary log line."""
    await acreate_table_artifact(
        table=report.table_rows(), key=SUMMARY_KEY, description="Drift found, per class"
    )
    await acreate_markdown_artifact(
        markdown=report.markdown(), key=SAMPLE_KEY, description="Drift found, masked samples"
    )
    resource = {"prefect.resource.id": f"dnc.reconcile.{namespace}"}
    payload = {
        "drift": report.drift,
        "complete": report.complete,
        "records": report.records,
        "requeued": report.requeued,
    }
    emit_event("dnc.reconcile.completed", resource=resource, payload=payload)
    if report.total_drift:
        emit_event("dnc.reconcile.drift", resource=resource, payload=payload)
    counts = ", ".join(f"{name} {count}" for name, count in report.drift.items())
    get_run_logger().log(
        30 if report.total_drift or not report.complete else 20,
        "reconciliation %s: %d record(s), %d number(s) compared, %d call(s); drift: %s%s",
        "complete" if report.complete else f"INCOMPLETE ({report.incomplete_reason})",
        report.records,
        report.numbers,
        report.api_calls,
        counts,
        "" if report.requeued is None else f"; {report.requeued} requeued",
    )


def _run_id() -> str:
    return flow_run_id() or f"local-{uuid.uuid4()}"
