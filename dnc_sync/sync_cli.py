"""``dnc-sync sync``: run the sync flow once now, or serve it on an interval (local default).

Prefect's scheduler needs a real API (``prefect server start`` and ``PREFECT_API_URL``): the
ephemeral API that a bare run starts runs no schedules.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="The sync flow: run it once now, or serve it on an interval.", no_args_is_help=True
)


@app.command("run")
def run_once(
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Numbers per API call, at most the target's.",
            show_default="setting DNC_CXONE_BATCH_SIZE",
        ),
    ] = None,
    max_batches: Annotated[
        int | None, typer.Option(help="Stop after this many batches (default: no limit).")
    ] = None,
    keep_draining_s: Annotated[
        float,
        typer.Option(
            min=0,
            help="Keep draining this many seconds as changes arrive, handing over to a newer "
            "run (0: drain what is pending, or join the run draining, and end).",
        ),
    ] = 0.0,
) -> None:
    """One sync run now; prints its counters (exit 1 when a batch failed after retries)."""
    from flows.sync import SyncBatchesFailed, sync_dnc  # Prefect loads only for sync commands

    failed = None
    try:
        counters = asyncio.run(
            sync_dnc(
                batch_size=batch_size, max_batches=max_batches, keep_draining_s=keep_draining_s
            )
        )
    except SyncBatchesFailed as exc:
        counters, failed = exc.counters, exc
    table = Table("metric", "value")
    for name, value in counters.items():
        table.add_row(name, str(value))
    Console().print(table)
    if failed is not None:
        Console(stderr=True).print(f"sync run failed: {failed}")
        raise typer.Exit(1)


@app.command("serve")
def serve(
    interval_s: Annotated[int, typer.Option(min=5, help="Seconds between runs.")] = 60,
    keep_draining_s: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="How long each run keeps draining as changes arrive (default: 2.5 intervals, "
            "so the next run takes over before it ends).",
        ),
    ] = None,
) -> None:
    """Serve the sync on an interval, the shape ``prefect.yaml`` deploys: each run keeps
    draining, woken by Redis as changes arrive, and hands over to the next run; no concurrency
    limit (it would cancel flushes); only the holder of the Redis lease writes, fenced in time
    (see docs/concepts.md, "The lease and its fence")."""
    from flows.sync import sync_dnc

    keep = interval_s * 2.5 if keep_draining_s is None else keep_draining_s
    sync_dnc.serve(name="sync-dnc", interval=interval_s, parameters={"keep_draining_s": keep})
