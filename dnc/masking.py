"""Log-safe renderings of phone numbers: never log a whole number."""

from __future__ import annotations


def mask_number(number: str | None, visible: int = 4) -> str:
    """Mask all but the last ``visible`` digits of ``number``: ``+12025550123`` -> ``***0123``.

    Non-digits are dropped first, so any raw form masks the same way. ``None`` or an input
    with no more than ``visible`` digits masks to ``***`` alone, so short codes never leak.
    """
    if not number:
        return "***"
    digits = [ch for ch in number if ch.isdigit()]
    if len(digits) <= visible:
        return "***"
    return "***" + "".join(digits[-visible:])
