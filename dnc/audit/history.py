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
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Engine

from dnc.audit.database import require_current
from dnc.audit.gaps import gap_start_ms, gaps_since, purged_before
from dnc.audit.lag import backlog
from dnc.audit.number_state import NumberState, RetryState, current_state
from dnc.audit.timeline import (
    DEFAULT_LIMIT,
    TimelineEntry,
    last_application,
    last_application_row,
    timeline,
    timeline_entries,
)
from dnc.e164 import to_e164
from dnc.keys import RedisKeys
from dnc.timestamps import iso_utc

__all__ = [
    "DEFAULT_LIMIT",
    "NumberHistory",
    "NumberState",
    "RetryState",
    "StoredRecords",
    "TimelineEntry",
    "current_state",
    "gap_start_ms",
    "gaps_since",
    "last_application",
    "number_history",
    "purged_before",
    "read_number",
    "stored_records",
    "timeline",
]


def read_number(raw: str, region: str | None) -> str:
    """``raw`` (any written form) as E.164, read exactly as ``dnc.audit.entries.normaliser``
    reads it (like intake: without a country code in ``region``, an ISO 3166-1 alpha-2 code
    or ``None``; unverified numbers kept). Raises ``dnc.e164.PhoneNumberProblem`` with the
    reason."""
    return to_e164(raw, region, allow_unverified=True).e164


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
        entries, truncated = timeline_entries(connection, e164, limit)
        since_ms = entries[0].at_ms if entries else None
        return StoredRecords(
            entries,
            truncated,
            last_application_row(connection, e164),
            gaps_since(connection, since_ms),
            purged_before(connection),
        )


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
