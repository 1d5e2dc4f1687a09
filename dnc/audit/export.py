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
spreadsheet would run as a formula are neutralised (``csv_cell``); JSON Lines stays exact.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Generator, Iterable, Mapping
from typing import Any, TextIO

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Engine,
    FunctionElement,
    Integer,
    RowMapping,
    Select,
    String,
    Table,
    Text,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from dnc.audit import schema
from dnc.audit.database import require_current
from dnc.timestamps import iso_utc

COLUMNS = (
    "kind",
    "at",
    "at_ms",
    "number",
    "action",
    "status",
    "event_id",
    "event_at",
    "expires_at",
    "result",
    "http_status",
    "record_id",
    "reason",
    "flow_run_id",
    "adapter",
    "stream_id",
    "source",
    "raw",
)
"""The columns of every exported row, in order:

``kind`` (``event``, ``rejection``, ``application``, ``gap``, ``purge``); ``at`` / ``at_ms``
(the row's time: RFC 3339 UTC / UTC ms; a gap: the time part of the last id archived before
it, the start of the period whose records may be missing; a purge: its cutoff, clipped into
the exported range); ``number`` (E.164; empty for a refusal whose number could not be read,
for a gap and for a purge); ``action`` (``optIn``, ``optOut``; empty for a refusal, a gap and
a purge); ``status`` (event: ``queued``, ``superseded``, ``duplicate``; rejection: the HTTP
status answered; application: the outcome, ``acknowledged``, ``dead_lettered``,
``deferred``, ...; gap: ``lost``; purge: ``purged``); ``event_id``;
``event_at`` (the event's time, RFC 3339 UTC, empty when unknown); ``expires_at`` (an
opt-out's expiry, empty: never); ``result`` (application: CXone's per-record result);
``http_status`` (rejection: the receiver's answer; application: CXone's, empty if none);
``record_id`` (application: CXone's record id); ``reason`` (rejection: ``error: detail``;
application: the reason; gap: ``<n> <stream> entries lost before archiving, ids after
<after_id> up to <through_id>``, ``an unknown number of`` for ``<n>`` when not known;
purge: ``<events> events, <rejections> refusals, <applications> CXone applications received
before <cutoff> were purged on <purged> (retention <days> days; each number's current state
kept)``, times RFC 3339 UTC); ``flow_run_id`` (application, purge: the run that purged) and
``adapter`` (application); ``stream_id`` (the Redis stream entry id
``<ms>-<seq>``, prefixed with the stream for a refusal: ``rejected:<ms>-<seq>``,
``unauthenticated:<ms>-<seq>``; a gap: ``<stream>:<after_id>..<through_id>``; a purge:
``purge:<id>``); ``source``
(who sent it: event and rejection, ``bearer-<n>``/``hmac-<n>`` (the credential's position,
never the secret), ``unknown``, ``import``; a refusal before authentication: ``receiver``);
``raw`` (event: the recorded event's JSON; rejection: every field of the stream entry as
JSON; application, gap and purge: empty). A gap's and a purge's other columns are empty."""

Row = dict[str, str]
"""One exported row: ``COLUMNS`` -> text, keys in ``COLUMNS`` order."""

_KINDS = ("event", "rejection", "application", "gap", "purge")  # also the order of a tie on at_ms
_FORMULA_STARTS = frozenset("=+-@\t\r")


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
    gaps, _, at = _gaps()
    purges, purge_table, purge_at = _purges(since_ms, until_ms)
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


def _text(value: str | None) -> ColumnElement[str]:
    return literal(value, Text) if value is not None else cast(null(), Text)


def _events() -> tuple[Select[Any], Table, ColumnElement[int]]:
    t = schema.events
    query = select(
        literal(_KINDS[0], String).label("kind"),
        literal(0, Integer).label("kind_order"),
        t.c.received_ms.label("at_ms"),
        t.c.number,
        t.c.action,
        cast(t.c.status, Text).label("status"),
        t.c.event_id,
        t.c.event_ms,
        t.c.expires_ms,
        _text("").label("result"),
        cast(null(), Integer).label("http_status"),
        _text(None).label("record_id"),
        _text("").label("reason"),
        _text("").label("flow_run_id"),
        _text("").label("adapter"),
        _text("").label("stream"),
        t.c.stream_ms,
        t.c.stream_seq,
        cast(t.c.sender, Text).label("source"),
        t.c.event.label("raw"),
    )
    return query, t, t.c.received_ms


