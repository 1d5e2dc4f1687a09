"""The four archived Redis streams of a namespace and how their entries are read.

``Stream``: a stream's short name (the archive cursor's key), its Redis key, its table and how
an entry becomes a row (``dnc.audit.entries``). Entries come from redis-py as bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from dnc.audit import schema
from dnc.audit.entries import Fields, Normalise, application_row, event_row, rejection_row
from dnc.keys import RedisKeys


@dataclass(frozen=True, slots=True)
class Stream:
    """One archived stream: its short ``name`` (the cursor's key), Redis ``key``, target
    ``table`` and how an entry becomes a row (``to_row(entry id, fields)``)."""

    name: str
    key: str
    table: Table
    to_row: Callable[[str, Fields], dict[str, Any]]


def streams(keys: RedisKeys, normalise: Normalise) -> list[Stream]:
    """The four archived streams of a namespace (``normalise`` reads a refused request's
    number as intake would)."""
    return [
        Stream("events", keys.audit, schema.events, event_row),
        Stream(
            "rejected",
            keys.rejected,
            schema.rejections,
            lambda i, f: rejection_row("rejected", i, f, normalise),
        ),
        Stream(
            "unauthenticated",
            keys.rejected_unauthenticated,
            schema.rejections,
            lambda i, f: rejection_row("unauthenticated", i, f, normalise),
        ),
        Stream("applications", keys.applications, schema.applications, application_row),
    ]


def decode_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    """A stream entry's fields as text (invalid UTF-8 replaced, never dropped)."""
    return {text(k): text(v) for k, v in fields.items()}


def text(value: object) -> str:
    """A Redis reply value as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
