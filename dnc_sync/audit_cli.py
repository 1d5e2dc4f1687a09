"""``dnc-sync audit``: the audit store from the command line: export a time range for a
regulator or a lawyer, migrate the schema.

Exit codes: 0 done; 1 the audit store is not there (``export`` never creates one), not
migrated or cannot be read, or the output cannot be written (a failed export leaves no file
behind: a partial one would look whole); 2 bad usage or an invalid ``DNC_*`` setting.
``export`` writes only the rows to its output; the progress bar and the summary go to
standard error.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dnc.audit.database import AuditStoreNotReady, current_revision, open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.export import count_rows, export_rows
from dnc.audit.export_format import Row, write_csv, write_jsonl
from dnc.masking import mask_number
from dnc.settings import AuditSettings, IntakeSettings
from dnc.timestamps import TimestampProblem, iso_utc, parse_time
from dnc_sync.audit_errors import (
    CommandFailed,
    database_failure,
    load_settings,
    settings_problems,
)
from dnc_sync.export_output import counted, export_output, progress_bar

app = typer.Typer(
    help="The audit store (the system of record): export records, migrate the schema.",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    """How ``export`` writes rows (``dnc.audit.export``)."""

    CSV = "csv"
    JSONL = "jsonl"


_WRITERS: dict[ExportFormat, Callable[[Iterable[Row], TextIO], int]] = {
    ExportFormat.CSV: write_csv,
    ExportFormat.JSONL: write_jsonl,
}


@app.command("export")
def export_command(
    since: Annotated[
        str,
        typer.Option(
            help="First moment included: an RFC 3339 / ISO 8601 date or date-time (a date is "
            "00:00 UTC, a time without a zone is UTC) or epoch ms.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="File to write, created or replaced with mode 0600 (never through a symbolic "
            "link); - for standard output.",
            allow_dash=True,
            dir_okay=False,
            show_default=False,
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(help="First moment excluded, written like --since; default: now."),
    ] = None,
    number: Annotated[
        str | None,
        typer.Option(help="Only this number's records, in any form intake accepts."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="Region of a --number without a country code, or none.",
            show_default="setting DNC_INTAKE_DEFAULT_REGION",
        ),
    ] = None,
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="csv (with a header row) or jsonl.")
    ] = ExportFormat.CSV,
) -> None:
    """Export the audit records of a time range (CSV or JSON Lines, full numbers).

    Every event, refusal and CXone application received or settled from --since until
    --until, oldest first, streamed from the database."""
    since_ms = _moment(since, "--since")
    until_ms = int(time.time() * 1000) if until is None else _moment(until, "--until")
    if since_ms >= until_ms:
        raise typer.BadParameter("must be before --until", param_hint="--since")
    e164 = None if number is None else _e164(number, region)
    url = _database_url()
    stdout = output == Path("-")
    if not stdout:
        _not_the_database(output, url)
    err = Console(stderr=True)
    try:
        written = _export(url, since_ms, until_ms, e164, None if stdout else output, export_format)
    except CommandFailed as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    where = "standard output" if stdout else str(output)
    err.print(
        f"{written:,} row(s) from {iso_utc(since_ms)} until {iso_utc(until_ms)} written to {where}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("migrate")
def migrate() -> None:
    """Bring the audit store's schema to the newest revision.

    An empty database gets the whole schema; records are kept; a store already there is
    left as it is."""
    err = Console(stderr=True)
    try:
        before, after = _migrate(_database_url())
    except CommandFailed as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if before == after:
        message = f"the audit store is at revision {after} already"
    else:
        message = f"the audit store migrated from {before or 'an empty database'} to {after}"
    Console().print(message, markup=False, highlight=False, soft_wrap=True)


def _migrate(url: str) -> tuple[str | None, str | None]:
    """The revisions before and after migrating the store at ``url`` to the newest."""
    engine = _engine(url, create=True)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    except CommandError as exc:  # e.g. a revision newer than this version knows
        raise CommandFailed(f"cannot migrate the audit store: {exc}") from None
    except SQLAlchemyError as exc:
        raise CommandFailed(database_failure(exc, "migrate")) from None
    finally:
        engine.dispose()


def _export(
    url: str,
    since_ms: int,
    until_ms: int,
    number: str | None,
    output: Path | None,
    export_format: ExportFormat,
) -> int:
    """Write the export to ``output`` (``None``: standard output); returns the rows written.
    The store is checked before the file is touched, and never created."""
    engine = _engine(url, create=False)
    try:
        total = count_rows(engine, since_ms, until_ms, number)
        rows = export_rows(engine, since_ms, until_ms, number)
        with (
            contextlib.closing(rows),
            export_output(output) as stream,
            progress_bar(total) as advance,
        ):
            return _WRITERS[export_format](counted(rows, advance), stream)
    except AuditStoreNotReady as exc:
        raise CommandFailed(str(exc)) from None
    except SQLAlchemyError as exc:
        raise CommandFailed(database_failure(exc)) from None
    except OSError as exc:  # a full disk, a closed pipe: the file is removed
        raise CommandFailed(f"cannot write the export: {exc.strerror or exc}") from None
    finally:
        engine.dispose()


def _moment(text: str, option: str) -> int:
    """``text`` (RFC 3339 / ISO 8601 date or date-time, epoch ms) as UTC ms; a date is its
    00:00 UTC, a time without a zone UTC."""
    try:
        return parse_time(text).epoch_ms
    except TimestampProblem as exc:
        raise typer.BadParameter(
            f"{exc} (write an RFC 3339 / ISO 8601 date or date-time, e.g. 2026-01-31 or "
            "2026-01-31T12:00:00Z)",
            param_hint=option,
        ) from None


def _e164(raw: str, region: str | None) -> str:
    """``raw`` as E.164, read like intake reads it (``region``, else
    ``DNC_INTAKE_DEFAULT_REGION``, for numbers without a country code)."""
    try:
        settings = IntakeSettings() if region is None else IntakeSettings(default_region=region)
    except ValidationError as exc:
        raise typer.BadParameter(
            settings_problems(exc), param_hint="--region / DNC_INTAKE_*"
        ) from None
    e164 = normaliser(settings.policy().default_region)(raw)
    if e164 is None:
        raise typer.BadParameter(f"{mask_number(raw)} is not a phone number", param_hint="--number")
    return e164


def _database_url() -> str:
    return load_settings(AuditSettings).database_url.get_secret_value()


def _engine(url: str, *, create: bool) -> Engine:
    """``open_engine``; a reader (``create=False``) is refused a SQLite file that is not there."""
    try:
        return open_engine(url, create=create)
    except AuditStoreNotReady as exc:
        raise CommandFailed(str(exc)) from None
    except ArgumentError:  # the URL itself is never printed: it may hold a password
        raise CommandFailed(
            "DNC_AUDIT_DATABASE_URL is not a database URL SQLAlchemy can open"
        ) from None
    except OSError as exc:
        raise CommandFailed(
            f"cannot create the SQLite audit store: {exc.strerror or exc}"
        ) from None


def _not_the_database(output: Path, url: str) -> None:
    """Refuse an ``output`` that is the SQLite audit store's own file (truncating it would
    destroy the records)."""
    with contextlib.suppress(ArgumentError, OSError):
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite" and parsed.database
        if sqlite and output.exists() and os.path.samefile(output, str(parsed.database)):
            raise typer.BadParameter("is the audit store itself", param_hint="--output")
