"""Request bodies: which content types are accepted and how each becomes a field mapping.

``application/json`` (RFC 8259) and ``application/x-www-form-urlencoded`` (WHATWG URL
standard), the latter because CXone Studio's REST action sends form bodies by default.

Two traps of real senders are handled here rather than guessed at later:

- Form encoding reads ``+`` as a space, so a template that pastes ``+3612345678`` unencoded
  would arrive as `` 3612345678`` and be read in the default region: another person's number.
  A ``phoneNumber`` form value that starts with a raw ``+`` keeps it as a plus sign, and the
  answer carries a warning (send ``%2B``).
- A field given twice (form, or JSON duplicate keys) would silently keep only one value: it is
  refused (``DuplicateField``) instead.
- Some Studio REST actions send a JSON body under their default content type, form. A form
  body that is a JSON object (``{`` ... ``}``, valid JSON) and so not a form is read as JSON,
  with a warning, through the same charset decoding and duplicate-key screen as JSON; one
  that is not valid JSON is read as form data, as before.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from pydantic_core import from_json

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 64
FIELDS = ("phoneNumber", "eventName", "timestamp", "eventId", "region", "metadata", "expiresAt")
PLUS_WARNING = (
    "phoneNumber started with a raw '+', read as a plus sign (form encoding reads '+' as a "
    "space; send %2B)"
)
JSON_AS_FORM_WARNING = (
    "body is a JSON object sent as application/x-www-form-urlencoded; read as JSON"
)
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


class UnsupportedMediaType(Exception):
    """The content type, its charset or a content encoding is not one we read: 415."""


class MalformedBody(Exception):
    """The body is not valid JSON / form data, or not an object: 400. ``str()`` says why."""


class DuplicateField(Exception):
    """A known field is given more than once: 422. ``field`` names it."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"{field} is given more than once")


@dataclass(frozen=True, slots=True)
class DecodedBody:
    """The body's fields (wire names) and warnings about how they were read."""

    fields: dict[str, object]
    warnings: tuple[str, ...] = ()


def media_type(
    content_type: bytes | None, content_encoding: bytes | None = None
) -> tuple[str, str]:
    """Split a Content-Type header into (lower-case media type, codec name).

    Raises ``UnsupportedMediaType`` unless it is JSON or form with a charset Python knows and
    the body is not content-encoded (gzip etc.).
    """
    if content_encoding and content_encoding.strip().lower() not in (b"", b"identity"):
        raise UnsupportedMediaType("Content-Encoding is not supported; send the body as is")
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
        "x".encode(charset, "ignore")  # refuses codecs that are not text encodings (base64...)
        b"x".decode(charset)  # and those that cannot decode at all (idna, undefined)
    except (LookupError, ValueError):  # UnicodeError is a ValueError
        raise UnsupportedMediaType("unknown charset") from None
    return kind, charset


def decode_fields(kind: str, charset: str, body: bytes) -> DecodedBody:
    """Decode ``body`` of media type ``kind``. Raises ``MalformedBody`` or ``DuplicateField``."""
    if kind == JSON:
        return DecodedBody(_decode_json(body, charset))
    if _looks_like_json_object(body, charset):
        try:
            return DecodedBody(_decode_json(body, charset), (JSON_AS_FORM_WARNING,))
        except MalformedBody:
            pass  # not a JSON object after all: read it as the form it says it is
    return _decode_form(body, charset)


def _looks_like_json_object(body: bytes, charset: str) -> bool:
    """Whether ``body`` in ``charset`` starts with ``{`` and ends with ``}`` (JSON white space
    around them allowed): form encoding percent-encodes both, so no form body does."""
    try:
        text = body.decode(charset).strip(" \t\r\n")
    except (ValueError, UnicodeError):
        return False
    return text.startswith("{") and text.endswith("}")


def _decode_json(body: bytes, charset: str) -> dict[str, object]:
    try:
        raw = body if charset in ("utf-8", "utf8") else body.decode(charset).encode()
        value = from_json(raw)
    except (ValueError, UnicodeError):
        raise MalformedBody(
            "body is not valid JSON (or nests deeper or holds longer numbers than accepted)"
        ) from None
    if not isinstance(value, dict):
        raise MalformedBody("body must be a JSON object")
    # Cheap screen first: when every '"' + JSON white space + ':' in the body is a key of the
    # parsed value, no key was given twice. Otherwise (a duplicate, an escaped key, '":'
    # inside a string) run the exact, slower check. White space counts: '"k" :' is a key too.
    if len(_KEY_END.findall(raw)) != _key_count(value):
        _refuse_duplicate_fields(raw)
    return value


_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def _key_count(value: object) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_key_count(item) for item in value.values())
    if isinstance(value, list):
        return sum(_key_count(item) for item in value)
    return 0


def _refuse_duplicate_fields(raw: bytes) -> None:
    """Raise ``DuplicateField`` when the top-level object names a field twice."""
    objects: list[list[tuple[str, object]]] = []

    def keep(pairs: list[tuple[str, object]]) -> dict[str, object]:
        objects.append(pairs)
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=keep)
    except (ValueError, RecursionError):
        raise MalformedBody("body is not valid JSON") from None
    counts = Counter(name for name, _ in objects[-1])  # the top-level object closes last
    for name in FIELDS:
        if counts[name] > 1:
            raise DuplicateField(name)


def _decode_form(body: bytes, charset: str) -> DecodedBody:
    try:
        text, plus_kept = _keep_leading_plus(body.decode(charset))
        pairs = parse_qsl(
            text,
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
    counts = Counter(name for name, _ in pairs)
    for name in FIELDS:
        if counts[name] > 1:
            raise DuplicateField(name)
    # Studio templates send empty values for unset variables: an empty field is an absent one.
    fields: dict[str, object] = {name: value for name, value in pairs if value != ""}
    return DecodedBody(fields, (PLUS_WARNING,) if plus_kept else ())


def _keep_leading_plus(text: str) -> tuple[str, bool]:
    """In the ``phoneNumber`` value, encode as ``%2B`` every raw ``+`` that comes before the
    first digit; say if one was. Before the first digit a space means nothing, so such a
    ``+`` can only be the sign of a country code (``+36...``, ``tel:+36...``, ``(+36)...``);
    after it, a raw ``+`` is a space between digit groups, as form encoding says."""
    parts = text.split("&")
    kept = False
    for index, part in enumerate(parts):
        name, equals, value = part.partition("=")
        if equals and "+" in value and unquote_plus(name) == "phoneNumber":
            value, changed = _plus_before_first_digit(value)
            parts[index] = f"{name}={value}"
            kept = kept or changed
    return "&".join(parts), kept


def _plus_before_first_digit(value: str) -> tuple[str, bool]:
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "%" and _HEX_PAIR.fullmatch(value, index + 1, index + 3):
            if chr(int(value[index + 1 : index + 3], 16)).isdigit():
                break
            out.append(value[index : index + 3])
            index += 3
            continue
        if char.isdigit():
            break
        out.append("%2B" if char == "+" else char)
        index += 1
    prefix = "".join(out)
    return prefix + value[index:], prefix != value[:index]
