"""Export: every audit record of a time range, as one table for a regulator or a lawyer.

The three record tables, the archive's gaps and the retention purges become rows of the same
``COLUMNS`` (``kind``: ``event``, ``rejection``, ``application``, ``gap``, ``purge``), read by
one ``UNION ALL`` query ordered by the row's time (``at_ms``: an event's or a refusal's
receipt, an application's settling, the start of a gap's period, a purge's cutoff clipped into
the range; UTC ms), then kind (event, rejection, application, gap, purge: received before
applied), then stream entry id. A gap (``audit_archive_gaps``: stream entries lost before the
archive copied them) concerns every number, so it is exported with ``number`` too: a reader
must see that the record is incomplete for that period. So does a purge (``audit_purges``):
every purge whose cutoff is after the range's start is exported, since it deleted records of
the range or before it, and a reader must see that records were purged, not never there. The
query
is streamed (``stream_results``, ``yield_per``: a server-side cursor on PostgreSQL), so an
export of millions of rows holds one batch in memory.

Every cell is text; a time is RFC 3339 UTC with milliseconds (``dnc.timestamps.iso_utc``),
a missing value an empty string. Numbers are full E.164, exactly as stored. CSV cells that a
spreadsheet would run as a formula are neutralised (``dnc.audit.export_format``); JSON
Lines stays exact.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Engine,
    Integer,
    RowMapping,
    Select,
    String,
    Table,
    Text,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)

from dnc.audit import schema
from dnc.audit.database import require_current
from dnc.audit.export_format import Row, compact, time_text
from dnc.audit.export_notes import (
    KINDS,
    gap_row,
    gaps_select,
    purge_row,
    purges_select,
    text_literal,
)
from dnc.timestamps import iso_utc


def count_rows(engine: Engine, since_ms: int, until_ms: int, number: str | None = None) -> int:
    """How many rows ``export_rows`` gives for the same arguments (UTC ms, E.164).

    Raises ``AuditStoreNotReady`` when the schema is not current, SQLAlchemy's errors when
    the database cannot be read."""
    require_current(engine)
    records = _records(since_ms, until_ms, number).subquery("records")
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(records)).scalar_one())


def export_rows(
    engine: Engine,
    since_ms: int,
    until_ms: int,
    number: str | None = None,
    *,
    batch: int = 1_000,
) -> Generator[Row, None, None]:
    """The audit rows with ``since_ms <= at_ms < until_ms`` (UTC ms), of ``number`` (E.164)
    only when given, in export order, fetched ``batch`` at a time as the iterator is read.

    The schema is checked now (raises ``AuditStoreNotReady``); the query runs at the first
    ``next()`` and holds a connection until the iterator is exhausted or closed (close it, or
    read it in a ``with contextlib.closing(...)``, when stopping early). Reading raises
    SQLAlchemy's errors when the database fails."""
    require_current(engine)
    return _stream(engine, since_ms, until_ms, number, batch)


def _stream(
    engine: Engine, since_ms: int, until_ms: int, number: str | None, batch: int
) -> Generator[Row, None, None]:
    records = _records(since_ms, until_ms, number).subquery("records")
    query = select(records).order_by(
        records.c.at_ms,
        records.c.kind_order,
        records.c.stream,
        records.c.stream_ms,
        records.c.stream_seq,
    )
    with (
        engine.connect() as connection,
        connection.execution_options(stream_results=True, yield_per=batch).execute(query) as result,
    ):  # closing the result closes PostgreSQL's server-side cursor, also on an early stop
        for record in result.mappings():
            yield _row(record)


def _records(since_ms: int, until_ms: int, number: str | None) -> CompoundSelect[Any]:
    """The three tables, the gaps and the purges as one ``UNION ALL`` of the same labelled
    columns; a gap or a purge is never left out for ``number`` (it concerns every number)."""
    parts = [_events(), _rejections(), _applications()]
    filtered = [_within(part, table, at, since_ms, until_ms, number) for part, table, at in parts]
    gaps, _, at = gaps_select()
    purges, purge_table, purge_at = purges_select(since_ms, until_ms)
    return union_all(
        *filtered,
        _within(gaps, schema.gaps, at, since_ms, until_ms, None),
        _within(
            purges.where(purge_table.c.cutoff_ms > since_ms),
            purge_table,
            purge_at,
            since_ms,
            until_ms,
            None,
        ),
    )


def _within(
    query: Select[Any],
    table: Table,
    at: ColumnElement[int],
    since_ms: int,
    until_ms: int,
    number: str | None,
) -> Select[Any]:
    query = query.where(at >= since_ms, at < until_ms)
    return query if number is None else query.where(table.c.number == number)


def _events() -> tuple[Select[Any], Table, ColumnElement[int]]:
    t = schema.events
    query = select(
        literal(KINDS[0], String).label("kind"),
        literal(0, Integer).label("kind_order"),
        t.c.received_ms.label("at_ms"),
        t.c.number,
        t.c.action,
        cast(t.c.status, Text).label("status"),
        t.c.event_id,
        t.c.event_ms,
        t.c.expires_ms,
        text_literal("").label("result"),
        cast(null(), Integer).label("http_status"),
        text_literal(None).label("record_id"),
        text_literal("").label("reason"),
        text_literal("").label("flow_run_id"),
        text_literal("").label("adapter"),
        text_literal("").label("stream"),
        t.c.stream_ms,
        t.c.stream_seq,
        cast(t.c.sender, Text).label("source"),
        t.c.event.label("raw"),
    )
    return query, t, t.c.received_ms


def _rejections() -> tuple[Select[Any], Table, ColumnElement[int]]:
    t = schema.rejections
    query = select(
        literal(KINDS[1], String).label("kind"),
        literal(1, Integer).label("kind_order"),
        t.c.received_ms.label("at_ms"),
        t.c.number,
        text_literal("").label("action"),
        cast(t.c.status, Text).label("status"),
        text_literal("").label("event_id"),
        cast(null(), BigInteger).label("event_ms"),
        cast(null(), BigInteger).label("expires_ms"),
        text_literal("").label("result"),
        t.c.status.label("http_status"),
        text_literal(None).label("record_id"),
        cast(t.c.error, Text).label("reason"),  # with the detail from ``raw``: ``_reason``
        text_literal("").label("flow_run_id"),
        text_literal("").label("adapter"),
        cast(t.c.stream, Text).label("stream"),
        t.c.stream_ms,
        t.c.stream_seq,
        cast(t.c.source, Text).label("source"),
        cast(t.c.fields, Text).label("raw"),
    )
    return query, t, t.c.received_ms


def _applications() -> tuple[Select[Any], Table, ColumnElement[int]]:
    t = schema.applications
    query = select(
        literal(KINDS[2], String).label("kind"),
        literal(2, Integer).label("kind_order"),
        t.c.settled_ms.label("at_ms"),
        t.c.number,
        t.c.action,
        cast(t.c.outcome, Text).label("status"),
        t.c.event_id,
        t.c.event_ms,
        t.c.expires_ms,
        cast(t.c.result, Text).label("result"),
        t.c.http_status,
        cast(t.c.record_id, Text).label("record_id"),
        t.c.reason,
        cast(t.c.flow_run_id, Text).label("flow_run_id"),
        cast(t.c.adapter, Text).label("adapter"),
        text_literal("").label("stream"),
        t.c.stream_ms,
        t.c.stream_seq,
        text_literal("").label("source"),
        text_literal("").label("raw"),
    )
    return query, t, t.c.settled_ms


def _row(record: RowMapping) -> Row:
    """A database record of ``_records`` -> an exported row."""
    if record["kind"] == KINDS[3]:
        return gap_row(record)
    if record["kind"] == KINDS[4]:
        return purge_row(record)
    entry_id = f"{record['stream_ms']}-{record['stream_seq']}"
    stream = record["stream"] or ""
    kind = str(record["kind"])
    return {
        "kind": kind,
        "at": iso_utc(record["at_ms"]),
        "at_ms": str(record["at_ms"]),
        "number": record["number"] or "",
        "action": record["action"] or "",
        "status": record["status"] or "",
        "event_id": record["event_id"] or "",
        "event_at": time_text(record["event_ms"]),
        "expires_at": time_text(record["expires_ms"]),
        "result": record["result"] or "",
        "http_status": "" if record["http_status"] is None else str(record["http_status"]),
        "record_id": record["record_id"] or "",
        "reason": _reason(kind, record["reason"] or "", record["raw"] or ""),
        "flow_run_id": record["flow_run_id"] or "",
        "adapter": record["adapter"] or "",
        "stream_id": f"{stream}:{entry_id}" if stream else entry_id,
        "source": record["source"] or "",
        "raw": record["raw"] or "",
    }


def _reason(kind: str, reason: str, raw: str) -> str:
    """A refusal's ``error: detail`` (``detail`` from its fields); any other row's reason as
    stored."""
    if kind != "rejection":
        return reason
    detail = _detail(raw)
    return f"{reason}: {detail}" if detail else reason


def _detail(raw: str) -> str:
    """The ``detail`` field of a refusal's fields JSON: a JSON string unquoted, other JSON
    compact, unreadable JSON as written; empty when there is none."""
    try:
        fields = json.loads(raw)
    except ValueError:
        return ""
    text = fields.get("detail") if isinstance(fields, dict) else None
    if not isinstance(text, str) or not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else compact(value)
