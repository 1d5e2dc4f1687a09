"""``dnc-sync status``: backlog, lag, dead letters, rejections, the archive's backlog, entries
lost before archiving and the last sync run.

Exit codes (for cron or a probe), the first that applies: 3 Redis cannot be read; 1 a pending
change has waited longer than ``DNC_SYNC_LAG_LIMIT_S``, or more stream entries wait to be
archived than ``DNC_AUDIT_ARCHIVE_LAG_MAX_ENTRIES`` (a lagging archive: nothing is dropped);
4 dead letters wait for someone (CXone refused those numbers for good: an opt-out among them
is a person still callable); 5 the audit record has gaps (stream entries were lost before the
archive copied them: ``audit_archive_gaps``); 6 the audit store cannot be read (so its gaps
are unknown; ``--no-audit`` skips it on a host without the store); 7 the last reconciliation
found protection missing in CXone (``opt_out_missing``, ``expiry_differs``) or could not
finish (``dnc-sync reconcile``); else 0 healthy. The gaps
come from the audit store (``DNC_AUDIT_DATABASE_URL``, opened read-only) and the last sync
run from the Prefect API at ``PREFECT_API_URL``; when either cannot be read that part is
reported as unknown, with a one-line reason (the Prefect part does not change the exit
code).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from dnc.audit.database import AuditStoreNotReady
from dnc.errors import StoreError
from dnc.keys import RedisKeys
from dnc.reconcile.report import load_last
from dnc.settings import AuditSettings, RedisSettings, SyncSettings
from dnc.store import open_redis
from dnc_sync.status import (
    ArchiveGaps,
    GapCounts,
    LastSync,
    QueueStatus,
    Status,
    read_last_sync,
    read_queue,
    read_running_sync,
    read_store_gaps,
)

EXIT_LAGGING = 1
EXIT_REDIS_DOWN = 3
EXIT_DEAD_LETTERS = 4
EXIT_GAPS = 5
EXIT_AUDIT_UNREADABLE = 6
EXIT_DRIFT = 7
PREFECT_TIMEOUT_S = 10.0


def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    audit: Annotated[
        bool, typer.Option(help="Read the audit store's gaps (--no-audit: a host without it).")
    ] = True,
) -> None:
    """Print backlog, lag, dead letters, rejections, the archive's backlog, entries lost
    before archiving and the last sync run. Exit 3 Redis unreadable, 1 lagging (sync or
    archive), 4 dead letters waiting, 5 the audit record has gaps, 6 the audit store cannot
    be read, 7 the last reconciliation found protection missing in CXone or could not finish
    (the first that applies)."""
    console = Console()
    try:
        report = asyncio.run(gather_status(read_audit=audit))
    except StoreError as exc:
        where = redis_address(RedisSettings())
        if json_output:
            typer.echo(
                json.dumps({"error": "redis_unavailable", "redis": where, "detail": str(exc)})
            )
        else:
            console.print(f"[red]error:[/red] cannot read Redis at {where}: {exc}")
        raise typer.Exit(EXIT_REDIS_DOWN) from None
    if json_output:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        render(report, console)
    if report.lagging or report.archive_lagging:
        raise typer.Exit(EXIT_LAGGING)
    if report.queue.dead_letters:
        raise typer.Exit(EXIT_DEAD_LETTERS)
    if report.has_gaps:
        raise typer.Exit(EXIT_GAPS)
    if audit and report.audit_error:
        raise typer.Exit(EXIT_AUDIT_UNREADABLE)
    if report.drifted:
        raise typer.Exit(EXIT_DRIFT)


def redis_address(settings: RedisSettings) -> str:
    """Where the settings point, without credentials: ``host:port/db`` or the sentinels."""
    if settings.sentinels:
        return f"sentinel {settings.sentinel_master} via {', '.join(settings.sentinels)}"
    url = urlsplit(settings.url)
    return f"{url.hostname or url.path}:{url.port or 6379}{url.path if url.hostname else ''}"


async def gather_status(*, read_audit: bool = True) -> Status:
    """Read Redis (``DNC_REDIS_*``), the audit store (``DNC_AUDIT_DATABASE_URL``, unless not
    ``read_audit``) and Prefect (``PREFECT_API_URL``). Raises ``StoreError`` when Redis cannot
    be read; the other two only come back unknown, with the reason."""
    settings = RedisSettings()
    client = open_redis(settings)
    keys = RedisKeys(settings.namespace)
    try:
        queue = await read_queue(client, keys, int(time.time() * 1000))
        reconciled = await load_last(client, keys)
    finally:
        await client.aclose()
    audit = AuditSettings()
    gaps, audit_problem = (
        await audit_gaps(audit.database_url.get_secret_value()) if read_audit else (None, None)
    )
    last, problem, running = await _last_sync()
    return Status(
        queue,
        SyncSettings().lag_limit_s,
        last,
        problem,
        audit.archive_lag_max_entries,
        audit.archive_lag_max_s,
        gaps,
        audit_problem,
        None if reconciled is None else reconciled.model_dump(),
        running,
    )


async def audit_gaps(database_url: str) -> tuple[ArchiveGaps | None, str | None]:
    """The audit store's gaps, or ``None`` and why it could not be read: one line, never the
    URL (it may hold a password), never the driver's text."""
    from dnc_sync.audit_errors import database_failure  # it imports this module

    try:
        return await read_store_gaps(database_url), None
    except AuditStoreNotReady:
        # Its text names a SQLite file's path: keep to what to do about it.
        return None, (
            "the audit store is not there or not migrated (DNC_AUDIT_DATABASE_URL; "
            "dnc-sync audit migrate)"
        )
    except (SQLAlchemyError, OSError) as exc:
        return None, database_failure(exc)


