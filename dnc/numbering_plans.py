"""Numbering-plan changes: numbers written in a retired form, and subscribers with two E.164 forms.

Rule 3 of issue 11. ``phonenumbers`` (libphonenumber metadata) describes each country's plan as
it is *today*: when a country retires a way of writing its numbers, the metadata stops reading
that form, and an opt-out written the old way (an old CRM export, a reply to an old campaign)
is refused as ``too_long``, ``too_short`` or ``invalid_number``. Two things live here:

``current_form(number)``
    A number that is *not valid as written* and matches one of ``PLAN_CHANGES`` (a form its
    country has retired) is read as the number the same subscriber is dialled at today. The
    result must be a valid number of the type the change names, or nothing is rewritten.
    A number valid as written is never rewritten: today's plan wins over history.

``aliases(number)``
    Where one subscriber is reached under more than one E.164 form in the way CXone contacts
    people (voice and SMS), the other forms, canonical form excluded. An opt-out must suppress
    each of them. Only forms a country's plan really uses are listed (``ALIAS_RULES``).

Countries and sources (the same list, with examples, is in ``docs/numbering-plans.md``):

- Mexico (+52), August 2019 (IFT's simplified dialling plan): the mobile ``1`` after ``+52`` and
  the domestic prefixes ``01``/``02`` (long distance, operator) and ``044``/``045`` (mobile local /
  national) were dropped; libphonenumber removed these dialling tokens from its MX metadata
  (google/libphonenumber PR #3710 and #3535, v8.13.38; nyaruka/phonenumbers PR #32 for the
  2019 v8.10.17 change). ``+52 1`` is no longer dialled ("must strictly be dialled as 52"),
  so it is not an alias.
- Brazil (+55), Anatel Resolução 553/2010, completed November 2016: a ``9`` was put in front
  of every 8-digit mobile number (google/libphonenumber issue #818). The 8-digit form no longer
  connects; it is not an alias (WhatsApp ids without the 9 are not dialled by CXone).
- Colombia (+57), CRC Resolución 5826/2019, from 1 September 2021 (old dialling refused from
  December 2021, international calls from 2022): fixed lines are ``60`` + the old one-digit area
  code + the 7-digit number (``+57 1 234 5678`` is ``+57 601 234 5678``); the domestic
  ``03`` + area and ``0`` + carrier + area prefixes went with it.
- Vietnam (+84), Decision 798/QĐ-BTTTT of 25 May 2018, old forms dropped after
  14 November 2018: 11-digit mobile numbers ``01xx`` moved to 10 digits by a fixed table of
  prefixes (``0162`` -> ``032`` ...), see ``_VN_2018_MOBILE``.
- Côte d'Ivoire (+225), ARTCI, 31 January 2021: every 8-digit number got a 2-digit prefix
  naming its operator. Mobile numbers only here: Orange ``07``, MTN ``05``, Moov ``01``, the
  operator read from the old number's first two digits (the carriers' prefix lists in
  google/libphonenumber issue #1909). Fixed lines are left out: their operator depends on the
  third digit by a rule found only in third-party code, not in a regulator's text.
- Benin (+229), ARCEP Bénin (Décision n°2020-349), 30 November 2024: ``01`` was put in front of
  every 8-digit number (mobi/telephone_number issue #138).
- Argentina (+54), aliases only: a mobile is dialled ``+54 9 <area> <number>`` for voice and
  ``+54 <area> <number>`` for SMS (domestic ``0 <area> 15 <number>``); fixed and mobile numbers
  share one 10-digit space, so both forms name the same subscriber and no one else
  (libphonenumber FAQ "mobile prefixes"; AfterShip/phone PR #125 citing WhatsApp's FAQ and the
  ITU; google/libphonenumber issue #684). ``phonenumbers`` already reads ``15`` and ``9``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import CountryCodeSource, NumberParseException, PhoneNumberFormat
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


def current_form(
    number: phonenumbers.PhoneNumber,
) -> tuple[phonenumbers.PhoneNumber, PlanChange] | None:
    """The valid number that ``number``, written in a form its country retired, names today.

    Rule 3 of issue 11 ("a number written in a form its country has retired is stored under
    the number people are dialled at today"), by the table ``PLAN_CHANGES`` and the sources in
    this module's docstring. Returns the number (extension kept) and the change applied, or
    ``None`` when ``number`` is valid as written or no change gives a valid number of the
    change's types. Pure: depends only on ``number`` and the installed metadata.
    """
    if phonenumbers.is_valid_number(number):
        return None
    nsn = phonenumbers.national_significant_number(number)
    national = number.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY
    for change in PLAN_CHANGES:
        if change.country_code != number.country_code:
            continue
        if change.written != "any" and (change.written == "national") != national:
            continue
        new_nsn = change.rewrite(nsn)
        candidate = _valid(number.country_code, new_nsn, change.types) if new_nsn else None
        if candidate is not None:
            candidate.extension = number.extension
            return candidate, change
    return None


def _valid(country_code: int, nsn: str, types: frozenset[int]) -> phonenumbers.PhoneNumber | None:
    try:
        candidate = phonenumbers.parse(f"+{country_code}{nsn}", None)
    except NumberParseException:
        return None
    if phonenumbers.national_significant_number(candidate) != nsn:
        return None
    if not phonenumbers.is_valid_number(candidate):
        return None
    if types and phonenumbers.number_type(candidate) not in types:
        return None
    return candidate


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


def aliases(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """The other E.164 forms of the subscriber ``number`` names, its own form excluded.

    Rule 3 of issue 11 ("where one subscriber can be reached under more than one E.164 form in
    the way CXone dials, an opt-out must suppress every such form"), by ``ALIAS_RULES``:
    today only Argentina, where a mobile is dialled ``+54 9 <area> <number>`` for voice and
    ``+54 <area> <number>`` for SMS, and the two forms share one number space, so neither can
    be another person's number. Only for a valid ``number``: an unverified number gets none.
    Each alias is itself a valid number of the rule's types.
    """
    rules = [rule for rule in ALIAS_RULES if rule.country_code == number.country_code]
    if not rules or not phonenumbers.is_valid_number(number):
        return ()  # most countries have no rule: skip validating the number a second time
    nsn = phonenumbers.national_significant_number(number)
    kind = phonenumbers.number_type(number)
    own = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    found: list[str] = []
    for rule in rules:
        other = rule.other(nsn, kind)
        candidate = _valid(rule.country_code, other, rule.types) if other else None
        if candidate is not None:
            e164 = phonenumbers.format_number(candidate, PhoneNumberFormat.E164)
            if e164 != own and e164 not in found:
                found.append(e164)
    return tuple(found)


def aliases_of(e164: str) -> tuple[str, ...]:
    """``aliases`` of an E.164 string (``+5491123456789`` -> ``("+541123456789",)``); ``()``
    for text that is not a valid number. For keys already stored, e.g. when re-syncing."""
    try:
        return aliases(phonenumbers.parse(e164, None))
    except NumberParseException:
        return ()
