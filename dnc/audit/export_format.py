"""How an export is written: its columns, and CSV or JSON Lines (``dnc.audit.export`` reads
the rows). Every cell is text; CSV cells a spreadsheet would run as a formula are neutralised
(``csv_cell``); JSON Lines stays exact."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from typing import TextIO

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

_FORMULA_STARTS = frozenset("=+-@\t\r")


def time_text(ms: int | None) -> str:
    """RFC 3339 UTC of ``ms``; empty for none, and for 0 (an archived entry whose time could
    not be read: ``dnc.audit.entries``)."""
    return iso_utc(ms) if ms else ""


def compact(value: object) -> str:
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
        stream.write(compact({column: row[column] for column in COLUMNS}) + "\n")
        written += 1
    return written
