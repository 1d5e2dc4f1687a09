"""One number's history: its current state in Redis and its timeline from the audit store.

The timeline merges the number's rows of the three record tables (events by ``received_ms``,
rejections by ``received_ms``, CXone applications by ``settled_ms``; UTC ms), newest first in
each query so the ``(number, time)`` indexes answer it, then oldest first for the reader. What
the archive has not copied yet is still in Redis: ``NumberHistory.unarchived`` counts those
entries (all numbers' entries, per stream), so a reader knows the newest may be missing, and
``NumberHistory.gaps`` lists the entries the archive found lost before it copied them
(``audit_archive_gaps``, all numbers) during the timeline's span: the record is incomplete there.
``NumberHistory.purged_before_ms`` is the latest retention purge's cutoff (``audit_purges``):
records received (or settled) before it were deleted, except each number's current state.
Full numbers throughout: this is read by the operator who asked for the number (never log it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Column, Connection, Engine, Table, func, select

from dnc.audit import schema
from dnc.audit.database import require_current
from dnc.audit.lag import backlog
from dnc.e164 import to_e164
from dnc.keys import RedisKeys
from dnc.number_hash import states
from dnc.state import decode
from dnc.store import REDIS_FAILURES, convert_error
from dnc.timestamps import iso_utc

DEFAULT_LIMIT = 200
"""Timeline entries returned unless asked otherwise."""

_KIND_ORDER = {"event": 0, "rejection": 1, "application": 2}


def read_number(raw: str, region: str | None) -> str:
    """``raw`` (any written form) as E.164, read exactly as ``dnc.audit.entries.normaliser``
    reads it (like intake: without a country code in ``region``, an ISO 3166-1 alpha-2 code
    or ``None``; unverified numbers kept). Raises ``dnc.e164.PhoneNumberProblem`` with the
    reason."""
    return to_e164(raw, region, allow_unverified=True).e164


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One record of a number: ``at_ms`` (UTC ms: an event's or a rejection's ``received_ms``,
    an application's ``settled_ms``), ``kind`` (``event``, ``rejection``, ``application``),
    ``number`` (E.164), ``summary`` (one human line) and ``detail`` (the row's columns,
    JSON-ready; an event's ``event`` and a rejection's ``fields`` parsed from their JSON)."""

    at_ms: int
    kind: str
    number: str
    summary: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields plus ``at``, ``at_ms`` as RFC 3339 UTC."""
        return {
            "at_ms": self.at_ms,
            "at": iso_utc(self.at_ms),
            "kind": self.kind,
            "number": self.number,
            "summary": self.summary,
            "detail": self.detail,
        }

    def sort_key(self) -> tuple[int, int, int, int]:
        """Time order; at the same ms events before rejections before applications, then by
        stream entry id."""
        detail = self.detail
        return (
            self.at_ms,
            _KIND_ORDER.get(self.kind, 3),
            int(detail.get("stream_ms", 0)),
            int(detail.get("stream_seq", 0)),
        )


def timeline(engine: Engine, e164: str, *, limit: int = DEFAULT_LIMIT) -> list[TimelineEntry]:
    """The newest ``limit`` records of number ``e164`` (E.164) over the three tables, oldest
    first. Raises ``AuditStoreNotReady`` when the schema is not at head, SQLAlchemy's errors
    (``OperationalError``...) when the database fails."""
    require_current(engine)
    with engine.connect() as connection:
        return _timeline(connection, e164, limit)[0]


def last_application(engine: Engine, e164: str) -> dict[str, Any] | None:
    """The newest ``audit_applications`` row of ``e164`` (by ``settled_ms``, UTC ms) as a dict
    of its columns, ``None`` when CXone was never asked about it. Raises as ``timeline``."""
    require_current(engine)
    with engine.connect() as connection:
        return _last_application(connection, e164)


@dataclass(frozen=True, slots=True)
class StoredRecords:
    """What the audit store holds for a number: its ``timeline`` (oldest first), whether
    older entries were left out (``truncated``), its ``last_application`` row, the ``gaps``
    of the timeline's span and ``purged_before_ms`` (``purged_before``)."""

    timeline: list[TimelineEntry]
    truncated: bool
    last_application: dict[str, Any] | None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    purged_before_ms: int | None = None


