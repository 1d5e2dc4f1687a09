"""The archive's database side: write a batch of rows once, keep each stream's cursor, and
record what a stream lost before it was archived. Plain functions over an ``Engine``; the
archive (``dnc.audit.archive``) calls them from a worker thread.

Cursor (``audit_archive_cursors``), per stream: the newest entry id archived (only ever moves
forward), how many distinct entries were archived and how many were recorded lost since the
stream began (a reset stream starts both anew). All times are UTC ms.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, Table, and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from dnc.audit import schema
from dnc.audit.entries import split_id
from dnc.audit.streams import Stream


class AuditWriteError(RuntimeError):
    """The audit store refused or failed a write (unreachable, locked, restarting, full): the
    batch was not committed and its entries stay in Redis. The message names the driver's
    error type and code, never its text, which may quote the rows (full phone numbers)."""

    @classmethod
    def of(cls, exc: BaseException) -> AuditWriteError:
        """The error for ``exc`` (SQLAlchemy's ``DBAPIError`` or the driver's own)."""
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
        detail = type(cause).__name__ + (f" ({code})" if code else "")
        return cls(f"the audit store did not take a batch: {detail}; nothing was trimmed")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A stream's archive cursor: the newest ``entry_id`` archived (``"0-0"``: none), how
    many of its entries were ``archived`` and how many were recorded ``lost``, and how many
    it had ``added`` when last checked."""

    entry_id: str
    archived: int
    lost: int
    added: int = 0

    @property
    def seen(self) -> bool:
        """Whether the archive has copied (or recorded losses of) this stream before."""
        return self != NO_CURSOR


NO_CURSOR = Cursor("0-0", 0, 0, 0)


def write_batch(
    engine: Engine, stream: Stream, rows: list[dict[str, Any]], last: str, now_ms: int
) -> int:
    """Write ``rows`` of ``stream`` (those already there are skipped: a stream entry is
    written once) and move its cursor to ``last``, in one transaction; returns how many rows
    were new. The cursor's ``archived`` count grows by the rows past the cursor (entries of
    this stream archived for the first time, new to the store or not: a stream restored from
    a snapshot holds entries the store has already). Raises ``AuditWriteError`` (the driver's
    error type and code only)."""
    with sanitised_errors(), engine.begin() as connection:
        after = _cursor_id(connection, stream.name)
        beyond = sum((row["stream_ms"], row["stream_seq"]) > after for row in rows)
        if connection.dialect.name == "postgresql":
            inserted = _copy_insert(connection, stream.table, rows)
        else:
            insert = _dialect(connection).insert(stream.table).on_conflict_do_nothing()
            key = stream.table.primary_key.columns.values()[-1]
            inserted = len(connection.execute(insert.returning(key), rows).all())
        advance(connection, stream.name, last, now_ms, archived=beyond)
        return inserted


@contextmanager
def sanitised_errors() -> Iterator[None]:
    """Turn the database's errors into ``AuditWriteError`` (no text, no chained cause)."""
    try:
        yield
    except (DBAPIError, psycopg.Error, sqlite3.Error) as exc:
        raise AuditWriteError.of(exc) from None


def _cursor_id(connection: Connection, name: str) -> tuple[int, int]:
    columns = schema.cursors.c
    row = connection.execute(
        select(columns.last_ms, columns.last_seq).where(columns.stream == name)
    ).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def read_cursor(engine: Engine, name: str) -> Cursor:
    """The cursor of stream ``name`` (``NO_CURSOR`` before its first archive)."""
    columns = schema.cursors.c
    with engine.connect() as connection:
        row = connection.execute(
            select(
                columns.last_ms, columns.last_seq, columns.archived, columns.lost, columns.added
            ).where(columns.stream == name)
        ).first()
    if row is None:
        return NO_CURSOR
    return Cursor(f"{row[0]}-{row[1]}", int(row[2]), int(row[3]), int(row[4]))


