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

import phonenumbers
from phonenumbers import CountryCodeSource, NumberParseException, PhoneNumberFormat

from dnc.alias_rules import ALIAS_RULES, AliasRule
from dnc.plan_changes import PLAN_CHANGES, PlanChange

__all__ = [
    "ALIAS_RULES",
    "PLAN_CHANGES",
    "AliasRule",
    "PlanChange",
    "aliases",
    "aliases_of",
    "current_form",
]


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