def stored_records(engine: Engine, e164: str, limit: int = DEFAULT_LIMIT) -> StoredRecords:
    """``timeline`` and ``last_application`` of ``e164`` read on one connection, plus whether
    more than ``limit`` entries exist, the ``gaps`` of the timeline's span (``gaps_since``)
    and the latest purge's cutoff (``purged_before``). Raises as ``timeline``."""
    require_current(engine)
    with engine.connect() as connection:
        entries, truncated = _timeline(connection, e164, limit)
        since_ms = entries[0].at_ms if entries else None
        return StoredRecords(
            entries,
            truncated,
            _last_application(connection, e164),
            gaps_since(connection, since_ms),
            purged_before(connection),
        )


def purged_before(connection: Connection) -> int | None:
    """The latest cutoff of a retention purge (UTC ms; the largest, should a longer retention
    have followed a shorter one): records of all numbers received (applications: settled)
    before it were deleted, except each number's last queued event and last acknowledged
    application. ``None``: nothing was ever purged."""
    found = connection.execute(select(func.max(schema.purges.c.cutoff_ms))).scalar_one()
    return None if found is None else int(found)


def gaps_since(connection: Connection, since_ms: int | None) -> list[dict[str, Any]]:
    """The archive's gaps (entries of all numbers lost before archiving) whose period reaches
    ``since_ms`` or later (UTC ms: the timeline's first entry; ``None``, an empty timeline:
    every gap), oldest first, each a JSON-ready dict: ``stream``, ``after_id``,
    ``through_id`` (the lost entries' ids are after the one and before the other),
    ``missing`` (``None``: an unknown number), ``from_ms``/``from`` (the period's start, UTC
    ms / RFC 3339) and ``found_ms``/``found`` (when the archive found it)."""
    found = []
    for row in connection.execute(select(schema.gaps)).mappings():
        start = gap_start_ms(row["after_id"], row["through_id"], row["found_ms"])
        through_ms = _id_ms(row["through_id"])
        end = max(start, row["found_ms"] if through_ms is None else through_ms)
        if since_ms is None or end >= since_ms:
            found.append((start, row))
    found.sort(key=lambda item: (item[0], item[1]["id"]))
    return [
        {
            "stream": row["stream"],
            "after_id": row["after_id"],
            "through_id": row["through_id"],
            "missing": row["missing"],
            "from_ms": start,
            "from": iso_utc(start),
            "found_ms": row["found_ms"],
            "found": iso_utc(row["found_ms"]),
        }
        for start, row in found
    ]


def gap_start_ms(after_id: str, through_id: str, found_ms: int) -> int:
    """When a gap's period starts (UTC ms), as ``dnc.audit.export`` exports it: the time part
    of ``after_id``, of ``through_id`` when nothing was archived before (``0-0``), else
    ``found_ms``."""
    ms = _id_ms(after_id) if after_id != "0-0" else _id_ms(through_id)
    return found_ms if ms is None else ms


def _id_ms(entry_id: str) -> int | None:
    """The ``<ms>`` of a stream entry id ``<ms>-<seq>``; ``None`` for another text (``-``)."""
    ms, dash, _ = entry_id.partition("-")
    return int(ms) if dash and ms.isdecimal() else None


def _timeline(connection: Connection, e164: str, limit: int) -> tuple[list[TimelineEntry], bool]:
    """The newest ``limit`` entries oldest first, and whether there were more (each table is
    asked for one more row than ``limit``)."""
    found = [
        *(
            _event_entry(row)
            for row in _newest(connection, schema.events, "received_ms", e164, limit + 1)
        ),
        *(
            _rejection_entry(row)
            for row in _newest(connection, schema.rejections, "received_ms", e164, limit + 1)
        ),
        *(
            _application_entry(row)
            for row in _newest(connection, schema.applications, "settled_ms", e164, limit + 1)
        ),
    ]
    found.sort(key=TimelineEntry.sort_key)
    return found[-limit:] if limit > 0 else [], len(found) > limit


