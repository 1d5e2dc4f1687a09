"""``dnc-sync replay FILE.jsonl``: send sample events through a running receiver, count the
answers, compare them with the generator's expected summary, and wait until they are synced.

Exit codes: 0 as expected, 1 a difference from the expected summary (or still pending when
the wait ran out), 3 the receiver or Redis could not be reached or refused the caller.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dnc.errors import StoreError
from dnc.keys import RedisKeys
from dnc.settings import RedisSettings
from dnc.store import open_redis
from dnc_sync.replay import (
    AppliedTally,
    ReplayRefused,
    ReplayTally,
    applied,
    compare,
    known_numbers,
    replay,
)

EXIT_DIFFERENT = 1
EXIT_UNREACHABLE = 3


def replay_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="JSONL events.")
    ],
    url: Annotated[str, typer.Option(help="Receiver base URL.")] = "http://127.0.0.1:8080",
    bearer_file: Annotated[
        Path | None, typer.Option(help="File holding the receiver's bearer secret.")
    ] = None,
    expected: Annotated[
        Path | None,
        typer.Option(help="The generator's summary (events.expected.json) to compare with."),
    ] = None,
    wait_applied_s: Annotated[
        float,
        typer.Option(
            "--wait-applied",
            help="Wait up to this many seconds for the "
            "file's numbers to be synced, then report them (0: don't wait).",
        ),
    ] = 0.0,
) -> None:
    """Replay FILE through the receiver in order and print accepted / duplicate / superseded
    / rejected (by reason) / accepted with warnings (by the field dropped or read with an
    adjustment: a retired number form, an unverified number); with --expected,
    compare; with --wait-applied, report applied opt-outs and opt-ins once the sync has taken
    them."""
    console = Console()
    summary: dict[str, Any] = json.loads(expected.read_text()) if expected else {}
    numbers = sorted(summary.get("final", {}))
    secret = bearer_file.read_text().strip() if bearer_file else None
    try:
        outcome = asyncio.run(_replay(file, url, secret, numbers, wait_applied_s))
    except (ReplayRefused, httpx.HTTPError, StoreError) as exc:
        console.print(f"[red]error:[/red] {exc or type(exc).__name__}")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    tally, known_before, elapsed_s, after = outcome
    _print_tally(console, tally, summary, elapsed_s)
    failed = False
    if summary and known_before:
        console.print(
            f"{known_before} of the file's numbers were already in Redis (data kept from an "
            "earlier run): repeats count as duplicates, so intake counts differ by design."
        )
    elif summary:
        differences = compare(tally, summary)
        for line in differences:
            console.print(f"[red]differs:[/red] {line}")
        failed = bool(differences)
        if not differences:
            console.print(f"intake matches {expected}")
    if after is not None:
        failed = _print_applied(console, after, summary, wait_applied_s) or failed
    if failed:
        raise typer.Exit(EXIT_DIFFERENT)


async def _replay(
    file: Path, url: str, secret: str | None, numbers: list[str], wait_s: float
) -> tuple[ReplayTally, int, float, AppliedTally | None]:
    settings = RedisSettings()
    keys = RedisKeys(settings.namespace)
    redis = open_redis(settings)
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    try:
        known_before = await known_numbers(redis, keys, numbers)
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            with file.open(encoding="utf-8") as lines:
                tally = await replay(lines, client)
        elapsed_s = time.perf_counter() - started
        after = None
        if wait_s > 0 and numbers:
            deadline = time.monotonic() + wait_s
            after = await applied(redis, keys, numbers)
            while after.pending and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                after = await applied(redis, keys, numbers)
        return tally, known_before, elapsed_s, after
    finally:
        await redis.aclose()


def _print_tally(
    console: Console, tally: ReplayTally, summary: dict[str, Any], elapsed_s: float
) -> None:
    table = Table("outcome", "count", "expected", title="sample events replayed")
    wanted_status = summary.get("statuses", {})
    wanted_reason = summary.get("rejected_by_reason", {})
    for status in ("queued", "duplicate", "superseded", "rejected"):
        table.add_row(status, str(tally.statuses[status]), str(wanted_status.get(status, "")))
    for reason in sorted(set(tally.rejected_by_reason) | set(wanted_reason)):
        table.add_row(
            f"  {reason}", str(tally.rejected_by_reason[reason]), str(wanted_reason.get(reason, ""))
        )
    # Events kept with a warning (an opt-out without a bad optional field, a number in a
    # retired form or unknown to the metadata): counted above as queued / duplicate /
    # superseded, listed here by field and reason.
    warned = tally.accepted_with_warnings
    wanted_warned = summary.get("accepted_with_warnings", {})
    table.add_row(
        "accepted with warnings",
        str(sum(warned.values())),
        str(sum(wanted_warned.values())) if wanted_warned else "",
    )
    for reason in sorted(set(warned) | set(wanted_warned)):
        table.add_row(f"  {reason}", str(warned[reason]), str(wanted_warned.get(reason, "")))
    console.print(table)
    total = sum(tally.statuses.values())
    console.print(f"{total} events in {elapsed_s:.1f} s ({total / max(elapsed_s, 1e-9):.0f}/s)")


def _print_applied(
    console: Console, after: AppliedTally, summary: dict[str, Any], wait_s: float
) -> bool:
    """Print the applied tally; returns whether it failed (still pending, or different)."""
    table = Table("after sync", "numbers", "expected", title="the file's numbers, synced")
    table.add_row(
        "opt-outs settled (on the DNC list)", str(after.opt_outs), str(summary.get("opt_outs", ""))
    )
    table.add_row(
        "opt-ins settled (off the DNC list)", str(after.opt_ins), str(summary.get("opt_ins", ""))
    )
    table.add_row("still pending", str(after.pending), "0")
    table.add_row("dead letters", str(after.dead), "0")
    console.print(table)
    console.print(
        "An opt-in of a number this service never put on the list needs no request: sync "
        "runs count it as not_owned, not as applied_opt_ins (docs/concepts.md: 'Only what it "
        "created is removed')."
    )
    if after.pending:
        console.print(f"[red]still pending after {wait_s:.0f} s[/red]: is the sync running?")
        return True
    different = (after.opt_outs, after.opt_ins, after.dead) != (
        summary.get("opt_outs"),
        summary.get("opt_ins"),
        0,
    )
    if different:
        console.print("[red]differs:[/red] applied numbers do not match the expected final state")
    return different
