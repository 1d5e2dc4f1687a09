"""A fast, exact reading of the commonest way North American numbers are written.

Nearly every number a US or Canadian contact centre sends is a ten-digit NANP number written
``(212) 555-0123``, ``212-555-0123``, ``212.555.0123``, ``2125550123`` or with ``+1`` in front.
For those forms ``phonenumbers.parse`` plus ``is_valid_number`` (about 30 µs in CPython) always
come to the same reading: country code 1, the ten digits as the national number, no extension,
and a validity that depends on the digits alone. ``read_common`` gives that reading from the
same libphonenumber metadata (``phonenumbers.PhoneMetadata`` of every NANP region, its patterns
compiled once) in a few microseconds, and answers ``None`` for everything else, which then takes
the full path in ``dnc.e164``.

It reproduces ``phonenumbers.is_valid_number`` for country code 1 step by step:
``region_code_for_number`` (the first NANP region whose leading digits match, or, for a region
without leading digits, whose number type is known) and then ``is_valid_number_for_region``
(a number type other than UNKNOWN: the general description matches and so does one of the
type descriptions, each with its possible lengths). ``tests/test_nanp.py`` checks it against
``phonenumbers`` itself over every area code and random exchanges and lines, in every form.
Only valid numbers are answered here: an invalid one may be a retired form or an unverified
range (``dnc.e164``'s rules 3 and 4), so ``read_common`` leaves it to the full path too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata

_FORM = re.compile(
    r"(\+1[ .-]?)?(?:\(([2-9][0-9]{2})\) ?|([2-9][0-9]{2})[ .-]?)([0-9]{3})[ .-]?([0-9]{4})"
)
"""``+1`` (optional), the area code (bare or in parentheses), exchange and line, separated by
at most one space, dot or dash: ASCII digits only (the regex digit class would also take
Arabic-Indic or full-width digits, which ``dnc.e164`` folds first), nothing before or after (no
extension)."""


@dataclass(frozen=True, slots=True)
class _Desc:
    """One ``PhoneNumberDesc``: its possible lengths (empty: any) and compiled pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str] | None

    def matches(self, nsn: str) -> bool:
        """``phonenumbers``' ``_is_number_matching_desc`` with no prefix match."""
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern is not None and self.pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _Region:
    """What ``region_code_for_number`` and ``_number_type_helper`` read of one region."""

    leading: re.Pattern[str] | None
    general: _Desc
    kinds: tuple[_Desc, ...]

    def type_known(self, nsn: str) -> bool:
        """Whether ``_number_type_helper`` gives a type other than UNKNOWN."""
        return self.general.matches(nsn) and any(kind.matches(nsn) for kind in self.kinds)


def _desc(desc: object) -> _Desc | None:
    if desc is None:
        return None
    pattern = getattr(desc, "national_number_pattern", None)
    return _Desc(
        frozenset(getattr(desc, "possible_length", ()) or ()),
        re.compile(pattern) if pattern else None,
    )


def _region(code: str) -> _Region | None:
    metadata = PhoneMetadata.metadata_for_region(code, None)
    general = _desc(metadata.general_desc) if metadata else None
    if metadata is None or general is None:
        return None
    names = [
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
        "fixed_line",
    ]
    if not metadata.same_mobile_and_fixed_line_pattern:
        names.append("mobile")  # with the same pattern, fixed_line already answers for it
    kinds = tuple(d for d in (_desc(getattr(metadata, name)) for name in names) if d)
    leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
    return _Region(leading, general, kinds)


def _regions() -> tuple[_Region, ...]:
    found = (_region(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ()))
    return tuple(region for region in found if region is not None)


def _national_regions() -> frozenset[str]:
    """NANP regions where a ten-digit national number is parsed as written: national prefix
    ``1`` and no transform rule (some Caribbean plans rewrite seven-digit local numbers)."""
    found = set()
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ()):
        metadata = PhoneMetadata.metadata_for_region(code, None)
        if (
            metadata is not None
            and metadata.national_prefix_for_parsing in (None, "1")
            and not metadata.national_prefix_transform_rule
        ):
            found.add(code)
    return frozenset(found)


_REGIONS = _regions()
_NATIONAL_REGIONS = _national_regions()


def valid(nsn: str) -> bool:
    """``phonenumbers.is_valid_number`` of ``+1`` followed by the national significant number
    ``nsn`` (decimal digits, no leading zero)."""
    for region in _REGIONS:
        if region.leading is not None:
            if region.leading.match(nsn):
                return region.type_known(nsn)
        elif region.type_known(nsn):
            return True
    return False


def read_common(raw: str, region: str | None) -> str | None:
    """The E.164 form (``"+12125550123"``) of ``raw`` when it is a valid NANP number in one of
    the common forms (module docstring) and would be read as NANP: written with ``+1``, or
    nationally with ``region`` (upper-case ISO 3166-1 alpha-2) a NANP region that parses ten
    digits as written (``US``, ``CA``, ...). ``None`` otherwise: the caller takes the full path.
    """
    form = _FORM.fullmatch(raw)
    if form is None:
        return None
    plus, bracketed, bare, exchange, line = form.groups()
    if plus is None and region not in _NATIONAL_REGIONS:
        return None
    nsn = (bracketed or bare) + exchange + line
    return "+1" + nsn if valid(nsn) else None
