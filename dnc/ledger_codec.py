"""The compact text of an ownership ledger entry, piece by piece (the format:
``dnc.owned_record.OwnedRecord``): base 36 times, packed flow run ids, record ids, escapes.

Each ``encode_*`` has its ``decode_*``, which raises ``ValueError`` naming the piece it could
not read.
"""

from __future__ import annotations

import re
import uuid

_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE36 = re.compile(r"-?[0-9a-z]+")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_INDEX = {char: i for i, char in enumerate(_B64)}
_V4_LEN, _UUID_LEN = 21, 22  # base64url digits of 122 and of 128 bits
_ESCAPED = re.compile(r"%(25|7C)")


def base36(value: int) -> str:
    """``value`` in base 36 (``0-9a-z``), ``-`` before a negative one."""
    if value < 0:
        return "-" + base36(-value)
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = _DIGITS36[digit] + digits
        if not value:
            return digits


def from_base36(text: str) -> int:
    """The integer ``base36`` wrote."""
    if not _BASE36.fullmatch(text):
        raise ValueError("time")
    return int(text, 36)


def escape(text: str) -> str:
    """``text`` with ``%`` as ``%25`` and ``|`` as ``%7C`` (a verbatim field)."""
    return text.replace("%", "%25").replace("|", "%7C")


def unescape(text: str) -> str:
    """The text ``escape`` wrote; a ``%`` not part of ``%25``/``%7C`` is refused."""
    if "%" in _ESCAPED.sub("", text):
        raise ValueError("escape")
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "|", text)


def encode_run(run_id: str) -> str:
    """A flow run id: base64url of a canonical UUID's bits (a version 4 one's 122 random
    bits), else ``~`` and the id verbatim."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != run_id:
        return "~" + escape(run_id)
    n = parsed.int
    if parsed.version == 4 and parsed.variant == uuid.RFC_4122:
        # drop the version nibble (bits 76-79) and the variant's 2 bits (62-63)
        packed = (n >> 80) << 74 | ((n >> 64) & 0xFFF) << 62 | n & ((1 << 62) - 1)
        return _b64(packed, _V4_LEN)
    return _b64(n, _UUID_LEN)


def decode_run(text: str) -> str:
    """The flow run id ``encode_run`` wrote."""
    if text.startswith("~"):
        return unescape(text[1:])
    if len(text) == _V4_LEN:
        packed = _from_b64(text, 122)
        high, mid, low = packed >> 74, (packed >> 62) & 0xFFF, packed & ((1 << 62) - 1)
        return str(uuid.UUID(int=high << 80 | 4 << 76 | mid << 64 | 2 << 62 | low))
    if len(text) == _UUID_LEN:
        return str(uuid.UUID(int=_from_b64(text, 128)))
    raise ValueError("flow run id")


def _b64(value: int, width: int) -> str:
    return "".join(_B64[(value >> 6 * i) & 63] for i in reversed(range(width)))


def _from_b64(text: str, bits: int) -> int:
    value = 0
    for char in text:
        if char not in _B64_INDEX:
            raise ValueError("flow run id")
        value = value << 6 | _B64_INDEX[char]
    if value >> bits:
        raise ValueError("flow run id")
    return value


def default_record_id(number: str) -> str:
    """The number as a DNC group keys it by default (``group_phone`` in ``auto``), fixed here:
    stored entries depend on it."""
    digits = number.lstrip("+")
    return digits[1:] if number.startswith("+1") and len(digits) == 11 else digits


def encode_record(number: str, record_id: str) -> str:
    """``record_id`` of ``number``'s entry: empty for the default one, ``+`` the number, ``=``
    its digits, else verbatim (after ``~`` when it could be read as one of those)."""
    if record_id == default_record_id(number):
        return ""
    if record_id == number:
        return "+"
    if record_id == number.lstrip("+"):
        return "="
    escaped = escape(record_id)
    return "~" + escaped if record_id in ("", "+", "=") or record_id.startswith("~") else escaped


def decode_record(number: str, text: str) -> str:
    """The record id ``encode_record`` wrote for ``number``."""
    if text == "":
        return default_record_id(number)
    if text == "+":
        return number
    if text == "=":
        return number.lstrip("+")
    return unescape(text[1:] if text.startswith("~") else text)
