"""Batch request bodies (``POST /v1/events:batch``): which content types, and how a body
becomes one field mapping per event.

Two forms: a JSON array of event objects (``application/json``), or NDJSON
(``application/x-ndjson`` or ``application/ndjson``: one event object per line, blank lines
ignored). Charsets and ``Content-Encoding`` are judged as for a single event
(``receiver.payload.media_type``). A body that is not one of these forms (not JSON, not an
array, an element or line that is not an object) is refused whole (``MalformedBody``, 400);
an event object that names a known field twice is refused alone (``BatchItem.duplicate``,
422), as a single event would be.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic_core import from_json, to_json

from receiver.payload import FIELDS, JSON, MalformedBody, UnsupportedMediaType, media_type

BATCH_PATH = "/v1/events:batch"
NDJSON = "application/x-ndjson"
NDJSON_TYPES = frozenset({NDJSON, "application/ndjson"})
NOT_JSON = "body is not valid JSON (or nests deeper or holds longer numbers than accepted)"
NOT_A_BATCH = "body must be a JSON array of event objects, or NDJSON (one object per line)"
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


class EmptyBatch(Exception):
    """The body holds no event (``[]``, or NDJSON of blank lines only): 422."""


class TooManyEvents(Exception):
    """The body holds ``count`` events, more than ``limit``: 413."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"batch has {count} events; at most {limit} per request")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One event of a batch: its ``fields`` (wire names), and ``duplicate``, the first known
    field its object names more than once (``None``: none)."""

    fields: dict[str, object]
    duplicate: str | None = None


@dataclass(slots=True)
class BatchBody:
    """A decoded batch: ``items`` in request order, and the text they came from (UTF-8)
    so that ``source(i)`` can give each event's own JSON for the audit excerpt."""

    items: list[BatchItem]
    _text: bytes
    _lines: list[bytes] | None = None
    _walked: tuple[str, list[tuple[int, int]]] | None = field(default=None, repr=False)

    def source(self, index: int) -> str:
        """The JSON of event ``index`` as sent (its NDJSON line, or its array element's
        text); the element re-serialised when the array cannot be walked element by
        element (a form only pydantic's parser reads)."""
        if self._lines is not None:
            return self._lines[index].decode("utf-8", "replace")
        if self._walked is None:
            self._walked = _element_spans(self._text)
        source, spans = self._walked
        if index < len(spans):
            start, end = spans[index]
            return source[start:end]
        return to_json(self.items[index].fields).decode()


def batch_media_type(
    content_type: bytes | None, content_encoding: bytes | None = None
) -> tuple[str, str]:
    """(``application/json`` or ``NDJSON``, codec name) of a batch request's headers.

    Raises ``UnsupportedMediaType`` for any other type (form included), an unknown charset or
    a content encoding, as ``receiver.payload.media_type`` does."""
    if not content_type:
        raise UnsupportedMediaType("Content-Type is missing")
    kind, sep, params = content_type.partition(b";")
    folded = kind.strip().lower().decode("latin-1")
    if folded in NDJSON_TYPES:
        _, charset = media_type(JSON.encode() + sep + params, content_encoding)
        return NDJSON, charset
    if folded != JSON:
        raise UnsupportedMediaType(
            f"Content-Type must be {JSON} or NDJSON ({' or '.join(sorted(NDJSON_TYPES))})"
        )
    return media_type(content_type, content_encoding)


def split_batch(kind: str, charset: str, body: bytes, max_events: int) -> BatchBody:
    """The events of ``body`` (``kind`` from ``batch_media_type``), at most ``max_events``.

    Raises ``MalformedBody`` (not the form ``kind`` says, or an element / line that is not a
    JSON object; the message names which), ``EmptyBatch`` or ``TooManyEvents``."""
    try:
        text = body if charset in ("utf-8", "utf8") else body.decode(charset).encode()
    except (ValueError, UnicodeError):
        raise MalformedBody(NOT_JSON) from None
    if kind == NDJSON:
        return _split_lines(text, max_events)
    try:
        value = from_json(text)
    except ValueError:
        raise MalformedBody(NOT_JSON) from None
    if not isinstance(value, list):
        raise MalformedBody(NOT_A_BATCH)
    _check_count(len(value), max_events)
    for index, element in enumerate(value):
        if not isinstance(element, dict):
            raise MalformedBody(f"element {index} of the array is not a JSON object")
    duplicates = _duplicates(text, value, lambda: _array_duplicates(text))
    items = [BatchItem(fields, duplicates.get(i)) for i, fields in enumerate(value)]
    return BatchBody(items, text)


