"""The rejected-stream entry of a refused import row: the receiver's shape, numbers masked."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from dnc.errors import FieldProblem
from dnc.masking import mask_number, redact
from dnc.target import LATEST_MS
from dnc.timestamps import TimestampProblem, parse_event_time
from dnc_sync.csv_rows import PHONE
from dnc_sync.import_judging import IMPORT_SENDER


def rejection_entry(
    source: str,
    row: int,
    fields: Mapping[str, str],
    problems: Sequence[FieldProblem],
    now_ms: int,
) -> dict[str, str]:
    """The rejected-stream entry of a refused row, in the receiver's shape (``status``,
    ``error``, ``detail``: problems as JSON, ``receivedMs``: UTC ms, ``body``) plus ``source``
    (``import``), ``file``, ``row`` and ``phoneNumber`` (as written, for the audit store's
    per-number lookup). The body holds the row's fields with the phone number masked to its
    last 4 digits, and digit runs masked in the others (ISO 8601 times excepted:
    a misaligned column may put a number anywhere)."""
    body = {
        name: mask_number(value) if name == PHONE else _stream_value(value)
        for name, value in fields.items()
    }
    reused = any(p.field == "eventId" for p in problems)
    return {
        "status": "409" if reused else "422",
        "error": "id_conflict" if reused else "invalid_event",
        "detail": json.dumps([p.as_dict() for p in problems], separators=(",", ":")),
        "source": "import",
        "file": source[:256],
        "row": str(row),
        "receivedMs": str(now_ms),
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "bodyTruncated": "false",
        "phoneNumber": fields.get(PHONE, "")[:64],  # for the audit store's per-number lookup
        "sender": IMPORT_SENDER,
    }


def _stream_value(value: str) -> str:
    if not value.isdigit():
        try:
            parse_event_time(value, LATEST_MS, 0)
            return value[:64]
        except TimestampProblem:
            pass
    return redact(value, 64)
