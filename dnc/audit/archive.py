"""The archive: copy Redis stream entries into the audit store, then trim what was copied.

Per stream, oldest first, ``batch`` entries at a time: read (``XRANGE``), write them in one
database transaction keyed by entry id (a row already there is left as it is, so retries and
overlapping runs write each entry once) with the stream's cursor (``dnc.audit.archive_writes``),
commit, and only then trim the stream through the last archived id (``XTRIM MINID``, exact).
A run killed at any point loses nothing: uncommitted rows roll back and their entries are
still in Redis; committed but untrimmed entries are read again and skipped.

Before copying a stream, the archive checks what the stream lost before it was archived
(``Archiver._record_gap``: a trim by its cap or by hand, a deleted stream, Redis back without
its data) and records it in ``audit_archive_gaps``. One run at a time per namespace (a Redis
lease). The database work runs in a worker thread; Redis calls are async.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Engine

from dnc.audit.archive_writes import (
    Cursor,
    note_added,
    read_cursor,
    record_loss,
    record_reset,
    write_batch,
)
from dnc.audit.entries import next_id, storable
from dnc.audit.streams import Stream, decode_fields, text
from dnc.redis_failures import REDIS_FAILURES, convert_error

INCARNATION_GROUP = "dnc-archive"
"""The empty consumer group the archive keeps on each stream to notice a reset stream (it
reads nothing through it; ``Archiver._record_gap``)."""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
"""Compare-and-delete: a run frees only its own lease."""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""Compare-and-extend: a run renews only its own lease."""


@dataclass
class ArchiveReport:
    """What one run did, per stream name: entries ``archived`` (written to the store by this
    run and trimmed), entries found lost before archiving (``gaps``: recorded in
    ``audit_archive_gaps``), ``reset``: streams found reset (deleted, or Redis lost its data)
    so that an unknown number of entries more may be lost (also recorded there), and the
    ``backlog`` left unarchived; ``drained``: every stream was emptied; ``skipped``: another
    archive run held the lease, this one did nothing."""

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
    seconds (tests fix it). Raises ``StoreError`` / ``StoreUnavailable`` when Redis fails,
    ``dnc.audit.archive_writes.AuditWriteError`` when a write fails and SQLAlchemy's errors when a
    read does; either way nothing archived is lost and nothing unarchived is trimmed."""

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
            rows = [
                storable(stream.to_row(text(entry_id), decode_fields(f))) for entry_id, f in entries
            ]
            last = text(entries[-1][0])
            copied += await asyncio.to_thread(self._write, stream, rows, last)
            # Only now, with the rows committed, may the stream forget them.
            await self._redis("xtrim", stream.key, minid=next_id(last), approximate=False)
            start = "(" + last
        return copied

    def _write(self, stream: Stream, rows: list[dict[str, Any]], last: str) -> int:
        """``dnc.audit.archive_writes.write_batch`` (a seam for tests that fail a write)."""
        return write_batch(self._engine, stream, rows, last, self._now_ms())

    async def _record_gap(self, stream: Stream) -> tuple[int, bool]:
        """Record entries removed from the stream before they were archived; returns how many
        were found (0 almost always) and whether the stream was reset (deleted, or Redis came
        back without its data), losing an unknown number more.

        Resets: the archive keeps an empty consumer group (``INCARNATION_GROUP``) on each
        stream. It lives inside the stream's key, so it disappears with it (DEL, FLUSHALL, a
        restart without AOF/RDB) and survives what keeps the stream; a stream the archive has
        copied before (a cursor in the store) without the group is a new one, and so is one
        that has added fewer entries than when last checked (restored from an older
        snapshot). Entries a Redis without an fsynced AOF acknowledged and then lost before
        any archive run saw them leave no trace anywhere: run Redis as docs/operating.md says.
        Trims within one stream: counts, not ids (MAXLEN and XTRIM leave no trace but
        ``entries-added``), so lost = removed (added - length) minus the removed ones that were
        archived (archived since the stream began - those still in it) minus the losses already
        on record.
        Needs one archive run at a time (the lease)."""
        cursor = await asyncio.to_thread(read_cursor, self._engine, stream.name)
        try:
            info = await self._redis("xinfo_stream", stream.key)
            groups = await self._redis("xinfo_groups", stream.key)
        except LookupError:  # no such key
            if not cursor.seen:
                return 0, False  # nothing was ever written, nothing lost
            info, groups = None, []
        marked = any(text(group.get("name", b"")) == INCARNATION_GROUP for group in groups)
        if not marked:
            await self._redis("xgroup_create", stream.key, INCARNATION_GROUP, "$", mkstream=True)
        went_back = info is not None and int(info["entries-added"]) < cursor.added
        if cursor.seen and (not marked or went_back):
            # Not the stream copied before: deleted, Redis back empty, or restored from an
            # older snapshot (fewer entries added than last seen).
            return await self._record_reset(stream, cursor, info, marked), True
        if info is None:
            return 0, False
        found = await self._record_trims(stream, cursor, info)
        await asyncio.to_thread(
            note_added, self._engine, stream.name, int(info["entries-added"]), self._now_ms()
        )
        return found, False

    async def _record_reset(
        self, stream: Stream, cursor: Cursor, info: Mapping[str, Any] | None, marked: bool
    ) -> int:
        """Record a reset stream; returns the entries counted lost from the new stream (none
        when it carries the archive's group: a restored snapshot whose trims were ours)."""
        removed = 0 if info is None else _removed(info)
        through = "-" if info is None else _first_id(info)
        await asyncio.to_thread(
            functools.partial(
                record_reset,
                self._engine,
                stream.name,
                cursor,
                through,
                removed,
                self._now_ms(),
                archived_before=marked,
            )
        )
        return 0 if marked else max(removed, 0)

    async def _record_trims(self, stream: Stream, cursor: Cursor, info: Mapping[str, Any]) -> int:
        present = 0
        if cursor.entry_id != "0-0":
            present = len(await self._redis("xrange", stream.key, "-", cursor.entry_id))
        missing = _removed(info) - (cursor.archived - present) - cursor.lost
        if missing <= 0:  # fewer only if counted wrong before: never report a negative loss
            return 0
        await asyncio.to_thread(
            record_loss,
            self._engine,
            stream.name,
            cursor,
            _first_id(info),
            missing,
            self._now_ms(),
        )
        return missing

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


def _removed(info: Mapping[str, Any]) -> int:
    """Entries a stream has lost since it began (``XINFO STREAM``: added - length)."""
    return int(info["entries-added"]) - int(info["length"])


def _first_id(info: Mapping[str, Any]) -> str:
    """The id of a stream's first entry (``XINFO STREAM``), or its last id when empty."""
    first = info.get("first-entry")
    return text(first[0]) if first else text(info["last-generated-id"])
