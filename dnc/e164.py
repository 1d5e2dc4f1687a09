"""E.164 normalisation of phone numbers as people and systems really write them.

The contract (ITU-T E.164; ``phonenumbers``, Google's libphonenumber metadata):
``to_e164(raw, region)`` returns the number as ``+<country code><national number>`` or raises
``PhoneNumberProblem`` with one of the reasons in ``REASONS``. A number must pass
``phonenumbers.is_valid_number``: "possible length" is not enough. An extension is dropped from
the key and returned beside it.

Before parsing, the raw text is folded so that every member of a family of inputs behaves the
same: Unicode compatibility forms (full-width digits and plus), decimal digits of any script,
every kind of white space and dash, invisible format characters (zero-width, bidi marks, soft
hyphen), and ``tel:`` / ``sip:`` URIs (RFC 3966, RFC 3261).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import (
    CountryCodeSource,
    NumberParseException,
    PhoneNumberFormat,
    ValidationResult,
)

MAX_RAW_LENGTH = 100
"""Longest raw input accepted, in characters, before any parsing (longer is ``too_long``)."""

REASONS = (
    "not_a_number",
    "invalid_country_code",
    "too_short",
    "too_long",
    "invalid_number",
    "ambiguous_country_code",
)
"""Every reason ``PhoneNumberProblem`` can carry."""

_URI_SCHEME = re.compile(r"^\s*(?:tel|sips?|callto)\s*:\s*(?://)?", re.IGNORECASE)
_SIP_HOST = re.compile(r"@.*$")
_DASHES = dict.fromkeys(
    [ord(c) for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u30fc"], "-"
)

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}
_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "invalid_country_code",
    ValidationResult.TOO_SHORT: "too_short",
    ValidationResult.TOO_LONG: "too_long",
}
_MESSAGES = {
    "not_a_number": "is not a phone number",
    "invalid_country_code": "has no valid country code (write it with + and the country code, "
    "or send a region)",
    "too_short": "has too few digits for its country",
    "too_long": "has too many digits for its country (a number with its country code needs "
    "a + in front)",
    "invalid_number": "is not a valid number in its country's numbering plan",
    "ambiguous_country_code": "is a valid number both as written in its region and with its "
    "leading digits read as the country code: write it with + and the country code",
}


class PhoneNumberProblem(ValueError):
    """A raw phone number cannot be normalised; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(_MESSAGES[reason])


@dataclass(frozen=True, slots=True)
class E164Number:
    """A normalised number: ``e164`` like ``+12025550123``, ``extension`` digits or ``None``."""

    e164: str
    extension: str | None

    @property
    def region(self) -> str | None:
        """The ISO 3166-1 alpha-2 region the number belongs to (``None`` for non-geographic
        numbers such as +800). Computed on demand: the intake path does not need it."""
        parsed = phonenumbers.parse(self.e164, None)
        region = phonenumbers.region_code_for_number(parsed)
        return (
            None if not region or region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY else region
        )


def fold_text(raw: str) -> str:
    """Fold a raw number to plain ASCII-ish text that ``phonenumbers`` parses reliably.

    NFKC-normalises (full-width forms), maps decimal digits of every script to ASCII, every
    Unicode dash to ``-``, every white space to a space, and drops invisible format characters
    (Unicode category Cf: zero-width space/joiner, bidi marks, soft hyphen, BOM).
    A ``tel:``/``sip:`` URI is reduced to its number part (parameters such as ``;ext=`` stay).
    """
    text = unicodedata.normalize("NFKC", raw).translate(_DASHES)
    out: list[str] = []
    for ch in text:
        if ch.isascii():
            out.append(" " if ch.isspace() else ch)
            continue
        category = unicodedata.category(ch)
        if category == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif category == "Cf":
            continue
        elif ch.isspace() or category.startswith("Z"):
            out.append(" ")
        else:
            out.append(ch)
    folded = "".join(out).strip()
    if _URI_SCHEME.match(folded):
        folded = _SIP_HOST.sub("", _URI_SCHEME.sub("", folded))
    return folded


def to_e164(raw: str, region: str | None) -> E164Number:
    """Normalise ``raw`` to E.164, reading a number without a country code in ``region``.

    ``region`` is an ISO 3166-1 alpha-2 code (``"US"``) or ``None`` (then only numbers written
    with a country code, ``+`` or this region-free form, are accepted).
    Raises ``PhoneNumberProblem`` (a ``ValueError``) with the reason. Results are cached: the
    function is pure.
    """
    return _to_e164_cached(raw, region.upper() if region else None)


@lru_cache(maxsize=65_536)
def _to_e164_cached(raw: str, region: str | None) -> E164Number:
    if len(raw) > MAX_RAW_LENGTH:
        raise PhoneNumberProblem("too_long")
    text = fold_text(raw)
    if not any(ch.isdigit() for ch in text):
        raise PhoneNumberProblem("not_a_number")
    try:
        parsed = phonenumbers.parse(text, region, keep_raw_input=True)
    except NumberParseException as exc:
        raise PhoneNumberProblem(_PARSE_REASONS.get(exc.error_type, "not_a_number")) from None
    valid = phonenumbers.is_valid_number(parsed)
    with_code = _country_code_reading(text, region, parsed)
    if with_code is not None:
        if valid and _e164(with_code) != _e164(parsed):
            # Filing an opt-out under the other reading would leave the person callable.
            raise PhoneNumberProblem("ambiguous_country_code")
        parsed, valid = with_code, True
    if not valid:
        possible = phonenumbers.is_possible_number_with_reason(parsed)
        raise PhoneNumberProblem(_POSSIBLE_REASONS.get(possible, "invalid_number"))
    return E164Number(e164=_e164(parsed), extension=parsed.extension or None)


def _country_code_reading(
    text: str, region: str | None, parsed: phonenumbers.PhoneNumber
) -> phonenumbers.PhoneNumber | None:
    """The valid number ``text`` names when its leading digits are ``region``'s country code
    written without ``+`` (``4915123456784`` in DE), or ``None``. Only for text that
    ``phonenumbers`` read as a national number: it prefers that reading whenever it is
    valid, and does not try the other one when it is not."""
    if region is None or parsed.country_code_source != CountryCodeSource.FROM_DEFAULT_COUNTRY:
        return None
    code = str(phonenumbers.country_code_for_region(region))
    if code == "0" or not phonenumbers.normalize_digits_only(text).startswith(code):
        return None
    try:
        candidate = phonenumbers.parse("+" + text, None)
    except NumberParseException:
        return None
    if str(candidate.country_code) != code or not phonenumbers.is_valid_number(candidate):
        return None
    return candidate


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_supported_region(region: str) -> bool:
    """Whether ``region`` (ISO 3166-1 alpha-2, any case) has numbering metadata."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS
