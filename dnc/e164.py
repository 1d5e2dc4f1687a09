"""E.164 normalisation of phone numbers as people and systems really write them.

The contract (ITU-T E.164; ``phonenumbers``, Google's libphonenumber metadata):
``to_e164(raw, region)`` returns the number as ``+<country code><national number>`` or raises
``PhoneNumberProblem`` with one of the reasons in ``REASONS``. A number must pass
``phonenumbers.is_valid_number``: "possible length" is not enough, unless the caller asks for
``allow_unverified`` (below). An extension is dropped from the key and returned beside it.

Issue 11, rule 3 (``dnc.numbering_plans``): a number that is not valid as written but is
written in a form its country has retired (Mexico's ``+52 1`` and ``044``, Brazil's 8-digit
mobiles, ...) is returned as the number the subscriber is dialled at today, and
``E164Number.aliases`` lists the other E.164 forms of the same subscriber (Argentina's mobile
``9``), which an opt-out must suppress too.

Issue 11, rule 4: ``phonenumbers`` metadata lags the world's numbering plans (every release
adds ranges). With ``allow_unverified=True`` a number of a possible length for its country that
the installed metadata does not know is returned with ``unverified=True`` instead of refused
as ``invalid_number``: an opt-out for it must be kept. Impossible numbers (wrong length, no
country) and ambiguous ones are refused either way; callers that lift protection (opt-ins)
leave the flag off.

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

from dnc import nanp, numbering_plans
from dnc.e164_problems import PARSE_REASONS, POSSIBLE_REASONS, REASONS, PhoneNumberProblem

__all__ = [
    "MAX_RAW_LENGTH",
    "REASONS",
    "E164Number",
    "PhoneNumberProblem",
    "fold_text",
    "is_supported_region",
    "to_e164",
]

MAX_RAW_LENGTH = 100
"""Longest raw input accepted, in characters, before any parsing (longer is ``too_long``)."""

_URI_SCHEME = re.compile(r"^\s*(?:tel|sips?|callto)\s*:\s*(?://)?", re.IGNORECASE)
_SIP_HOST = re.compile(r"@.*$")
_DASHES = dict.fromkeys(
    [ord(c) for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u30fc"], "-"
)


@dataclass(frozen=True, slots=True)
class E164Number:
    """A normalised number: ``e164`` like ``+12025550123``, ``extension`` digits or ``None``.

    ``aliases``: the other E.164 forms of the same subscriber (canonical ``e164`` excluded),
    each of which an opt-out must suppress too (``dnc.numbering_plans.aliases``; empty for
    almost every country). ``unverified``: the number has a possible length for its country
    but a range the installed ``phonenumbers`` metadata does not know (only returned with
    ``to_e164(..., allow_unverified=True)``; such a number has no aliases).
    ``plan_change``: the key of the ``dnc.numbering_plans.PLAN_CHANGES`` entry applied when the
    number was written in a retired form (``"MX-2019-mobile-1"``), else ``None``.
    """

    e164: str
    extension: str | None
    aliases: tuple[str, ...] = ()
    unverified: bool = False
    plan_change: str | None = None

    @property
    def region(self) -> str | None:
        """The ISO 3166-1 alpha-2 region the number belongs to (``None`` for non-geographic
        numbers such as +800, and for an unverified number whose country code several
        regions share). Computed on demand: the intake path does not need it."""
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


def to_e164(raw: str, region: str | None, *, allow_unverified: bool = False) -> E164Number:
    """Normalise ``raw`` to E.164, reading a number without a country code in ``region``.

    ``region`` is an ISO 3166-1 alpha-2 code (``"US"``) or ``None`` (then only numbers written
    with a country code, ``+`` or this region-free form, are accepted).
    A number written in a form its country has retired is returned as today's number
    (``plan_change`` names the change). ``allow_unverified=True`` returns a number that is
    possible but not valid by the installed metadata with ``unverified=True`` instead of
    raising ``invalid_number`` (issue 11, rule 4: for opt-outs only).
    Raises ``PhoneNumberProblem`` (a ``ValueError``) with the reason. Results are cached: the
    function is pure.
    """
    region = region.upper() if region else None
    if not _NANP_ALIASES:
        common = nanp.read_common(raw, region)
        if common is not None:  # phonenumbers' own reading, from its metadata, in microseconds
            return E164Number(common, None)
    return _to_e164_cached(raw, region, allow_unverified)


_NANP_ALIASES = any(rule.country_code == 1 for rule in numbering_plans.ALIAS_RULES)
"""Whether a NANP number can have aliases; then ``dnc.nanp``'s shortcut is not taken."""