def _rejections() -> tuple[Select[Any], Table, ColumnElement[int]]:
    t = schema.rejections
    query = select(
        literal(_KINDS[1], String).label("kind"),
        literal(1, Integer).label("kind_order"),
        t.c.received_ms.label("at_ms"),
        t.c.number,
        _text("").label("action"),
        cast(t.c.status, Text).label("status"),
        _text("").label("event_id"),
        cast(null(), BigInteger).label("event_ms"),
        cast(null(), BigInteger).label("expires_ms"),
        _text("").label("result"),
        t.c.status.label("http_status"),
        _text(None).label("record_id"),
        cast(t.c.error, Text).label("reason"),  # with the detail from ``raw``: ``_reason``
        _text("").label("flow_run_id"),
        _text("").label("adapter"),
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
        literal(_KINDS[2], String).label("kind"),
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
        _text("").label("stream"),
        t.c.stream_ms,
        t.c.stream_seq,
        _text("").label("source"),
        _text("").label("raw"),
    )
    return query, t, t.c.settled_ms


def _gaps() -> tuple[Select[Any], Table, ColumnElement[int]]:
    """The gaps, their ids and size carried in columns the other kinds use otherwise
    (``event_id``: ``after_id``, ``record_id``: ``through_id``, ``expires_ms``: ``missing``),
    made into a row by ``_gap_row``."""
    t = schema.gaps
    at = gap_start_ms(t.c.after_id, t.c.through_id, t.c.found_ms)
    query = select(
        literal(_KINDS[3], String).label("kind"),
        literal(3, Integer).label("kind_order"),
        at.label("at_ms"),
        _text(None).label("number"),
        _text("").label("action"),
        _text("lost").label("status"),
        cast(t.c.after_id, Text).label("event_id"),
        cast(null(), BigInteger).label("event_ms"),
        t.c.missing.label("expires_ms"),
        _text("").label("result"),
        cast(null(), Integer).label("http_status"),
        cast(t.c.through_id, Text).label("record_id"),
        _text("").label("reason"),
        _text("").label("flow_run_id"),
        _text("").label("adapter"),
        cast(t.c.stream, Text).label("stream"),
        at.label("stream_ms"),
        cast(t.c.id, BigInteger).label("stream_seq"),
        _text("").label("source"),
        _text("").label("raw"),
    )
    return query, t, at


def _purges(since_ms: int, until_ms: int) -> tuple[Select[Any], Table, ColumnElement[int]]:
    """The purges, their times, counts and retention carried in columns the other kinds use
    otherwise (``event_ms``: ``purged_ms``, ``expires_ms``: ``cutoff_ms``, ``http_status``:
    ``retention_days``, ``event_id``: ``events``, ``record_id``: ``rejections``, ``result``:
    ``applications``), made into a row by ``_purge_row``; ``at_ms``: the cutoff clipped into
    ``[since_ms, until_ms - 1]``."""
    t = schema.purges
    at = case(
        (t.c.cutoff_ms < since_ms, literal(since_ms, BigInteger)),
        (t.c.cutoff_ms > until_ms - 1, literal(until_ms - 1, BigInteger)),
        else_=t.c.cutoff_ms,
    )
    query = select(
        literal(_KINDS[4], String).label("kind"),
        literal(4, Integer).label("kind_order"),
        at.label("at_ms"),
        _text(None).label("number"),
        _text("").label("action"),
        _text("purged").label("status"),
        cast(t.c.events, Text).label("event_id"),
        t.c.purged_ms.label("event_ms"),
        t.c.cutoff_ms.label("expires_ms"),
        cast(t.c.applications, Text).label("result"),
        t.c.retention_days.label("http_status"),
        cast(t.c.rejections, Text).label("record_id"),
        _text("").label("reason"),
        cast(t.c.flow_run_id, Text).label("flow_run_id"),
        _text("").label("adapter"),
        _text("purge").label("stream"),
        at.label("stream_ms"),
        cast(t.c.id, BigInteger).label("stream_seq"),
        _text("").label("source"),
        _text("").label("raw"),
    )
    return query, t, at


