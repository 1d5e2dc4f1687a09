"""Stream entry -> audit row: pure functions, one per stream.

Entries are read leniently: an archive must copy every entry, so a field that is missing or
unreadable becomes an empty or NULL column, never a skipped entry (the raw text is kept:
``event`` / ``fields``). Entry ids are ``"<ms>-<seq>"`` (Redis stream ids); times are UTC ms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from dnc.e164 import PhoneNumberProblem, to_e164

Fields = Mapping[str, str]
"""A stream entry's fields, decoded to text."""

Normalise = Callable[[str], str | None]
"""Number as written -> E.164, or ``None`` when it cannot be read."""


def split_id(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``. Raises ``ValueError`` otherwise."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    """The smallest stream id after ``entry_id`` (the ``MINID`` that trims through it)."""
    ms, seq = split_id(entry_id)
    return f"{ms}-{seq + 1}"


def normaliser(region: str | None) -> Normalise:
    """Read numbers like intake does (``dnc.e164.to_e164``, numbers without a country code in
    ``region``, unverified ones kept); ``None`` for text that is no number."""

    def normalise(raw: str) -> str | None:
        try:
            return to_e164(raw, region, allow_unverified=True).e164
        except PhoneNumberProblem:
            return None

    return normalise


def event_row(entry_id: str, fields: Fields) -> dict[str, Any]:
    """An ``audit_events`` row from an audit-stream entry (``status``, ``event`` JSON)."""
    ms, seq = split_id(entry_id)
    raw = fields.get("event", "")
    event = _json_object(raw)
    return {
        "stream_ms": ms,
        "stream_seq": seq,
        "status": fields.get("status", "")[:16],
        "number": str(event.get("e164", ""))[:32],
        "action": str(event.get("action", ""))[:8],
        "event_id": str(event.get("eventId", ""))[:512],
        "event_ms": _int(event.get("eventMs")) or 0,
        "received_ms": _int(event.get("receivedMs")) or ms,
        "expires_ms": _int(event.get("expiresMs")),
        "sender": None if event.get("sender") is None else str(event["sender"])[:64],
        "event": raw,
    }


def rejection_row(
    stream: str, entry_id: str, fields: Fields, normalise: Normalise
) -> dict[str, Any]:
    """An ``audit_rejections`` row from a rejected-stream entry; ``stream``: ``rejected`` or
    ``unauthenticated``; the number as sent (``phoneNumber``) read through ``normalise``."""
    ms, seq = split_id(entry_id)
    sent = fields.get("phoneNumber", "")
    return {
        "stream": stream,
        "stream_ms": ms,
        "stream_seq": seq,
        "received_ms": _int(fields.get("receivedMs")) or ms,
        "status": _int(fields.get("status")) or 0,
        "error": fields.get("error", "")[:64],
        "number": normalise(sent) if sent else None,
        "source": (fields.get("sender") or fields.get("source") or "receiver")[:16],
        "fields": json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")),
    }


def application_row(entry_id: str, fields: Fields) -> dict[str, Any]:
    """An ``audit_applications`` row from an applications-stream entry (``outcome``,
    ``settledMs``, ``application`` JSON: ``dnc.applications.ApplicationRecord``)."""
    ms, seq = split_id(entry_id)
    app = _json_object(fields.get("application", ""))
    status = _int(app.get("httpStatus"))
    record_id = app.get("recordId")
    return {
        "stream_ms": ms,
        "stream_seq": seq,
        "number": str(app.get("number", ""))[:32],
        "action": str(app.get("action", ""))[:8],
        "event_id": str(app.get("eventId", ""))[:512],
        "event_ms": _int(app.get("eventMs")) or 0,
        "received_ms": _int(app.get("receivedMs")) or 0,
        "expires_ms": _int(app.get("expiresMs")),
        "requested_ms": _int(app.get("requestedAtMs")) or 0,
        "settled_ms": _int(fields.get("settledMs")) or ms,
        "outcome": fields.get("outcome", "")[:16],
        "result": str(app.get("result", ""))[:32],
        "reason": str(app.get("reason", "")),
        "http_status": status,
        "record_id": None if record_id is None else str(record_id)[:256],
        "adapter": str(app.get("adapter", ""))[:32],
        "flow_run_id": str(app.get("flowRunId", ""))[:128],
    }


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def storable(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as every supported database takes it: a NUL character (which PostgreSQL's text
    refuses; CXone's words or a hand-written entry may hold one) written as ``\\x00`` in the
    decoded columns (the raw JSON columns escape it already, losslessly), and an integer out
    of its column's range as NULL (the raw JSON keeps it). One unstorable entry would
    otherwise stop its whole stream from being archived."""
    clean: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, str) and "\x00" in value:
            value = value.replace("\x00", "\\x00")
        elif isinstance(value, int) and not _fits(name, value):
            value = None if name in _NULLABLE_INTS else 0
        clean[name] = value
    return clean


_INT32 = frozenset({"status", "http_status"})
"""Columns of type INTEGER (the others are BIGINT)."""
_NULLABLE_INTS = frozenset({"expires_ms", "http_status"})


def _fits(name: str, value: int) -> bool:
    limit: int = 2**31 if name in _INT32 else 2**63
    return -limit <= value < limit


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
