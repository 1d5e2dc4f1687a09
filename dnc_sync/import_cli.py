"""``dnc-sync import FILE.csv``: load an opt-out / opt-in list through the receiver's intake.

Exit codes: 0 when the file was read through (even with rejected rows), 1 when Redis is
unreachable or the file cannot be read, 2 on bad usage (options, a missing header).
Nothing printed holds a whole phone number.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from dnc.errors import StoreError
from dnc.intake import IntakePolicy
from dnc.keys import RedisKeys
from dnc.settings import IntakeSettings, RedisSettings
from dnc.store import EventStore, StoreLimits, open_redis
from dnc_sync.csv_rows import Columns, CsvFormat, HeaderError, UnreadableFile, default_rejects_path
from dnc_sync.importer import ImportReport, auto_workers, import_file


class _Failed(Exception):
    """Stop with exit code 1 and this message."""


def import_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The CSV file to import.", dir_okay=False)
    ],
    phone_column: Annotated[str, typer.Option(help="Header of the phone numbers.")] = "phoneNumber",
    action_column: Annotated[
        str, typer.Option(help="Header of the actions (optOut / optIn, any case).")
    ] = "eventName",
    timestamp_column: Annotated[
        str, typer.Option(help="Header of the event times (ISO 8601 or epoch ms).")
    ] = "timestamp",
    region_column: Annotated[
        str | None,
        typer.Option(
            help="Header of the regions (ISO 3166-1 alpha-2); default: region, when the file "
            "has it."
        ),
    ] = None,
    expiry_column: Annotated[
        str | None,
        typer.Option(
            help="Header of the opt-out expiries (ISO 8601 or epoch ms); default: expiresAt, "
            "when the file has it."
        ),
    ] = None,
    delimiter: Annotated[str, typer.Option(help="Field delimiter (one character, or \\t).")] = ",",
    encoding: Annotated[str, typer.Option(help="Text encoding (the default drops a BOM).")] = (
        "utf-8-sig"
    ),
    default_region: Annotated[
        str | None,
        typer.Option(
            help='Region of numbers without a country code, or "none".',
            show_default="setting DNC_INTAKE_DEFAULT_REGION",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Where refused rows go (CSV); default: FILE.rejects.csv beside FILE (its .csv "
            "suffix replaced)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per Redis call.")] = 1000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=32,
            help="Processes judging rows (0: this one); default: one per CPU (at most 4) for "
            "files over 4 MB, else 0.",
        ),
    ] = None,
) -> None:
    """Import an opt-out / opt-in list: every row judged as the receiver judges an event,
    recorded in Redis for the sync; refused rows go to the rejects file."""
    delimiter = _delimiter(delimiter)
    _check_encoding(encoding)
    policy = _policy(default_region)
    columns = Columns(phone_column, action_column, timestamp_column, region_column, expiry_column)
    rejects_path = rejects or default_rejects_path(file)
    if rejects_path.exists() and file.exists() and rejects_path.samefile(file):
        raise typer.BadParameter("must not be the input file", param_hint="--rejects")
    err = Console(stderr=True)
    csv_format = CsvFormat(columns, encoding, delimiter)
    try:
        report = asyncio.run(_run(file, csv_format, policy, rejects_path, batch_size, workers, err))
    except HeaderError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (_Failed, UnreadableFile) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    _print_report(report, rejects_path)


async def _run(
    file: Path,
    csv_format: CsvFormat,
    policy: IntakePolicy,
    rejects_path: Path,
    batch_size: int,
    workers: int | None,
    err: Console,
) -> ImportReport:
    """The import with the environment's Redis and a progress bar on ``err``."""
    settings = RedisSettings()
    limits = dataclasses.replace(StoreLimits.from_settings(settings), max_batch=batch_size)
    store = EventStore(open_redis(settings), RedisKeys(settings.namespace), limits)
    try:
        await _ping(store)
        with _progress(err, file) as (bar, task):
            return await import_file(
                file,
                csv_format,
                policy,
                store,
                rejects_path,
                batch_size=batch_size,
                workers=auto_workers(file) if workers is None else workers,
                on_batch=lambda report, done: bar.update(
                    task, completed=done, rows=report.rows, rate=report.rows_per_s
                ),
            )
    except StoreError as exc:
        raise _Failed(f"{exc}; rows imported so far stay imported, run again to finish") from None
    except UnreadableFile:
        raise
    except OSError as exc:
        name = exc.filename or file
        raise _Failed(f"cannot open {name}: {exc.strerror or exc}") from None
    finally:
        await store.close()


async def _ping(store: EventStore) -> None:
    try:
        await store.ping()
    except StoreError as exc:
        raise _Failed(f"{exc} (DNC_REDIS_URL); nothing was imported") from None


@contextlib.contextmanager
def _progress(err: Console, file: Path) -> Iterator[tuple[Progress, TaskID]]:
    """A rich progress bar on ``err`` (share of the file's bytes, rows, rows/s), shown only
    when ``err`` is a terminal."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]:>10,} rows"),
        TextColumn("{task.fields[rate]:>8,.0f} rows/s"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = bar.add_task("importing", total=file.stat().st_size, rows=0, rate=0.0)
    with bar:
        yield bar, task


def _print_report(report: ImportReport, rejects_path: Path) -> None:
    table = Table("outcome", "rows", title="import")
    for outcome in ("queued", "duplicate", "superseded"):
        table.add_row(outcome, f"{report.outcomes[outcome]:,}")
    table.add_row("rejected", f"{report.outcomes['rejected']:,}")
    for reason, count in sorted(report.rejections.items()):
        table.add_row(f"  rejected {reason}", f"{count:,}")
    table.add_row("accepted with warnings", f"{report.warned:,}")
    for reason, count in sorted(report.warnings.items()):
        table.add_row(f"  warning {reason}", f"{count:,}")
    spread = report.aliases["queued"] + report.aliases["superseded"]
    if spread:  # alias copies newly recorded (a re-import's duplicates are not counted)
        table.add_row("alias forms of opt-outs recorded", f"{spread:,}")
    if report.blank:
        table.add_row("blank rows skipped", f"{report.blank:,}")
    table.add_row("rows read", f"{report.rows:,}", end_section=True)
    table.add_row("seconds", f"{report.seconds:,.1f}")
    table.add_row("rows/s", f"{report.rows_per_s:,.0f}")
    out = Console()
    out.print(table)
    if report.outcomes["rejected"]:
        refused = report.outcomes["rejected"]
        out.print(f"{refused:,} refused row(s) written to {rejects_path}", highlight=False)


def _delimiter(value: str) -> str:
    value = "\t" if value in ("\\t", "tab") else value
    if len(value) != 1 or value in ('"', "\r", "\n"):
        raise typer.BadParameter("must be one character (\\t for a tab)", param_hint="--delimiter")
    return value


def _check_encoding(value: str) -> None:
    try:
        codecs.lookup(value)
    except LookupError:
        raise typer.BadParameter(f"unknown encoding {value!r}", param_hint="--encoding") from None


def _policy(default_region: str | None) -> IntakePolicy:
    try:
        if default_region is None:
            return IntakeSettings().policy()
        return IntakeSettings(default_region=default_region).policy()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems, param_hint="--default-region / DNC_INTAKE_*") from None