def _newest(
    connection: Connection, table: Table, time_column: str, e164: str, limit: int
) -> list[dict[str, Any]]:
    """``table``'s newest ``limit`` rows of ``e164`` by ``time_column``: an index range scan
    of ``(number, time)`` read backwards."""
    at: Column[Any] = table.c[time_column]
    query = select(table).where(table.c.number == e164).order_by(at.desc()).limit(limit)
    return [dict(row) for row in connection.execute(query).mappings()]


def _last_application(connection: Connection, e164: str) -> dict[str, Any] | None:
    rows = _newest(connection, schema.applications, "settled_ms", e164, 1)
    return rows[0] if rows else None


def _event_entry(row: dict[str, Any]) -> TimelineEntry:
    event = _parsed(row["event"])
    parts = [f"event time {iso_utc(row['event_ms'])}"]
    if row["expires_ms"] is not None:
        parts.append(f"expires {iso_utc(row['expires_ms'])}")
    if isinstance(event, dict) and event.get("aliasOf"):
        parts.append(f"copy of {event['aliasOf']}")
    parts.append(f"eventId {row['event_id']}")
    summary = f"{row['action']} {row['status']} ({', '.join(parts)})"
    return TimelineEntry(
        row["received_ms"], "event", row["number"], summary, {**row, "event": event}
    )


def _rejection_entry(row: dict[str, Any]) -> TimelineEntry:
    fields = _parsed(row["fields"])
    kept = fields if isinstance(fields, dict) else {}
    summary = f"refused {row['status']} {row['error']}"
    reason = _problems(kept.get("detail"))
    if reason:
        summary += f": {reason}"
    if row["source"] == "import":
        summary += f" (import {kept.get('file', '?')} row {kept.get('row', '?')})"
    detail = {**row, "fields": fields}
    return TimelineEntry(row["received_ms"], "rejection", row["number"], summary, detail)


def _application_entry(row: dict[str, Any]) -> TimelineEntry:
    parts = [str(row["result"]) + (f" ({row['reason']})" if row["reason"] else "")]
    if row["http_status"] is not None:
        parts.append(f"HTTP {row['http_status']}")
    if row["record_id"] is not None:
        parts.append(f"record {row['record_id']}")
    parts.append(str(row["outcome"]))
    summary = f"CXone {row['action']}: {', '.join(parts)} (run {row['flow_run_id']})"
    return TimelineEntry(row["settled_ms"], "application", row["number"], summary, dict(row))


def _problems(detail: object) -> str:
    """A rejection's ``detail`` (JSON: a list of problems or a message) as one line."""
    parsed = _parsed(detail) if isinstance(detail, str) else detail
    if isinstance(parsed, list):
        return "; ".join(
            f"{p.get('field', '?')}: {p.get('message') or p.get('reason', '?')}"
            for p in parsed
            if isinstance(p, dict)
        )
    return "" if parsed is None else str(parsed)


def _parsed(raw: object) -> Any:
    """``raw`` JSON text parsed; the text itself when it is not JSON (kept, never dropped)."""
    if not isinstance(raw, str | bytes):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


@dataclass(frozen=True, slots=True)
class RetryState:
    """A number waiting out a retry backoff after temporary failures: ``attempts`` counted
    so far, since when it waits (``waiting_since_ms``), its first counted failure
    (``first_failure_ms``, ``None`` before one) and when it may be claimed again
    (``deferred_until_ms``); times UTC ms, ``None`` when not known."""

    attempts: int | None
    waiting_since_ms: int | None
    first_failure_ms: int | None
    deferred_until_ms: int | None


@dataclass(frozen=True, slots=True)
class NumberState:
    """A number's state in Redis now: its ``latest_event`` (the stored event JSON parsed; from
    a compact state, ``dnc.state``, only its id, action, times and expiry: the timeline has
    the rest),
    ``pending_since_ms`` (receive time of its oldest unapplied change, UTC ms; ``None``: not
    pending), ``retry`` (``None`` unless it failed temporarily) and ``dead_letter`` (reason,
    event, ``deadAtMs``; ``None`` unless CXone refused it for good)."""

    latest_event: dict[str, Any] | None
    pending_since_ms: int | None
    retry: RetryState | None
    dead_letter: dict[str, Any] | None


