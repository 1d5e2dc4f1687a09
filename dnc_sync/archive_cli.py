"""``dnc-sync archive``: run the archive-audit flow once now, or serve it on an interval.

Like ``dnc-sync sync``: Prefect's scheduler needs a real API (``prefect server start`` and
``PREFECT_API_URL``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="The archive-audit flow: copy the audit streams into the audit store.",
    no_args_is_help=True,
)


@app.command("run")
def run_once(
    time_budget_s: Annotated[
        float | None, typer.Option(min=0.1, help="Stop copying after this many seconds.")
    ] = None,
) -> None:
    """One archive run now; prints its counts (exit 1 when the archive is lagging)."""
    from flows.archive import ArchiveLagging, archive_audit  # Prefect loads only here

    try:
        counts = asyncio.run(archive_audit(time_budget_s=time_budget_s))
    except ArchiveLagging as exc:
        Console(stderr=True).print(f"archive lagging: {exc}")
        raise typer.Exit(1) from None
    Console().print_json(json.dumps(counts))


@app.command("serve")
def serve(
    interval_s: Annotated[int, typer.Option(min=5, help="Seconds between runs.")] = 60,
) -> None:
    """Serve the archive on an interval, one run at a time (a run that would overlap is
    cancelled; overlapping runs would still write each entry once)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.archive import archive_audit

    archive_audit.serve(
        name="archive-audit",
        interval=interval_s,
        global_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
    )
