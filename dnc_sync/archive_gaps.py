"""The audit record's gaps for ``dnc-sync status``: the entries the archive found lost before
it copied them (the audit store's ``audit_archive_gaps``), counted per stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from dnc.audit import schema
from dnc.audit.database import open_engine, require_current
from dnc.timestamps import iso_utc


@dataclass(frozen=True, slots=True)
class GapCounts:
    """Entries lost before archiving (``audit_archive_gaps``): ``gaps`` recorded, ``missing``
    entries of the gaps whose size is known, ``unknown_size`` gaps of an unknown number of
    entries (a stream reset) and ``latest_found`` (RFC 3339 UTC, ``None`` without a gap)."""

    gaps: int = 0
    missing: int = 0
    unknown_size: int = 0
    latest_found: str | None = None


@dataclass(frozen=True, slots=True)
class ArchiveGaps:
    """The audit record's gaps: all streams' ``total`` and ``by_stream`` (stream name ->
    ``GapCounts``, only streams with a gap). Any gap means the record is incomplete for its
    period."""

    total: GapCounts
    by_stream: dict[str, GapCounts] = field(default_factory=dict)


def read_gaps(engine: Engine) -> ArchiveGaps:
    """The gaps the audit store records (``audit_archive_gaps``), counted per stream. Raises
    ``AuditStoreNotReady`` when the schema is not current, SQLAlchemy's errors when the
    database cannot be read."""
    require_current(engine)
    t = schema.gaps
    query = select(
        t.c.stream,
        func.count().label("gaps"),
        func.count(t.c.missing).label("known"),
        func.coalesce(func.sum(t.c.missing), 0).label("missing"),
        func.max(t.c.found_ms).label("found_ms"),
    ).group_by(t.c.stream)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    by_stream: dict[str, GapCounts] = {}
    found: list[int] = []
    for row in sorted(rows, key=lambda r: str(r["stream"])):
        gaps = int(row["gaps"])
        by_stream[str(row["stream"])] = GapCounts(
            gaps=gaps,
            missing=int(row["missing"]),  # PostgreSQL's SUM of a BIGINT is a NUMERIC
            unknown_size=gaps - int(row["known"]),
            latest_found=iso_utc(int(row["found_ms"])),
        )
        found.append(int(row["found_ms"]))
    counts = by_stream.values()
    total = GapCounts(
        gaps=sum(c.gaps for c in counts),
        missing=sum(c.missing for c in counts),
        unknown_size=sum(c.unknown_size for c in counts),
        latest_found=iso_utc(max(found)) if found else None,
    )
    return ArchiveGaps(total, by_stream)


async def read_store_gaps(database_url: str) -> ArchiveGaps:
    """``read_gaps`` of the audit store at ``database_url``, opened read-only
    (``create=False``: a SQLite file that is not there is not created) in a worker thread.
    Raises ``AuditStoreNotReady``, SQLAlchemy's errors or ``OSError``."""

    def read() -> ArchiveGaps:
        engine = open_engine(database_url, create=False)
        try:
            return read_gaps(engine)
        finally:
            engine.dispose()

    return await asyncio.to_thread(read)
