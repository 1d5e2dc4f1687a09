"""``dnc-sync history NUMBER``: one number's current state and its timeline from the audit store.

Exit codes: 0 shown, 1 Redis or the audit store cannot be read (or the store is not there or
not migrated: ``dnc-sync audit migrate``), 2 NUMBER or ``--region`` cannot be read, or a
``DNC_*`` setting is invalid. Read only: a SQLite store that does not exist is not created. The
whole number is printed (the operator named it); it is never logged.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from dnc.audit.database import AuditStoreNotReady, open_engine
from dnc.audit.history import DEFAULT_LIMIT, NumberHistory, number_history, read_number
from dnc.e164 import PhoneNumberProblem, is_supported_region
from dnc.errors import StoreError
from dnc.keys import RedisKeys
from dnc.settings import AuditSettings, IntakeSettings, RedisSettings
from dnc.store import open_redis
from dnc.timestamps import iso_utc
from dnc_sync.audit_errors import database_failure, load_settings, redis_failure

EXIT_UNREADABLE = 1


def history(
    number: Annotated[
        str,
        typer.Argument(
            metavar="NUMBER",
            help="The number, in any form intake accepts ('(202) 555-0123' is read in "
            "--region, else DNC_INTAKE_DEFAULT_REGION).",
            show_default=False,
        ),
    ],
    region: Annotated[
        str | None,
        typer.Option(help="Region of a number without a country code (ISO 3166-1, or none)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Newest timeline entries shown.")
    ] = DEFAULT_LIMIT,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Print a number's current state (latest event, pending, retries, dead letter, last
    CXone answer) and its timeline. Exit 1 when Redis or the audit store cannot be read."""
    e164 = _e164(number, region)
    settings, audit = load_settings(RedisSettings), load_settings(AuditSettings)
    console = Console(width=None if sys.stdout.isatty() else 240)
    try:
        found = asyncio.run(gather_history(e164, limit, settings, audit))
    except StoreError as exc:
        _fail(json_output, console, "redis_unavailable", redis_failure(exc))
    except AuditStoreNotReady as exc:
        _fail(json_output, console, "audit_store_not_ready", str(exc))
    except (SQLAlchemyError, OSError) as exc:
        _fail(json_output, console, "audit_store_unavailable", database_failure(exc))
    if json_output:
        typer.echo(json.dumps(found.as_dict(), indent=2))
    else:
        render(found, console)


def _e164(raw: str, region: str | None) -> str:
    """``raw`` as E.164, read like intake in ``region`` (default: the intake setting)."""
    if region is None:
        chosen = load_settings(IntakeSettings).policy().default_region
    elif region.lower() == "none":
        chosen = None
    elif is_supported_region(region):
        chosen = region.upper()
    else:
        raise typer.BadParameter(
            f"{region!r} is not a region with a numbering plan", param_hint="--region"
        )
    try:
        return read_number(raw, chosen)
    except PhoneNumberProblem as exc:
        raise typer.BadParameter(f"{raw!r} cannot be read: {exc}", param_hint="NUMBER") from None


async def gather_history(
    e164: str,
    limit: int,
    settings: RedisSettings | None = None,
    audit: AuditSettings | None = None,
) -> NumberHistory:
    """Read ``e164``'s history (``settings`` and ``audit`` default to the environment's
    ``DNC_REDIS_*``, ``DNC_AUDIT_*``), creating nothing. Raises ``StoreError``,
    ``AuditStoreNotReady`` (also for a SQLite file that is not there) or SQLAlchemy's errors."""
    settings, audit = settings or RedisSettings(), audit or AuditSettings()
    engine = open_engine(audit.database_url.get_secret_value(), create=False)
    client = open_redis(settings)
    try:
        return await number_history(client, RedisKeys(settings.namespace), engine, e164, limit)
    finally:
        await client.aclose()
        engine.dispose()


def _fail(json_output: bool, console: Console, error: str, message: str) -> NoReturn:
    if json_output:
        typer.echo(json.dumps({"error": error, "detail": message}))
    else:
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(EXIT_UNREADABLE)


def render(found: NumberHistory, console: Console) -> None:
    """The history as two rich tables (current state, timeline), a note on entries the
    archive has not copied yet, in red, the gaps of the record in the timeline's span, and
    when records were purged (retention)."""
    state = found.state
    table = Table("current state", "value", title=f"history of {found.number}")
    table.add_row("latest event", escape(_event_line(state.latest_event)))
    pending = state.pending_since_ms
    table.add_row("pending since (UTC)", "-" if pending is None else iso_utc(pending))
    table.add_row("retrying", _retry_line(found))
    dead = state.dead_letter
    table.add_row(
        "dead letter",
        "-"
        if dead is None
        else escape(f"since {_time(dead.get('deadAtMs'))}: {dead.get('reason')}"),
    )
    table.add_row("last CXone application", escape(_application_line(found.last_application)))
    console.print(table)
    lines = Table("time (UTC)", "kind", "summary", title="timeline (oldest first)")
    for entry in found.timeline:
        lines.add_row(iso_utc(entry.at_ms), entry.kind, escape(entry.summary))
    console.print(lines)
    if found.truncated:
        console.print(f"older entries not shown (the newest {len(found.timeline)} are)")
    waiting = {name: count for name, count in found.unarchived.items() if count}
    if waiting:
        counts = ", ".join(f"{name} {count}" for name, count in waiting.items())
        console.print(
            f"not yet archived ({counts}, all numbers): the newest records may be missing "
            "from the timeline until the archive-audit flow runs"
        )
    if found.gaps:
        gaps = "; ".join(_gap_line(gap) for gap in found.gaps)
        console.print(
            f"[red]the audit record has gaps in this period: {escape(gaps)} (all numbers: "
            "records of this number may be missing)[/red]"
        )
    if found.purged_before_ms is not None:
        console.print(
            f"records received before {iso_utc(found.purged_before_ms)} were purged "
            "(retention); the current state's proof is kept"
        )


def _gap_line(gap: dict[str, Any]) -> str:
    missing = gap.get("missing")
    count = "an unknown number of" if missing is None else str(missing)
    return (
        f"{count} {gap.get('stream')} entries lost after {_time(gap.get('from_ms'))} "
        f"(ids after {gap.get('after_id')} up to {gap.get('through_id')}, found "
        f"{_time(gap.get('found_ms'))})"
    )


def _event_line(event: dict[str, Any] | None) -> str:
    if event is None:
        return "- (no event recorded)"
    return (
        f"{event.get('action', '?')} at {_time(event.get('eventMs'))} (received "
        f"{_time(event.get('receivedMs'))}, eventId {event.get('eventId', '?')})"
    )


def _retry_line(found: NumberHistory) -> str:
    retry = found.state.retry
    if retry is None:
        return "-"
    until = retry.deferred_until_ms
    return f"{retry.attempts or 0} attempt(s), next not before {_time(until)}"


def _application_line(row: dict[str, Any] | None) -> str:
    if row is None:
        return "- (never pushed, or not archived yet)"
    status = f", HTTP {row['http_status']}" if row.get("http_status") is not None else ""
    return (
        f"{row['action']} {row['result']}{status}, {row['outcome']} at "
        f"{_time(row['settled_ms'])} (run {row['flow_run_id']})"
    )


def _time(ms: object) -> str:
    return iso_utc(ms) if isinstance(ms, int) and not isinstance(ms, bool) else "?"