def advance(
    connection: Connection,
    name: str,
    entry_id: str,
    now_ms: int,
    *,
    archived: int = 0,
    lost: int = 0,
) -> None:
    """Move the cursor of stream ``name`` to ``entry_id`` unless it is already past it, and
    add to its counts (one UPDATE: concurrent runs cannot lose an addition)."""
    ms, seq = split_id(entry_id)
    table = schema.cursors
    connection.execute(
        _dialect(connection)
        .insert(table)
        .values(stream=name, last_ms=0, last_seq=0, updated_ms=0, archived=0, lost=0, added=0)
        .on_conflict_do_nothing()
    )
    later = or_(table.c.last_ms < ms, and_(table.c.last_ms == ms, table.c.last_seq < seq))
    connection.execute(
        update(table)
        .where(table.c.stream == name)
        .values(
            last_ms=case((later, ms), else_=table.c.last_ms),
            last_seq=case((later, seq), else_=table.c.last_seq),
            updated_ms=now_ms,
            archived=table.c.archived + archived,
            lost=table.c.lost + lost,
        )
    )


def record_loss(
    engine: Engine, name: str, cursor: Cursor, through: str, missing: int, now_ms: int
) -> None:
    """Record ``missing`` entries of stream ``name`` lost after ``cursor`` and before
    ``through`` (an entry id), and count them in the cursor. Raises ``AuditWriteError``."""
    with sanitised_errors(), engine.begin() as connection:
        _insert_gap(connection, name, cursor.entry_id, through, missing, now_ms)
        advance(connection, name, cursor.entry_id, now_ms, lost=missing)


def note_added(engine: Engine, name: str, added: int, now_ms: int) -> None:
    """Keep how many entries stream ``name`` had added when checked (``XINFO STREAM``).
    Raises ``AuditWriteError``."""
    with sanitised_errors(), engine.begin() as connection:
        advance(connection, name, "0-0", now_ms)  # the cursor row, on a stream's first run
        connection.execute(
            update(schema.cursors)
            .where(schema.cursors.c.stream == name)
            .values(added=added, updated_ms=now_ms)
        )


def record_reset(
    engine: Engine,
    name: str,
    cursor: Cursor,
    through: str,
    removed: int,
    now_ms: int,
    *,
    archived_before: bool,
) -> None:
    """Record a reset stream ``name``: an unknown number lost from the stream that was (what
    it held after the last run); then count anew from the stream as it is now (its
    ``entries-added`` restarted, its ids may be older than the cursor's). Its ``removed``
    entries are counted lost too, unless ``archived_before`` (a snapshot restored with the
    archive's group in it: an archive trimmed them). Raises ``AuditWriteError``."""
    lost = 0 if archived_before else max(removed, 0)
    with sanitised_errors(), engine.begin() as connection:
        _insert_gap(connection, name, cursor.entry_id, through, None, now_ms)
        if lost:  # trimmed from the new stream before any run copied them
            _insert_gap(connection, name, cursor.entry_id, through, lost, now_ms)
        connection.execute(
            update(schema.cursors)
            .where(schema.cursors.c.stream == name)
            .values(
                last_ms=0,
                last_seq=0,
                archived=max(removed, 0) - lost,
                lost=lost,
                added=0,
                updated_ms=now_ms,
            )
        )


def _insert_gap(
    connection: Connection,
    name: str,
    after: str,
    through: str,
    missing: int | None,
    now_ms: int,
) -> None:
    connection.execute(
        schema.gaps.insert().values(
            stream=name,
            after_id=after,
            through_id=through,
            missing=missing,  # None: unknown
            found_ms=now_ms,
        )
    )


def _copy_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: ``COPY`` the rows into a temporary staging table, then ``INSERT ... SELECT
    ... ON CONFLICT DO NOTHING`` into ``table``, in the caller's transaction; returns how many
    rows were new. About five times faster than a multi-row INSERT ... RETURNING (measured
    with ``bench/audit.py``). The staging table lives as long as the pooled connection and
    empties at every commit or rollback."""
    columns = [column.name for column in table.columns]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    target, staging = sql.Identifier(table.name), sql.Identifier(f"staging_{table.name}")
    driver = connection.connection.driver_connection
    assert driver is not None  # noqa: S101 - a live pooled connection always has one
    with driver.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                staging, target
            )
        )
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, names)) as copy:
            for row in rows:
                copy.write_row([row.get(column) for column in columns])
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                target, names, names, staging
            )
        )
        return int(cursor.rowcount)


def _dialect(connection: Connection) -> Any:
    """The dialect module whose ``insert`` has ``ON CONFLICT`` (PostgreSQL and SQLite share
    the form)."""
    return postgresql if connection.dialect.name == "postgresql" else sqlite
