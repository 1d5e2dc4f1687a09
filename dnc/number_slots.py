"""Where a number lives among the per-number hash buckets: its bucket suffix and field
(``number_slot``), and back. ``dnc/lua/number_hash.lua`` computes the same split; the key names
themselves are ``dnc.keys.RedisKeys``'s."""

from __future__ import annotations

BUCKET_DIGITS = 4
"""A per-number hash is kept as ``10 ** BUCKET_DIGITS`` small hashes, one per value of the
number's last four digits (``number_slot``): each holds about one ten-thousandth of the
numbers, so up to about 1.2M numbers a bucket stays a compact listpack (Redis's default
``hash-max-listpack-entries`` is 128 fields; raise it to 512 for about 5M numbers). A value
over 64 bytes (Redis's default ``hash-max-listpack-value``; a state with a caller ``eventId``
over about 36 characters, or about 24 for an opt-out with an expiry) goes to a flat hash of
its own instead (``state_long``, ``owned_long``), so that it cannot turn its bucket into a
plain hash."""


def number_slot(e164: str) -> tuple[str, str]:
    """``"+12125550123"`` -> ``("0123", "1212555")``: the bucket suffix (the last
    ``BUCKET_DIGITS`` digits) and the field in that bucket (the digits before them, without
    ``+``; all digits, so a listpack keeps it as an integer). ``dnc/lua/number_hash.lua``
    computes the same split; ``number_from_slot`` reverses it."""
    return e164[-BUCKET_DIGITS:], e164[1:-BUCKET_DIGITS]


def number_from_slot(suffix: str, field: str) -> str:
    """The E.164 number of bucket ``suffix``'s ``field`` (``number_slot`` reversed)."""
    return f"+{field}{suffix}"


def bucket_suffixes() -> list[str]:
    """Every bucket suffix, ``"0000"`` to ``"9999"``, in order."""
    return [f"{i:0{BUCKET_DIGITS}d}" for i in range(10**BUCKET_DIGITS)]
