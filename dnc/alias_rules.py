"""The table of subscribers with more than one E.164 form (``ALIAS_RULES``), read by
``dnc.numbering_plans.aliases``; its sources are in that module's docstring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phonenumbers import PhoneNumberType as Type


def _ar_mobile_9(nsn: str, kind: int) -> str | None:
    """Argentina: the mobile ``9`` after +54 (voice) and the form without it (SMS)."""
    if kind == Type.MOBILE and nsn.startswith("9"):
        return nsn[1:]
    if kind == Type.FIXED_LINE:
        return "9" + nsn
    return None


@dataclass(frozen=True, slots=True)
class AliasRule:
    """Other national significant numbers one subscriber is reached at (see ``aliases``).

    ``other`` maps (national significant number, number type) to the other form or ``None``;
    ``types`` are the types that other form must have to be listed.
    """

    key: str
    country_code: int
    source: str
    types: frozenset[int]
    other: Callable[[str, int], str | None]


ALIAS_RULES: tuple[AliasRule, ...] = (
    AliasRule(
        key="AR-mobile-9",
        country_code=54,
        source=(
            "libphonenumber FAQ (mobile prefixes); AfterShip/phone PR #125 (WhatsApp FAQ, "
            "ITU Argentina); google/libphonenumber issue #684"
        ),
        types=frozenset({Type.MOBILE, Type.FIXED_LINE}),
        other=_ar_mobile_9,
    ),
)
"""Every country where one subscriber has more than one E.164 form CXone may dial."""