def gap_start_ms(
    after_id: ColumnElement[str], through_id: ColumnElement[str], found_ms: ColumnElement[int]
) -> ColumnElement[int]:
    """SQL: when a gap's period starts (UTC ms): the time part of ``after_id`` (the last
    entry archived before it), of ``through_id`` when nothing was archived before (``0-0``),
    else (no entry id either: a deleted stream) ``found_ms``."""
    return case(
        (after_id != "0-0", _IdMs(after_id)),
        (through_id.like("%_-_%"), _IdMs(through_id)),
        else_=found_ms,
    )


class _IdMs(FunctionElement[int]):
    """SQL: the ``<ms>`` part of a stream entry id ``<ms>-<seq>``, as a BIGINT."""

    type = BigInteger()
    inherit_cache = True
    name = "id_ms"


@compiles(_IdMs)
def _id_ms_sqlite(element: _IdMs, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"CAST(substr({text}, 1, instr({text}, '-') - 1) AS INTEGER)"


@compiles(_IdMs, "postgresql")
def _id_ms_postgresql(element: _IdMs, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(split_part({compiler.process(element.clauses, **kw)}, '-', 1) AS BIGINT)"


def _row(record: RowMapping) -> Row:
    """A database record of ``_records`` -> an exported row."""
    if record["kind"] == _KINDS[3]:
        return _gap_row(record)
    if record["kind"] == _KINDS[4]:
        return _purge_row(record)
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
        "event_at": _time(record["event_ms"]),
        "expires_at": _time(record["expires_ms"]),
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


def _gap_row(record: RowMapping) -> Row:
    """A gap's record (``_gaps``) -> an exported row: ``lost``, the reason and the ids."""
    stream, after, through = record["stream"], record["event_id"], record["record_id"]
    missing = record["expires_ms"]
    count = "an unknown number of" if missing is None else str(missing)
    ids = f"ids after {after} up to {through}"
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        kind=_KINDS[3],
        at=iso_utc(record["at_ms"]),
        at_ms=str(record["at_ms"]),
        status="lost",
        reason=f"{count} {stream} entries lost before archiving, {ids}",
        stream_id=f"{stream}:{after}..{through}",
    )
    return row


def _purge_row(record: RowMapping) -> Row:
    """A purge's record (``_purges``) -> an exported row: ``purged``, what was deleted, when."""
    counts = (
        f"{record['event_id']} events, {record['record_id']} refusals, "
        f"{record['result']} CXone applications"
    )
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        kind=_KINDS[4],
        at=iso_utc(record["at_ms"]),
        at_ms=str(record["at_ms"]),
        status="purged",
        reason=f"{counts} received before {iso_utc(record['expires_ms'])} were purged on "
        f"{iso_utc(record['event_ms'])} (retention {record['http_status']} days; each "
        "number's current state kept)",
        flow_run_id=record["flow_run_id"] or "",
        stream_id=f"purge:{record['stream_seq']}",
    )
    return row


def _time(ms: int | None) -> str:
    """RFC 3339 UTC of ``ms``; empty for none, and for 0 (an archived entry whose time could
    not be read: ``dnc.audit.entries``)."""
    return iso_utc(ms) if ms else ""


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
    return value if isinstance(value, str) else _compact(value)


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs as a formula (CSV injection, OWASP): a cell
    starting with ``=``, ``@``, a tab or a carriage return, or with ``+`` or ``-`` not followed
    by digits only, gets a leading ``'``. E.164 numbers (``+12025550101``) and integers are
    kept exactly: a sign followed by digits alone is no formula."""
    if not text or text[0] not in _FORMULA_STARTS:
        return text
    if text[0] in "+-" and text[1:].isdecimal() and text[1:].isascii():
        return text
    return "'" + text


def write_csv(rows: Iterable[Mapping[str, str]], stream: TextIO) -> int:
    """Write a header of ``COLUMNS`` and ``rows`` to ``stream`` (opened with ``newline=""``)
    as CSV (RFC 4180: comma, ``"`` quoting where needed, CRLF), each cell through
    ``csv_cell``. Returns the rows written (without the header)."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    written = 0
    for row in rows:
        writer.writerow([csv_cell(row[column]) for column in COLUMNS])
        written += 1
    return written


def write_jsonl(rows: Iterable[Mapping[str, str]], stream: TextIO) -> int:
    """Write ``rows`` to ``stream`` as JSON Lines: one compact JSON object per line (UTF-8
    text, not escaped), keys in ``COLUMNS`` order, values exactly as exported. Returns the
    rows written."""
    written = 0
    for row in rows:
        stream.write(_compact({column: row[column] for column in COLUMNS}) + "\n")
        written += 1
    return written
