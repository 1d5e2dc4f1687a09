"""The export's notes on what the record lacks: the archive's gaps (stream entries lost
before they were archived) and the retention purges, as rows of the export's union
(``dnc.audit.export``). Both concern every number, so a per-number export keeps them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FunctionElement,
    Integer,
    RowMapping,
    Select,
    String,
    Table,
    Text,
    case,
    cast,
    literal,
    null,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from dnc.audit import schema
from dnc.audit.export_format import COLUMNS, Row
from dnc.timestamps import iso_utc

KINDS = ("event", "rejection", "application", "gap", "purge")
"""The kinds of exported rows, in the order of a tie on ``at_ms``."""


def text_literal(value: str | None) -> ColumnElement[str]:
    """SQL: ``value`` as TEXT (NULL for ``None``), for the union's labelled columns."""
    return literal(value, Text) if value is not None else cast(null(), Text)


def gaps_select() -> tuple[Select[Any], Table, ColumnElement[int]]:
    """The gaps, their ids and size carried in columns the other kinds use otherwise
    (``event_id``: ``after_id``, ``record_id``: ``through_id``, ``expires_ms``: ``missing``),
    made into a row by ``gap_row``."""
    t = schema.gaps
    at = gap_start_ms(t.c.after_id, t.c.through_id, t.c.found_ms)
    query = select(
        literal(KINDS[3], String).label("kind"),
        literal(3, Integer).label("kind_order"),
        at.label("at_ms"),
        text_literal(None).label("number"),
        text_literal("").label("action"),
        text_literal("lost").label("status"),
        cast(t.c.after_id, Text).label("event_id"),
        cast(null(), BigInteger).label("event_ms"),
        t.c.missing.label("expires_ms"),
        text_literal("").label("result"),
        cast(null(), Integer).label("http_status"),
        cast(t.c.through_id, Text).label("record_id"),
        text_literal("").label("reason"),
        text_literal("").label("flow_run_id"),
        text_literal("").label("adapter"),
        cast(t.c.stream, Text).label("stream"),
        at.label("stream_ms"),
        cast(t.c.id, BigInteger).label("stream_seq"),
        text_literal("").label("source"),
        text_literal("").label("raw"),
    )
    return query, t, at


def purges_select(since_ms: int, until_ms: int) -> tuple[Select[Any], Table, ColumnElement[int]]:
    """The purges, their times, counts and retention carried in columns the other kinds use
    otherwise (``event_ms``: ``purged_ms``, ``expires_ms``: ``cutoff_ms``, ``http_status``:
    ``retention_days``, ``event_id``: ``events``, ``record_id``: ``rejections``, ``result``:
    ``applications``), made into a row by ``purge_row``; ``at_ms``: the cutoff clipped into
    ``[since_ms, until_ms - 1]``."""
    t = schema.purges
    at = case(
        (t.c.cutoff_ms < since_ms, literal(since_ms, BigInteger)),
        (t.c.cutoff_ms > until_ms - 1, literal(until_ms - 1, BigInteger)),
        else_=t.c.cutoff_ms,
    )
    query = select(
        literal(KINDS[4], String).label("kind"),
        literal(4, Integer).label("kind_order"),
        at.label("at_ms"),
        text_literal(None).label("number"),
        text_literal("").label("action"),
        text_literal("purged").label("status"),
        cast(t.c.events, Text).label("event_id"),
        t.c.purged_ms.label("event_ms"),
        t.c.cutoff_ms.label("expires_ms"),
        cast(t.c.applications, Text).label("result"),
        t.c.retention_days.label("http_status"),
        cast(t.c.rejections, Text).label("record_id"),
        text_literal("").label("reason"),
        cast(t.c.flow_run_id, Text).label("flow_run_id"),
        text_literal("").label("adapter"),
        text_literal("purge").label("stream"),
        at.label("stream_ms"),
        cast(t.c.id, BigInteger).label("stream_seq"),
        text_literal("").label("source"),
        text_literal("").label("raw"),
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


def gap_row(record: RowMapping) -> Row:
    """A gap's record (``gaps_select``) -> an exported row: ``lost``, the reason and the ids."""
    stream, after, through = record["stream"], record["event_id"], record["record_id"]
    missing = record["expires_ms"]
    count = "an unknown number of" if missing is None else str(missing)
    ids = f"ids after {after} up to {through}"
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        kind=KINDS[3],
        at=iso_utc(record["at_ms"]),
        at_ms=str(record["at_ms"]),
        status="lost",
        reason=f"{count} {stream} entries lost before archiving, {ids}",
        stream_id=f"{stream}:{after}..{through}",
    )
    return row


def purge_row(record: RowMapping) -> Row:
    """A purge's record (``purges_select``) -> an exported row: ``purged``, what was
    deleted, when."""
    counts = (
        f"{record['event_id']} events, {record['record_id']} refusals, "
        f"{record['result']} CXone applications"
    )
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        kind=KINDS[4],
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