def _check_count(count: int, max_events: int) -> None:
    if count == 0:
        raise EmptyBatch("the batch holds no event")
    if count > max_events:
        raise TooManyEvents(count, max_events)


def _split_lines(text: bytes, max_events: int) -> BatchBody:
    numbered = [
        (number, line.strip())
        for number, line in enumerate(text.split(b"\n"), start=1)
        if line.strip()
    ]
    _check_count(len(numbered), max_events)
    values: list[dict[str, object]] = []
    for number, line in numbered:
        try:
            value = from_json(line)
        except ValueError:
            raise MalformedBody(f"line {number} is not valid JSON") from None
        if not isinstance(value, dict):
            raise MalformedBody(f"line {number} is not a JSON object")
        values.append(value)
    lines = [line for _, line in numbered]

    def exact() -> dict[int, str]:
        found = {i: _object_duplicate(line) for i, line in enumerate(lines)}
        return {i: name for i, name in found.items() if name is not None}

    duplicates = _duplicates(text, values, exact)
    items = [BatchItem(fields, duplicates.get(i)) for i, fields in enumerate(values)]
    return BatchBody(items, text, lines)


def _duplicates(
    text: bytes, values: list[dict[str, object]], exact: Callable[[], dict[int, str]]
) -> dict[int, str]:
    """Event index -> a known field named twice in it. Cheap screen first (as
    ``receiver.payload``): when every ``"`` + white space + ``:`` of the body is a key of a
    parsed object, nothing was named twice; otherwise the exact, slower check."""
    if len(_KEY_END.findall(text)) == sum(_key_count(v) for v in values):
        return {}
    return exact()


def _key_count(value: object) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_key_count(item) for item in value.values())
    if isinstance(value, list):
        return sum(_key_count(item) for item in value)
    return 0


class _Pairs(dict[str, object]):
    """A JSON object that remembers the first known field it was given twice."""

    duplicate: str | None = None


def _keep_pairs(pairs: list[tuple[str, object]]) -> _Pairs:
    obj = _Pairs(pairs)
    if len(obj) < len(pairs):
        counts = Counter(name for name, _ in pairs)
        obj.duplicate = next((name for name in FIELDS if counts[name] > 1), None)
    return obj


def _object_duplicate(line: bytes) -> str | None:
    try:
        value = json.loads(line, object_pairs_hook=_keep_pairs)
    except (ValueError, RecursionError):
        return None  # pydantic's parser read it: judged on what it read
    return value.duplicate if isinstance(value, _Pairs) else None


def _array_duplicates(text: bytes) -> dict[int, str]:
    try:
        value = json.loads(text, object_pairs_hook=_keep_pairs)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(value, list):
        return {}
    return {
        i: element.duplicate
        for i, element in enumerate(value)
        if isinstance(element, _Pairs) and element.duplicate is not None
    }


def _element_spans(text: bytes) -> tuple[str, list[tuple[int, int]]]:
    """``text`` (a JSON array, UTF-8) as a string and the character offsets (start, end) of
    each of its elements; no offsets when the standard library's parser cannot walk it."""
    source = text.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    at = _skip(source, 0)
    if source[at : at + 1] != "[":
        return source, []
    at = _skip(source, at + 1)
    try:
        while source[at : at + 1] not in ("]", ""):
            _, end = decoder.raw_decode(source, at)
            spans.append((at, end))
            at = _skip(source, end)
            if source[at : at + 1] == ",":
                at = _skip(source, at + 1)
    except (ValueError, RecursionError):
        return source, []
    return source, spans


def _skip(source: str, at: int) -> int:
    while at < len(source) and source[at] in " \t\r\n":
        at += 1
    return at
