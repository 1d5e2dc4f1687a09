"""Log-safe renderings of phone numbers: never log a whole number."""

from __future__ import annotations

import re


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


_DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def redact(text: str, limit: int = 200) -> str:
    """``text`` with every run of 7+ digits (optionally punctuated) shown as ``***1234``, cut
    to ``limit`` characters: for caller-chosen ids and third-party error messages that may
    carry a phone number."""

    def mask(match: re.Match[str]) -> str:
        digits = [ch for ch in match.group(0) if ch.isdigit()]
        return "***" + "".join(digits[-4:]) if len(digits) >= 7 else match.group(0)

    return _DIGIT_RUN.sub(mask, text)[:limit]
