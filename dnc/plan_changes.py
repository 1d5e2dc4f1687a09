"""The table of retired ways of writing numbers (``PLAN_CHANGES``), read by
``dnc.numbering_plans.current_form``; its sources are in that module's docstring."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from phonenumbers import PhoneNumberType as Type

_MOBILE_TYPES = frozenset({Type.MOBILE, Type.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True, slots=True)
class PlanChange:
    """One retired way of writing a country's numbers and how it reads today.

    ``rewrite`` maps the national significant number as written to today's, or ``None`` when
    the change does not apply; ``written`` says which written forms it applies to
    (``"national"``: without a country code, read in the region; ``"international"``: with
    the country code; ``"any"``); ``types`` are the number types the result may have (empty:
    any valid number).
    """

    key: str
    country_code: int
    since: str
    source: str
    written: Literal["national", "international", "any"]
    types: frozenset[int]
    rewrite: Callable[[str], str | None]


def _sub(pattern: str, replacement: str) -> Callable[[str], str | None]:
    compiled = re.compile(pattern)

    def rewrite(nsn: str) -> str | None:
        match = compiled.fullmatch(nsn)
        return match.expand(replacement) if match else None

    return rewrite


_VN_2018_MOBILE = {
    # Viettel
    "162": "32", "163": "33", "164": "34", "165": "35",
    "166": "36", "167": "37", "168": "38", "169": "39",
    # MobiFone
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",
    # VinaPhone
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    # Vietnamobile
    "186": "56", "188": "58",
    # Gmobile
    "199": "59",
}  # fmt: skip
"""Vietnam's 2018 mobile prefix table (Decision 798/QĐ-BTTTT, section II.2.1): old
national significant prefix (after the trunk 0) -> new one; the 7 digits after it stay."""


def _vn_2018_mobile(nsn: str) -> str | None:
    """Vietnam, 15 Sep - 14 Nov 2018: ``01xx xxx xxxx`` mobiles became ``0yy xxx xxxx``."""
    new = _VN_2018_MOBILE.get(nsn[:3]) if len(nsn) == 10 else None
    return new + nsn[3:] if new else None


_CI_2021_MOBILE_OPERATOR = {"0": "01", "1": "01", "2": "01", "3": "01", "4": "05", "5": "05",
                            "6": "05", "7": "07", "8": "07", "9": "07"}  # fmt: skip
"""Côte d'Ivoire 2021: the second digit of an old mobile number names its operator (Moov 0-3,
MTN 4-6, Orange 7-9, the carriers' lists in google/libphonenumber issue #1909) and so the
new prefix (Moov 01, MTN 05, Orange 07; ARTCI, 28 July 2020)."""
_CI_2021_OLD_MOBILE = re.compile(r"0[1-9]|4\d|5\d|6[4-9]|7\d|8[4-9]|9[4-8]")
"""First two digits of the old 8-digit mobile ranges (fixed lines were 2x/3x, toll-free 80,
premium 90: those stay out)."""


def _ci_2021_mobile(nsn: str) -> str | None:
    """Côte d'Ivoire, 31 Jan 2021: an 8-digit mobile gets its operator's 2-digit prefix."""
    if len(nsn) != 8 or not nsn.isdigit() or not _CI_2021_OLD_MOBILE.fullmatch(nsn[:2]):
        return None
    return _CI_2021_MOBILE_OPERATOR[nsn[1]] + nsn


PLAN_CHANGES: tuple[PlanChange, ...] = (
    PlanChange(
        key="MX-2019-mobile-1",
        country_code=52,
        since="2019-08",
        source="IFT dialling plan 2019; google/libphonenumber PR #3710, #3535 (v8.13.38)",
        written="international",  # a national "1 ..." may be a NANP number: not read
        types=_MOBILE_TYPES,
        rewrite=_sub(r"1(\d{10})", r"\1"),
    ),
    PlanChange(
        key="MX-2019-044-045",
        country_code=52,
        since="2019-08",
        source="IFT dialling plan 2019; google/libphonenumber PR #3710, #3535 (v8.13.38)",
        written="national",
        types=_MOBILE_TYPES,
        rewrite=_sub(r"04[45](\d{10})", r"\1"),
    ),
    PlanChange(
        key="MX-2019-01-02",
        country_code=52,
        since="2019-08",
        source="IFT dialling plan 2019; google/libphonenumber PR #3710, #3535 (v8.13.38)",
        written="national",
        types=frozenset(),
        rewrite=_sub(r"0[12](\d{10})", r"\1"),
    ),
    PlanChange(
        key="BR-2016-ninth-digit",
        country_code=55,
        since="2016-11",
        source="Anatel Resolução 553/2010; google/libphonenumber issue #818",
        written="any",
        types=frozenset({Type.MOBILE}),
        rewrite=_sub(r"([1-9][1-9])([6-9]\d{7})", r"\g<1>9\2"),
    ),
    PlanChange(
        key="CO-2021-fixed-60",
        country_code=57,
        since="2021-09-01",
        source="CRC Resolución 5826/2019 (marcación única nacional)",
        written="any",
        types=frozenset({Type.FIXED_LINE}),
        rewrite=_sub(r"([1-8]\d{7})", r"60\1"),
    ),
    PlanChange(
        key="VN-2018-mobile-10-digits",
        country_code=84,
        since="2018-09-15",
        source="Decision 798/QĐ-BTTTT (2018-05-25), section II.2.1",
        written="any",
        types=frozenset({Type.MOBILE}),
        rewrite=_vn_2018_mobile,
    ),
    PlanChange(
        key="CI-2021-mobile-10-digits",
        country_code=225,
        since="2021-01-31",
        source="ARTCI, 8 to 10 digits (2020-07-28); google/libphonenumber issue #1909",
        written="any",
        types=frozenset({Type.MOBILE}),
        rewrite=_ci_2021_mobile,
    ),
    PlanChange(
        key="BJ-2024-prefix-01",
        country_code=229,
        since="2024-11-30",
        source="ARCEP Bénin Décision n°2020-349; mobi/telephone_number issue #138",
        written="any",
        types=frozenset(),
        rewrite=_sub(r"(\d{8})", r"01\1"),
    ),
)
"""Every retired written form read by ``current_form``, by country."""
