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
import errno
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dnc.audit.database import AuditStoreNotReady, current_revision, open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.export import count_rows, export_rows
from dnc.audit.export_format import Row, write_csv, write_jsonl
from dnc.masking import mask_number
from dnc.settings import AuditSettings, IntakeSettings
from dnc.timestamps import TimestampProblem, iso_utc, parse_time
from dnc_sync.audit_errors import database_failure, load_settings, settings_problems

app = typer.Typer(
    help="The audit store (the system of record): export records, migrate the schema.",
    no_args_is_help=True,
)

PROGRESS_STEP = 1_000
"""Rows between two updates of the progress bar."""


class ExportFormat(StrEnum):
    """How ``export`` writes rows (``dnc.audit.export``)."""

    CSV = "csv"
    JSONL = "jsonl"


_WRITERS: dict[ExportFormat, Callable[[Iterable[Row], TextIO], int]] = {
    ExportFormat.CSV: write_csv,
    ExportFormat.JSONL: write_jsonl,
}


class _Failed(Exception):
    """Stop with exit code 1 and this message."""


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
            help="Region of a --number without a country code, or none [DNC_INTAKE_DEFAULT_REGION]."
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
    except _Failed as exc:
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
    except _Failed as exc:
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
        raise _Failed(f"cannot migrate the audit store: {exc}") from None
    except SQLAlchemyError as exc:
        raise _Failed(database_failure(exc, "migrate")) from None
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
            _output(output) as stream,
            _progress(total) as advance,
        ):
            return _WRITERS[export_format](_counted(rows, advance), stream)
    except AuditStoreNotReady as exc:
        raise _Failed(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _Failed(database_failure(exc)) from None
    except OSError as exc:  # a full disk, a closed pipe: the file is removed
        raise _Failed(f"cannot write the export: {exc.strerror or exc}") from None
    finally:
        engine.dispose()


def _counted(rows: Iterable[Row], advance: Callable[[int], None]) -> Iterator[Row]:
    """``rows``, moving the progress bar every ``PROGRESS_STEP`` rows and at the end."""
    done = 0
    for done, row in enumerate(rows, 1):
        yield row
        if done % PROGRESS_STEP == 0:
            advance(PROGRESS_STEP)
    advance(done % PROGRESS_STEP)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar of ``total`` rows on standard error, shown only on a terminal; yields
    the function that advances it by a number of rows."""
    err = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = bar.add_task("exporting", total=total)
    with bar:
        yield lambda rows: bar.advance(task, rows)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """Standard output (``None``), or ``path`` as a private file: created or truncated with
    mode 0600 (also when it existed with another), never through a symbolic link, only a
    regular file; synced to disk at the end, removed when the block raises."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    stream = _open_private(path)
    try:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())
    except BaseException:
        stream.close()
        path.unlink(missing_ok=True)
        raise
    else:
        stream.close()


def _open_private(path: Path) -> TextIO:
    """``path`` opened for UTF-8 text (``newline=""``), mode 0600. Raises ``_Failed``."""
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise _Failed(f"{path} is a symbolic link: refusing to write through it")
        if not stat.S_ISREG(mode):
            raise _Failed(f"{path} is not a regular file (- writes to standard output)")
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the check
            raise _Failed(f"{path} is a symbolic link: refusing to write through it") from None
        raise _Failed(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # a file that existed keeps its mode through O_TRUNC
        return os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


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
        raise _Failed(str(exc)) from None
    except ArgumentError:  # the URL itself is never printed: it may hold a password
        raise _Failed("DNC_AUDIT_DATABASE_URL is not a database URL SQLAlchemy can open") from None
    except OSError as exc:
        raise _Failed(f"cannot create the SQLite audit store: {exc.strerror or exc}") from None


def _not_the_database(output: Path, url: str) -> None:
    """Refuse an ``output`` that is the SQLite audit store's own file (truncating it would
    destroy the records)."""
    with contextlib.suppress(ArgumentError, OSError):
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite" and parsed.database
        if sqlite and output.exists() and os.path.samefile(output, str(parsed.database)):
            raise typer.BadParameter("is the audit store itself", param_hint="--output")
