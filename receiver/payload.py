"""Request bodies: which content types are accepted and how each becomes a field mapping.

``application/json`` (RFC 8259) and ``application/x-www-form-urlencoded`` (WHATWG URL
standard), the latter because CXone Studio's REST action sends form bodies by default.
"""

from __future__ import annotations

import codecs
from urllib.parse import parse_qsl

from pydantic_core import from_json

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 64


class UnsupportedMediaType(Exception):
    """The content type (or its charset) is not one we read: 415."""


class MalformedBody(Exception):
    """The body is not valid JSON / form data, or not an object: 400. ``str()`` says why."""


def media_type(content_type: bytes | None) -> tuple[str, str]:
    """Split a Content-Type header into (lower-case media type, codec name).

    Raises ``UnsupportedMediaType`` unless it is JSON or form with a charset Python knows.
    """
    if not content_type:
        raise UnsupportedMediaType("Content-Type is missing")
    text = content_type.decode("latin-1")
    kind, *params = (part.strip() for part in text.split(";"))
    kind = kind.lower()
    if kind not in (JSON, FORM):
        raise UnsupportedMediaType(f"Content-Type must be {JSON} or {FORM}")
    charset = "utf-8"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    try:
        codecs.lookup(charset)
    except LookupError:
        raise UnsupportedMediaType("unknown charset") from None
    return kind, charset


def decode_fields(kind: str, charset: str, body: bytes) -> dict[str, object]:
    """Decode ``body`` of media type ``kind`` to a field mapping. Raises ``MalformedBody``."""
    if kind == JSON:
        return _decode_json(body, charset)
    return _decode_form(body, charset)


def _decode_json(body: bytes, charset: str) -> dict[str, object]:
    try:
        raw = body if charset in ("utf-8", "utf8") else body.decode(charset).encode()
        value = from_json(raw)
    except (ValueError, UnicodeError):
        raise MalformedBody("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedBody("body must be a JSON object")
    return value


def _decode_form(body: bytes, charset: str) -> dict[str, object]:
    try:
        pairs = parse_qsl(
            body.decode(charset),
            keep_blank_values=True,
            strict_parsing=False,
            encoding=charset,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (ValueError, UnicodeError):
        raise MalformedBody("body is not valid form data") from None
    if not pairs:
        raise MalformedBody("form body has no fields")
    # Studio templates send empty values for unset variables: an empty field is an absent one.
    return {name: value for name, value in pairs if value != ""}
