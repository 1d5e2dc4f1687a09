"""``dnc-sync dead-letters``: see and requeue numbers CXone refused for good."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from dnc.e164 import PhoneNumberProblem, to_e164
from dnc.keys import RedisKeys
from dnc.masking import mask_number
from dnc.pending import PendingQueue
from dnc.settings import IntakeSettings, RedisSettings
from dnc.store import open_redis
from dnc.timestamps import iso_utc

app = typer.Typer(
    help="Numbers CXone refused for good: list them, requeue them.", no_args_is_help=True
)
T = TypeVar("T")


def _with_queue(action: Callable[[PendingQueue], Awaitable[T]]) -> T:
    settings = RedisSettings()

    async def run() -> T:
        client = open_redis(settings)
        try:
            return await action(PendingQueue(client, RedisKeys(settings.namespace)))
        finally:
            await client.aclose()

    return asyncio.run(run())


def _e164(raw: str) -> str:
    """``raw`` as the E.164 key the dead letters use, read like an incoming event."""
    region = IntakeSettings().policy().default_region
    try:
        return to_e164(raw, region).e164
    except PhoneNumberProblem as exc:
        raise typer.BadParameter(f"{mask_number(raw)} {exc}") from None


@app.command("list")
def list_letters(
    show_numbers: Annotated[
        bool, typer.Option(help="Show whole numbers (masked to the last 4 digits otherwise).")
    ] = False,
) -> None:
    """Print every dead letter: number, action, event time, when, and CXone's reason."""
    letters = _with_queue(lambda queue: queue.dead_letters())
    if not letters:
        Console().print("no dead letters: CXone has refused no number for good")
        return
    table = Table("number", "action", "event time (UTC)", "dead since (UTC)", "reason")
    for number, letter in sorted(letters.items(), key=lambda item: item[1].deadAtMs):
        table.add_row(
            number if show_numbers else mask_number(number),
            letter.event.action.value,
            iso_utc(letter.event.eventMs),
            iso_utc(letter.deadAtMs),
            letter.reason,
        )
    # Piped output keeps one line per row (a terminal uses its own width).
    console = Console(width=None if sys.stdout.isatty() else 240)
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")


@app.command("requeue")
def requeue(
    numbers: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NUMBER",
            help="Numbers to requeue, in any form intake accepts ('(202) 555-0123' "
            "is read in DNC_INTAKE_DEFAULT_REGION).",
        ),
    ] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Requeue every dead letter.")] = False,
) -> None:
    """Put dead letters back in the pending set, for the next sync to push again."""
    if bool(numbers) == all_letters:
        raise typer.BadParameter("name numbers to requeue, or pass --all (not both)")
    keys = [_e164(raw) for raw in numbers or ()]
    letters = _with_queue(lambda queue: queue.dead_letters()) if keys else {}
    count = _with_queue(lambda queue: queue.requeue(keys))
    console = Console()
    console.print(f"requeued {count} number(s)")
    absent = [key for key in dict.fromkeys(keys) if key not in letters]
    if absent:
        shown = ", ".join(mask_number(key) for key in absent)
        console.print(
            f"not dead letters (nothing to requeue): {shown}; a number that is pending is "
            "pushed by the next sync anyway (dnc-sync status, dnc-sync history NUMBER)"
        )