async def current_state(client: aioredis.Redis, keys: RedisKeys, e164: str) -> NumberState:
    """Read ``e164``'s state from Redis in one transaction (a consistent snapshot). Raises
    ``StoreUnavailable``/``StoreError``."""
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hget(keys.latest, e164)
            pipe.zscore(keys.pending, e164)
            pipe.zscore(keys.deferred, e164)
            pipe.hget(keys.retry_state, e164)
            pipe.hget(keys.dead_letters, e164)
            read_state = states(keys).queue_get(pipe, [e164])
            results = iter(await pipe.execute())
            latest, pending, deferred, retry, dead = (next(results) for _ in range(5))
            [state] = read_state(results)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    compact = None
    if latest is None and state is not None:
        compact = decode(e164, state.decode() if isinstance(state, bytes) else str(state))
    return NumberState(
        latest_event=(
            _object(latest)
            if compact is None
            else compact.model_dump(mode="json", exclude_none=True)
        ),
        pending_since_ms=None if pending is None else int(pending),
        retry=_retry(retry, deferred),
        dead_letter=_object(dead),
    )


def _object(raw: object) -> dict[str, Any] | None:
    """A stored JSON object; an unreadable one kept as ``{"unreadable": text}``."""
    if raw is None:
        return None
    parsed = _parsed(raw)
    return parsed if isinstance(parsed, dict) else {"unreadable": str(parsed)}


def _retry(raw: object, deferred: object) -> RetryState | None:
    """``"<attempts>:<waiting since ms>:<first counted failure ms, 0 before one>"``."""
    if raw is None and deferred is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    numbers = [_int(part) for part in text.split(":")] + [None, None, None]
    return RetryState(
        attempts=numbers[0],
        waiting_since_ms=numbers[1],
        first_failure_ms=numbers[2] or None,
        deferred_until_ms=None if deferred is None else int(float(str(deferred))),
    )


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class NumberHistory:
    """Everything known about ``number`` (E.164): its ``state`` in Redis, its
    ``last_application`` row, its ``timeline`` (oldest first; ``truncated``: older entries
    exist), ``unarchived``: per stream, entries (of all numbers) still in Redis and not yet
    in the audit store, so the timeline may miss the newest when any is non-zero, and ``gaps``:
    entries (of all numbers) lost before archiving during the timeline's span
    (``gaps_since``), so the timeline may miss records of that period when any is listed, and
    ``purged_before_ms``: records received before it were purged (retention; the current
    state's proof kept), ``None`` when nothing was."""

    number: str
    state: NumberState
    last_application: dict[str, Any] | None
    timeline: list[TimelineEntry]
    truncated: bool = False
    unarchived: dict[str, int] = field(default_factory=dict)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    purged_before_ms: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /v1/numbers/{number}`` and ``dnc-sync history --json``."""
        return {
            "number": self.number,
            "state": asdict(self.state),
            "last_application": self.last_application,
            "timeline": [entry.as_dict() for entry in self.timeline],
            "truncated": self.truncated,
            "unarchived": self.unarchived,
            "gaps": self.gaps,
            "purged_before_ms": self.purged_before_ms,
            "purged_before": None
            if self.purged_before_ms is None
            else iso_utc(self.purged_before_ms),
        }


async def number_history(
    client: aioredis.Redis,
    keys: RedisKeys,
    engine: Engine,
    e164: str,
    limit: int = DEFAULT_LIMIT,
) -> NumberHistory:
    """``e164``'s history: Redis first (state, then the archive backlog), then the audit store
    in a worker thread, so an entry archived meanwhile is counted unarchived rather than
    missed. Raises ``StoreUnavailable``/``StoreError`` (Redis), ``AuditStoreNotReady`` and
    SQLAlchemy's errors (database)."""
    state = await current_state(client, keys, e164)
    unarchived = {name: count for name, (count, _) in (await backlog(client, keys)).items()}
    stored = await asyncio.to_thread(stored_records, engine, e164, limit)
    return NumberHistory(
        e164,
        state,
        stored.last_application,
        stored.timeline,
        stored.truncated,
        unarchived,
        stored.gaps,
        stored.purged_before_ms,
    )
