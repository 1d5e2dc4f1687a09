"""One number's timeline in the audit store: its rows of the three record tables, merged.

Events by ``received_ms``, rejections by ``received_ms``, CXone applications by
``settled_ms`` (UTC ms), newest first in each query so the ``(number, time)`` indexes answer
it, then oldest first for the reader. Full numbers: read by the operator who asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, select

from dnc.audit import schema
from dnc.audit.database import require_current
from dnc.timestamps import iso_utc

DEFAULT_LIMIT = 200
"""Timeline entries returned unless asked otherwise."""

_KIND_ORDER = {"event": 0, "rejection": 1, "application": 2}


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
        return timeline_entries(connection, e164, limit)[0]


def last_application(engine: Engine, e164: str) -> dict[str, Any] | None:
    """The newest ``audit_applications`` row of ``e164`` (by ``settled_ms``, UTC ms) as a dict
    of its columns, ``None`` when CXone was never asked about it. Raises as ``timeline``."""
    require_current(engine)
    with engine.connect() as connection:
        return last_application_row(connection, e164)


def timeline_entries(
    connection: Connection, e164: str, limit: int
) -> tuple[list[TimelineEntry], bool]:
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


def last_application_row(connection: Connection, e164: str) -> dict[str, Any] | None:
    """``last_application`` on an open ``connection``."""
    rows = _newest(connection, schema.applications, "settled_ms", e164, 1)
    return rows[0] if rows else None


def _event_entry(row: dict[str, Any]) -> TimelineEntry:
    event = parse_json(row["event"])
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
    fields = parse_json(row["fields"])
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
    parsed = parse_json(detail) if isinstance(detail, str) else detail
    if isinstance(parsed, list):
        return "; ".join(
            f"{p.get('field', '?')}: {p.get('message') or p.get('reason', '?')}"
            for p in parsed
            if isinstance(p, dict)
        )
    return "" if parsed is None else str(parsed)


def parse_json(raw: object) -> Any:
    """``raw`` JSON text parsed; the text itself when it is not JSON (kept, never dropped)."""
    if not isinstance(raw, str | bytes):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