async def _last_sync() -> tuple[LastSync | None, str | None, str | None]:
    """The last finished sync run, why Prefect could not be asked, and (when no run has
    finished yet) the sync run running now."""
    if not os.environ.get("PREFECT_API_URL"):
        # Without it Prefect would start a throwaway server that has never seen a sync.
        return None, "PREFECT_API_URL is not set", None
    from prefect.client.orchestration import get_client

    try:
        async with asyncio.timeout(PREFECT_TIMEOUT_S), get_client() as prefect:
            last = await read_last_sync(prefect)
            running = None if last is not None else await read_running_sync(prefect)
            return last, None, running
    except Exception as exc:  # any failure only makes this part unknown
        return None, f"Prefect API did not answer ({type(exc).__name__})", None


def render(report: Status, console: Console) -> None:
    """The status as two rich tables: the queue, and the last sync run."""
    queue: QueueStatus = report.queue
    table = Table("queue", "value", title="cxone-dnc-sync status")
    table.add_row("backlog (numbers pending)", str(queue.backlog))
    table.add_row("  of them retrying after a temporary failure", str(queue.retrying))
    lag = f"{queue.oldest_pending_age_s:.0f} s (limit {report.lag_limit_s} s)"
    table.add_row("oldest pending change waited", f"[red]{lag}[/red]" if report.lagging else lag)
    dead = str(queue.dead_letters)
    table.add_row(
        "dead letters",
        f"[red]{dead}[/red] (dnc-sync dead-letters list)" if queue.dead_letters else dead,
    )
    table.add_row("rejected (kept for audit)", str(queue.rejected))
    for reason, count in queue.rejected_by_reason.items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("refused without a valid secret", str(queue.rejected_unauthenticated))
    for reason, count in queue.rejected_unauthenticated_by_reason.items():
        table.add_row(f"  {reason}", str(count))
    table.add_row(
        "accepted with warnings (per field:reason)", str(sum(queue.warnings_by_reason.values()))
    )
    for reason, count in queue.warnings_by_reason.items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("times without a zone, by sender", str(sum(queue.naive_times_by_sender.values())))
    for sender, count in queue.naive_times_by_sender.items():
        table.add_row(f"  {sender}", str(count))
    waiting = f"{sum(queue.unarchived.values()):,} (oldest {queue.oldest_unarchived_age_s:.0f} s)"
    table.add_row(
        "not yet in the audit store",
        f"[red]{waiting} lagging archive[/red] ({report.archive_lag})"
        if report.archive_lagging
        else waiting,
    )
    for stream, count in queue.unarchived.items():
        table.add_row(f"  {stream}", str(count))
    _gap_rows(report, table)
    console.print(table)
    _render_reconcile(report, console)
    last = report.last_sync
    if last is None:
        console.print(f"last sync: {_no_last_sync(report)}")
        return
    runs = Table("last sync", "value")
    runs.add_row("run", last.name)
    runs.add_row("state", last.state + (f": {last.message}" if last.message else ""))
    runs.add_row("ended (UTC)", last.ended or "-")
    for metric, value in last.summary.items():
        runs.add_row(f"  {metric}", _value(value))
    console.print(runs)


def _render_reconcile(report: Status, console: Console) -> None:
    """The last reconciliation: when, complete or not, drift per class (red when any)."""
    last = report.last_reconcile
    if last is None:
        console.print("last reconciliation: none yet (dnc-sync reconcile)")
        return
    table = Table("last reconciliation", "value")
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(last["finished_ms"]) / 1000))
    reason = escape(str(last.get("incomplete_reason")))
    state = "complete" if last.get("complete") else f"[red]incomplete[/red] ({reason})"
    table.add_row("finished (UTC)", f"{finished}, {state}")
    table.add_row("records read / numbers compared", f"{last['records']:,} / {last['numbers']:,}")
    for name, count in dict(last.get("drift") or {}).items():
        colour = "red" if name in ("opt_out_missing", "expiry_differs") else "yellow"
        table.add_row(f"  {name}", f"[{colour}]{count}[/{colour}]" if count else str(count))
    if last.get("requeued") is not None:
        table.add_row("  requeued by --repair", str(last["requeued"]))
    console.print(table)


def _gap_rows(report: Status, table: Table) -> None:
    """``lost before archiving``: the audit record's gaps in red, or unknown with the reason."""
    gaps = report.archive_gaps
    if gaps is None:
        why = report.audit_error or "audit store not read"
        table.add_row("lost before archiving", f"unknown ({escape(why)})")
        return
    if not gaps.total.gaps:
        table.add_row("lost before archiving", "0 (no gap recorded)")
        return
    table.add_row(
        "lost before archiving",
        f"[red]{_gap_line(gaps.total)}: the audit record has gaps[/red] "
        "(dnc-sync audit export lists them)",
    )
    for stream, counts in gaps.by_stream.items():
        table.add_row(f"  {escape(stream)}", f"[red]{_gap_line(counts)}[/red]")


def _gap_line(counts: GapCounts) -> str:
    unknown = f", {counts.unknown_size} of unknown size" if counts.unknown_size else ""
    return (
        f"{counts.missing:,} entries in {counts.gaps} gap(s){unknown}, latest found "
        f"{counts.latest_found or '?'}"
    )


def _value(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _no_last_sync(report: Status) -> str:
    """What status says when no sync run has finished: why it cannot tell, or the run that is
    draining now (the first run drains for about 2.5 intervals before it ends)."""
    if report.prefect_error:
        return f"unknown ({report.prefect_error})"
    if report.running_sync:
        return f"none finished yet (run {report.running_sync} is syncing now)"
    return "none finished yet"
