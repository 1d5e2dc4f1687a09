"""Where the audit store's record is incomplete: the archive's gaps (entries lost before they
were copied) and the retention purges' cutoff."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from dnc.audit import schema
from dnc.timestamps import iso_utc


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
