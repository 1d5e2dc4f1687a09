"""The archive: copy Redis stream entries into the audit store, then trim what was copied.

Per stream, oldest first, ``batch`` entries at a time: read (``XRANGE``), write them in one
database transaction keyed by entry id (a row already there is left as it is, so retries and
overlapping runs write each entry once) with the stream's cursor (the newest id archived),
commit, and only then trim the stream through the last archived id (``XTRIM MINID``, exact).
A run killed at any point loses nothing: uncommitted rows roll back and their entries are
still in Redis; committed but untrimmed entries are read again and skipped.

Before copying a stream, its ``max-deleted-entry-id`` (``XINFO STREAM``, Redis >= 7.0) is
compared with the cursor: an entry deleted past the cursor was lost before it was archived
(the capped unauthenticated stream under a flood, a stream capped before the archive
existed, a manual trim); that range is recorded in ``audit_archive_gaps`` so the loss is on
record. The database work runs in a worker thread; Redis calls are async.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg import sql
from sqlalchemy import Connection, Engine, Table, and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from dnc.audit import schema
from dnc.audit.entries import (
    Fields,
    Normalise,
    application_row,
    event_row,
    next_id,
    rejection_row,
    split_id,
)
from dnc.keys import RedisKeys
from dnc.store import REDIS_FAILURES, convert_error

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
"""Compare-and-delete: a run frees only its own lease."""

INCARNATION_GROUP = "dnc-archive"
"""The empty consumer group the archive keeps on each stream to notice a reset stream (it
reads nothing through it; ``Archiver._record_gap``)."""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""Compare-and-extend: a run renews only its own lease."""


@dataclass(frozen=True, slots=True)
class Stream:
    """One archived stream: its short ``name`` (the cursor's key), Redis ``key``, target
    ``table`` and how an entry becomes a row (``to_row(entry id, fields)``)."""

    name: str
    key: str
    table: Table
    to_row: Callable[[str, Fields], dict[str, Any]]