@lru_cache(maxsize=65_536)
def _to_e164_cached(raw: str, region: str | None, allow_unverified: bool) -> E164Number:
    if len(raw) > MAX_RAW_LENGTH:
        raise PhoneNumberProblem("too_long")
    text = fold_text(raw)
    if not any(ch.isdigit() for ch in text):
        raise PhoneNumberProblem("not_a_number")
    try:
        parsed = phonenumbers.parse(text, region, keep_raw_input=True)
    except NumberParseException as exc:
        raise PhoneNumberProblem(PARSE_REASONS.get(exc.error_type, "not_a_number")) from None
    valid = phonenumbers.is_valid_number(parsed)
    retired = None if valid else numbering_plans.current_form(parsed)
    with_code = _country_code_reading(text, region, parsed)
    if with_code is not None:
        other = parsed if valid else retired[0] if retired else None
        if other is not None and _e164(with_code) != _e164(other):
            # Filing an opt-out under the other reading would leave the person callable.
            raise PhoneNumberProblem("ambiguous_country_code")
        return _number(with_code)
    if retired is not None:
        return _number(retired[0], plan_change=retired[1].key)
    if not valid:
        return _unverified(text, region, parsed, allow_unverified)
    return _number(parsed)


def _unverified(
    text: str, region: str | None, parsed: phonenumbers.PhoneNumber, allow_unverified: bool
) -> E164Number:
    """A number the metadata does not know: kept flagged when allowed and it may be kept
    (``_fits_the_plan``), else ``PhoneNumberProblem`` with the reason."""
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if allow_unverified and possible == ValidationResult.IS_POSSIBLE:
        if _possible_country_code_reading(text, region, parsed):
            raise PhoneNumberProblem("ambiguous_country_code")
        if _fits_the_plan(parsed):
            return E164Number(_e164(parsed), parsed.extension or None, unverified=True)
    raise PhoneNumberProblem(POSSIBLE_REASONS.get(possible, "invalid_number"))


_E164_KEY = re.compile(r"^\+[1-9]\d{6,14}$")


def _fits_the_plan(parsed: phonenumbers.PhoneNumber) -> bool:
    """Whether a possible-but-unknown number may be kept unverified: its E.164 form is
    well-formed, its national number fits its country's numbering plan as a whole (libphonenumber
    metadata ``generalDesc``: an unknown range, not an impossible one such as NANP area code
    000), and it was written with its country code, except under NANP (+1), where ten national
    digits are already the whole number. A number written in a local or national form of another
    country (``15 2345-6789`` in AR, missing its area code) could name someone else."""
    if not _E164_KEY.fullmatch(_e164(parsed)):
        return False
    code = parsed.country_code or 0
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    national = phonenumbers.national_significant_number(parsed)
    general = metadata.general_desc if metadata else None
    pattern = general.national_number_pattern if general else None
    if not pattern or not re.fullmatch(pattern, national):
        return False
    international = parsed.country_code_source in (
        CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
        CountryCodeSource.FROM_NUMBER_WITH_IDD,
    )
    return international or parsed.country_code == 1


def _number(parsed: phonenumbers.PhoneNumber, plan_change: str | None = None) -> E164Number:
    """The ``E164Number`` of a valid ``parsed``, with its aliases."""
    return E164Number(
        e164=_e164(parsed),
        extension=parsed.extension or None,
        aliases=numbering_plans.aliases(parsed),
        plan_change=plan_change,
    )


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


def _possible_country_code_reading(
    text: str, region: str | None, parsed: phonenumbers.PhoneNumber
) -> bool:
    """Whether ``text``, read as a national number of ``region`` (possible, not valid), is also
    a possible number, a different one, when its leading digits are read as ``region``'s
    country code. Then neither reading can be kept unverified: the other may be the person's."""
    if region is None or parsed.country_code_source != CountryCodeSource.FROM_DEFAULT_COUNTRY:
        return False
    code = str(phonenumbers.country_code_for_region(region))
    if code == "0" or not phonenumbers.normalize_digits_only(text).startswith(code):
        return False
    try:
        candidate = phonenumbers.parse("+" + text, None)
    except NumberParseException:
        return False
    return (
        str(candidate.country_code) == code
        and phonenumbers.is_possible_number_with_reason(candidate) == ValidationResult.IS_POSSIBLE
        and _e164(candidate) != _e164(parsed)
    )


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_supported_region(region: str) -> bool:
    """Whether ``region`` (ISO 3166-1 alpha-2, any case) has numbering metadata."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS
