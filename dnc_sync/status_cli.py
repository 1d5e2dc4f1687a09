"""``dnc-sync status``: backlog, lag, dead letters, rejections and the last sync run.

Exit codes (for cron or a probe): 0 healthy, 1 a pending change has waited longer than
``DNC_SYNC_LAG_LIMIT_S``, 3 Redis cannot be read. The last sync run comes from the Prefect
API at ``PREFECT_API_URL``; without it (or when it does not answer) that part is reported as
unknown and does not change the exit code.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dnc.errors import StoreError
from dnc.keys import RedisKeys
from dnc.settings import RedisSettings, SyncSettings
from dnc.store import open_redis
from dnc_sync.status import LastSync, QueueStatus, Status, read_last_sync, read_queue

EXIT_LAGGING = 1
EXIT_REDIS_DOWN = 3
PREFECT_TIMEOUT_S = 10.0


def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Print the queue (backlog, oldest pending age, dead letters, rejections by reason) and
    the last sync run; exit 1 when lagging, 3 when Redis cannot be read."""
    console = Console()
    try:
        report = asyncio.run(gather_status())
    except StoreError as exc:
        console.print(f"[red]error:[/red] cannot read Redis: {exc}")
        raise typer.Exit(EXIT_REDIS_DOWN) from None
    if json_output:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        render(report, console)
    if report.lagging:
        raise typer.Exit(EXIT_LAGGING)


async def gather_status() -> Status:
    """Read Redis (``DNC_REDIS_*``) and Prefect (``PREFECT_API_URL``). Raises ``StoreError``
    when Redis cannot be read."""
    settings = RedisSettings()
    client = open_redis(settings)
    try:
        queue = await read_queue(client, RedisKeys(settings.namespace), int(time.time() * 1000))
    finally:
        await client.aclose()
    last, problem = await _last_sync()
    return Status(queue, SyncSettings().lag_limit_s, last, problem)


async def _last_sync() -> tuple[LastSync | None, str | None]:
    if not os.environ.get("PREFECT_API_URL"):
        # Without it Prefect would start a throwaway server that has never seen a sync.
        return None, "PREFECT_API_URL is not set"
    from prefect.client.orchestration import get_client

    try:
        async with asyncio.timeout(PREFECT_TIMEOUT_S), get_client() as prefect:
            return await read_last_sync(prefect), None
    except Exception as exc:  # any failure only makes this part unknown
        return None, f"Prefect API did not answer ({type(exc).__name__})"


def render(report: Status, console: Console) -> None:
    """The status as two rich tables: the queue, and the last sync run."""
    queue: QueueStatus = report.queue
    table = Table("queue", "value", title="cxone-dnc-sync status")
    table.add_row("backlog (numbers pending)", str(queue.backlog))
    lag = f"{queue.oldest_pending_age_s:.0f} s (limit {report.lag_limit_s} s)"
    table.add_row("oldest pending change waited", f"[red]{lag}[/red]" if report.lagging else lag)
    table.add_row("dead letters", str(queue.dead_letters))
    table.add_row("rejected (kept for audit)", str(queue.rejected))
    for reason, count in queue.rejected_by_reason.items():
        table.add_row(f"  {reason}", str(count))
    console.print(table)
    last = report.last_sync
    if last is None:
        console.print(f"last sync: unknown ({report.prefect_error or 'no finished run yet'})")
        return
    runs = Table("last sync", "value")
    runs.add_row("run", last.name)
    runs.add_row("state", last.state + (f": {last.message}" if last.message else ""))
    runs.add_row("ended (UTC)", last.ended or "-")
    for metric, value in last.summary.items():
        runs.add_row(f"  {metric}", _value(value))
    console.print(runs)


def _value(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