def streams(keys: RedisKeys, normalise: Normalise) -> list[Stream]:
    """The four archived streams of a namespace."""
    return [
        Stream("events", keys.audit, schema.events, event_row),
        Stream(
            "rejected",
            keys.rejected,
            schema.rejections,
            lambda i, f: rejection_row("rejected", i, f, normalise),
        ),
        Stream(
            "unauthenticated",
            keys.rejected_unauthenticated,
            schema.rejections,
            lambda i, f: rejection_row("unauthenticated", i, f, normalise),
        ),
        Stream("applications", keys.applications, schema.applications, application_row),
    ]


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
    many distinct entries were ever ``archived`` and how many were recorded ``lost``."""

    entry_id: str
    archived: int
    lost: int


@dataclass
class ArchiveReport:
    """What one run did, per stream name: entries ``archived`` (written to the store by this
    run and trimmed), entries found lost before archiving (``gaps``: recorded in
    ``audit_archive_gaps``), ``reset``: streams whose count restarted (deleted, or Redis lost
    its data) so that an unknown number of entries may be lost (also recorded there), and
    the ``backlog`` left unarchived; ``drained``: every stream was emptied; ``skipped``:
    another archive run held the lease, this one did nothing."""

    archived: dict[str, int] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)
    reset: list[str] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    drained: bool = True
    skipped: bool = False

    @property
    def total(self) -> int:
        """Entries archived in all streams."""
        return sum(self.archived.values())


class Archiver:
    """Copies ``streams`` from ``client`` into ``engine`` (schema at head), ``batch`` entries
    per transaction, one run at a time per namespace: a lease (``lease_key``, default the
    streams' namespace's ``RedisKeys.archive_lease``) of ``lease_ttl_s`` seconds, renewed
    before every batch, so a run that dies blocks the next for at most that long (the gap
    count needs one run at a time; the copy itself is idempotent). ``clock`` gives UTC
    seconds (tests fix it).
    Raises ``StoreError`` / ``StoreUnavailable`` when Redis fails and SQLAlchemy's errors when
    the database does; either way nothing archived is lost and nothing unarchived is
    trimmed."""

    def __init__(
        self,
        client: aioredis.Redis,
        engine: Engine,
        streams: Sequence[Stream],
        *,
        lease_key: str | None = None,
        lease_ttl_s: float = 30.0,
        batch: int = 5_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._engine = engine
        self._streams = list(streams)
        tag = self._streams[0].key.split("}", 1)[0] + "}" if self._streams else "{dnc}"
        self._lease_key = lease_key or f"{tag}:archive-lease"
        self._lease_ttl_ms = int(lease_ttl_s * 1000)
        self._batch = batch
        self._clock = clock
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._token = ""

    async def run(self, budget_s: float) -> ArchiveReport:
        """Archive every stream until it is empty or ``budget_s`` seconds have passed; does
        nothing (``skipped``) while another run holds the lease, and stops where it is when
        its lease was lost (it could not renew it in time)."""
        deadline = time.monotonic() + budget_s
        self._token = uuid.uuid4().hex
        taken = await self._redis(
            "set", self._lease_key, self._token, nx=True, px=self._lease_ttl_ms
        )
        if not taken:
            return ArchiveReport(skipped=True)
        try:
            return await self._run(deadline)
        finally:
            await self._redis_script(self._release, [self._lease_key], [self._token])

    async def _holds_lease(self) -> bool:
        """Renew the lease for another ``lease_ttl_s``; false when it is not ours any more."""
        renewed = await self._redis_script(
            self._renew, [self._lease_key], [self._token, self._lease_ttl_ms]
        )
        return bool(renewed)

    async def _run(self, deadline: float) -> ArchiveReport:
        report = ArchiveReport()
        for stream in self._streams:
            if not await self._holds_lease():
                report.drained = False
                break
            report.gaps[stream.name], reset = await self._record_gap(stream)
            if reset:
                report.reset.append(stream.name)
            report.archived[stream.name] = await self._drain(stream, deadline)
            report.backlog[stream.name] = await self._redis("xlen", stream.key)
            report.drained = report.drained and report.backlog[stream.name] == 0
        return report

    async def _drain(self, stream: Stream, deadline: float) -> int:
        copied = 0
        start = "-"
        while time.monotonic() < deadline and await self._holds_lease():
            entries = await self._redis("xrange", stream.key, start, "+", count=self._batch)
            if not entries:
                break
            rows = [stream.to_row(_text(entry_id), _decode(fields)) for entry_id, fields in entries]
            last = _text(entries[-1][0])
            copied += await asyncio.to_thread(self._write, stream, rows, last)
            # Only now, with the rows committed, may the stream forget them.
            await self._redis("xtrim", stream.key, minid=next_id(last), approximate=False)
            start = "(" + last
        return copied

    def _write(self, stream: Stream, rows: list[dict[str, Any]], last: str) -> int:
        """Write ``rows`` (those already there are skipped) and move the cursor to ``last``,
        in one transaction; returns how many rows were new. Raises ``AuditWriteError`` (the
        driver's error type and code only: its message may quote the rows)."""
        try:
            return self._write_rows(stream, rows, last)
        except (DBAPIError, psycopg.Error, sqlite3.Error) as exc:
            raise AuditWriteError.of(exc) from None

    def _write_rows(self, stream: Stream, rows: list[dict[str, Any]], last: str) -> int:
        with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                inserted = _copy_insert(connection, stream.table, rows)
            else:
                insert = _dialect(connection).insert(stream.table).on_conflict_do_nothing()
                key = stream.table.primary_key.columns.values()[-1]
                inserted = len(connection.execute(insert.returning(key), rows).all())
            self._advance(connection, stream.name, last, archived=inserted)
            return inserted

    def _advance(
        self, connection: Connection, name: str, entry_id: str, *, archived: int = 0, lost: int = 0
    ) -> None:
        """Move the cursor of stream ``name`` to ``entry_id`` unless it is already past it,
        and add to its counts (one UPDATE: concurrent runs cannot lose an addition)."""
        ms, seq = split_id(entry_id)
        table = schema.cursors
        empty = {"stream": name, "last_ms": 0, "last_seq": 0, "updated_ms": 0}
        connection.execute(
            _dialect(connection)
            .insert(table)
            .values(**empty, archived=0, lost=0)
            .on_conflict_do_nothing()
        )
        later = or_(table.c.last_ms < ms, and_(table.c.last_ms == ms, table.c.last_seq < seq))
        connection.execute(
            update(table)
            .where(table.c.stream == name)
            .values(
                last_ms=case((later, ms), else_=table.c.last_ms),
                last_seq=case((later, seq), else_=table.c.last_seq),
                updated_ms=self._now_ms(),
                archived=table.c.archived + archived,
                lost=table.c.lost + lost,
            )
        )

    async def _record_gap(self, stream: Stream) -> tuple[int, bool]:
        """Record entries removed from the stream before they were archived; returns how many
        were found (0 almost always) and whether the stream was reset (deleted, or Redis came
        back without its data), losing an unknown number more.

        Resets: the archive keeps an empty consumer group (``INCARNATION_GROUP``) on each
        stream. It lives inside the stream's key, so it disappears with it (DEL, FLUSHALL, a
        restart without AOF/RDB) and survives what keeps the stream; a stream the archive has
        copied before (a cursor in the store) without the group is a new one. Trims within
        one stream: counts, not ids (MAXLEN and XTRIM leave no trace but ``entries-added``),
        so lost = removed (added - length) minus the removed ones that were archived (archived
        since the stream began - those still in it) minus the losses already on record.
        Needs one archive run at a time (the lease)."""
        cursor = await asyncio.to_thread(self._cursor, stream.name)
        seen = cursor != Cursor("0-0", 0, 0)
        try:
            info = await self._redis("xinfo_stream", stream.key)
            groups = await self._redis("xinfo_groups", stream.key)
        except LookupError:  # no such key
            if not seen:
                return 0, False  # nothing was ever written, nothing lost
            info, groups = None, []
        if not any(_text(group.get("name", b"")) == INCARNATION_GROUP for group in groups):
            await self._redis("xgroup_create", stream.key, INCARNATION_GROUP, "$", mkstream=True)
            if seen:  # copied before, but this is not that stream any more
                removed = 0 if info is None else int(info["entries-added"]) - int(info["length"])
                await asyncio.to_thread(self._write_reset, stream, cursor, info, removed)
                return max(removed, 0), True
        if info is None:
            return 0, False
        removed = int(info["entries-added"]) - int(info["length"])
        present = 0
        if cursor.entry_id != "0-0":
            present = len(await self._redis("xrange", stream.key, "-", cursor.entry_id))
        missing = removed - (cursor.archived - present) - cursor.lost
        if missing <= 0:  # fewer only if counted wrong before: never report a negative loss
            return 0, False
        await asyncio.to_thread(self._write_gap, stream, cursor, _first_id(info), missing)
        return missing, False

    def _cursor(self, name: str) -> Cursor:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    schema.cursors.c.last_ms,
                    schema.cursors.c.last_seq,
                    schema.cursors.c.archived,
                    schema.cursors.c.lost,
                ).where(schema.cursors.c.stream == name)
            ).first()
        if row is None:
            return Cursor("0-0", 0, 0)
        return Cursor(f"{row[0]}-{row[1]}", int(row[2]), int(row[3]))

    def _write_gap(self, stream: Stream, cursor: Cursor, through: str, missing: int) -> None:
        with self._engine.begin() as connection:
            self._insert_gap(connection, stream.name, cursor.entry_id, through, missing)
            self._advance(connection, stream.name, cursor.entry_id, lost=missing)

    def _write_reset(
        self, stream: Stream, cursor: Cursor, info: Mapping[str, Any] | None, removed: int
    ) -> None:
        """Record a reset stream: an unknown number lost from the stream that was (what it
        held after the last run), and, counted, the entries the new stream already lost;
        then count anew from the new stream (its ``entries-added`` restarted)."""
        through = _first_id(info) if info is not None else "-"
        with self._engine.begin() as connection:
            self._insert_gap(connection, stream.name, cursor.entry_id, through, None)
            if removed > 0:  # trimmed from the new stream before any run copied them
                self._insert_gap(connection, stream.name, cursor.entry_id, through, removed)
            connection.execute(
                update(schema.cursors)
                .where(schema.cursors.c.stream == stream.name)
                .values(archived=0, lost=removed, updated_ms=self._now_ms())
            )

    def _insert_gap(
        self, connection: Connection, name: str, after: str, through: str, missing: int | None
    ) -> None:
        connection.execute(
            schema.gaps.insert().values(
                stream=name,
                after_id=after,
                through_id=through,
                missing=missing,  # None: unknown
                found_ms=self._now_ms(),
            )
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _redis_script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def _redis(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, name)(*args, **kwargs)
        except REDIS_FAILURES as exc:
            if name.startswith("xinfo_") and "no such key" in str(exc).lower():
                raise LookupError("no such key") from exc
            raise convert_error(exc) from exc


def lag_reason(entries: int, oldest_age_s: float, max_entries: int, max_age_s: float) -> str | None:
    """Why the archive is lagging, or ``None``: more than ``max_entries`` stream entries wait,
    or the oldest has waited more than ``max_age_s`` seconds (a stopped archive on a quiet
    system). The one rule status, ``/metrics`` and the archive flow apply
    (``DNC_AUDIT_ARCHIVE_LAG_MAX_ENTRIES``, ``DNC_AUDIT_ARCHIVE_LAG_MAX_S``)."""
    if entries > max_entries:
        return f"{entries:,} stream entries wait to be archived (limit {max_entries:,})"
    if entries and oldest_age_s > max_age_s:
        return (
            f"the oldest unarchived entry has waited {oldest_age_s:,.0f} s "
            f"(limit {max_age_s:,.0f} s)"
        )
    return None


def oldest_age_s(waiting: Mapping[str, tuple[int, int | None]], now_ms: int) -> float:
    """How long the oldest entry of ``backlog``'s answer has waited at ``now_ms``, seconds."""
    oldest = [ms for _, ms in waiting.values() if ms is not None]
    return max(0.0, (now_ms - min(oldest)) / 1000) if oldest else 0.0


async def backlog(client: aioredis.Redis, keys: RedisKeys) -> dict[str, tuple[int, int | None]]:
    """Per archived stream name: (entries not yet archived, the oldest one's time in UTC ms,
    or ``None`` when there is none). Raises ``StoreError``/``StoreUnavailable``."""
    names = {s.name: s.key for s in streams(keys, lambda _raw: None)}
    try:
        async with client.pipeline(transaction=False) as pipe:
            for key in names.values():
                pipe.xlen(key)
                pipe.xrange(key, "-", "+", count=1)
            replies = await pipe.execute()
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    found: dict[str, tuple[int, int | None]] = {}
    for i, name in enumerate(names):
        length, first = int(replies[2 * i]), replies[2 * i + 1]
        found[name] = (length, split_id(_text(first[0][0]))[0] if first else None)
    return found


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


def _first_id(info: Mapping[str, Any]) -> str:
    """The id of a stream's first entry (``XINFO STREAM``), or its last id when empty."""
    first = info.get("first-entry")
    return _text(first[0]) if first else _text(info["last-generated-id"])


def _dialect(connection: Connection) -> Any:
    """The dialect module whose ``insert`` has ``ON CONFLICT`` (PostgreSQL and SQLite share
    the form)."""
    return postgresql if connection.dialect.name == "postgresql" else sqlite


def _decode(fields: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
