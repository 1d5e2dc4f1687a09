"""Issue 11, rules 3 and 4: retired numbering-plan forms, aliases, and unverified numbers.

Every number is fictional and built on ``phonenumbers``' own example numbers (or their
documented old form), so it stays valid as the metadata moves. See docs/numbering-plans.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType, ValidationResult

from dnc import numbering_plans
from dnc.e164 import REASONS, PhoneNumberProblem, to_e164


def _example(region: str, kind: int = PhoneNumberType.MOBILE) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# --- rule 3: a retired written form is stored under today's number ----------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164", "change"),
    [
        # Mexico 2019: the mobile "1" after +52 (written with the country code, any way) ...
        ("+52 1 222 123 4567", None, "+522221234567", "MX-2019-mobile-1"),
        ("+52 1 (222) 123-4567", "US", "+522221234567", "MX-2019-mobile-1"),
        ("011 52 1 222 123 4567", "US", "+522221234567", "MX-2019-mobile-1"),
        ("00 52 1 222 123 4567", "DE", "+522221234567", "MX-2019-mobile-1"),
        ("52 1 222 123 4567", "MX", "+522221234567", "MX-2019-mobile-1"),
        ("tel:+52-1-222-123-4567", None, "+522221234567", "MX-2019-mobile-1"),
        # ... and the domestic 044/045 mobile and 01/02 long-distance prefixes
        ("044 55 1234 5678", "MX", "+525512345678", "MX-2019-044-045"),
        ("045 222 123 4567", "MX", "+522221234567", "MX-2019-044-045"),
        ("01 55 1234 5678", "MX", "+525512345678", "MX-2019-01-02"),
        ("01 800 123 4567", "MX", "+528001234567", "MX-2019-01-02"),
        ("02 200 123 4567", "MX", "+522001234567", "MX-2019-01-02"),
        # Brazil 2016: the 8-digit mobile got a 9 in front
        ("+55 11 6123 4567", None, "+5511961234567", "BR-2016-ninth-digit"),
        ("(11) 6123-4567", "BR", "+5511961234567", "BR-2016-ninth-digit"),
        ("0 21 11 6123 4567", "BR", "+5511961234567", "BR-2016-ninth-digit"),  # carrier 21
        # Colombia 2021: fixed lines are 60 + old area digit + number
        ("+57 1 234 5678", None, "+576012345678", "CO-2021-fixed-60"),
        ("(1) 234 5678", "CO", "+576012345678", "CO-2021-fixed-60"),
        ("031 234 5678", "CO", "+576012345678", "CO-2021-fixed-60"),  # mobile-to-fixed 03
        ("05 1 234 5678", "CO", "+576012345678", "CO-2021-fixed-60"),  # carrier 5
        ("0456 1 234 5678", "CO", "+576012345678", "CO-2021-fixed-60"),  # carrier 456
        # Vietnam 2018: 11-digit mobiles moved to 10 digits (the full table is tested below)
        ("+84 162 123 4567", None, "+84321234567", "VN-2018-mobile-10-digits"),
        ("0162 123 4567", "VN", "+84321234567", "VN-2018-mobile-10-digits"),
        # Cote d'Ivoire 2021: 8-digit mobiles got their operator's prefix
        ("+225 07 12 34 56", None, "+2250707123456", "CI-2021-mobile-10-digits"),
        ("07 12 34 56", "CI", "+2250707123456", "CI-2021-mobile-10-digits"),
        # Benin 2024: 01 in front of every 8-digit number
        ("+229 95 12 34 56", None, "+2290195123456", "BJ-2024-prefix-01"),
        ("95 12 34 56", "BJ", "+2290195123456", "BJ-2024-prefix-01"),
        ("+229 20 21 12 34", None, "+2290120211234", "BJ-2024-prefix-01"),  # fixed line
    ],
)
def test_retired_form_is_stored_under_todays_number(
    raw: str, region: str | None, e164: str, change: str
) -> None:
    number = to_e164(raw, region)
    assert (number.e164, number.plan_change, number.unverified) == (e164, change, False)
    assert to_e164(e164, None).e164 == e164  # today's form is itself accepted unchanged


def test_today_forms_are_the_example_numbers() -> None:
    """The targets above are phonenumbers' own examples, so they stay valid."""
    assert _example("MX") == "+522221234567"
    assert _example("BR") == "+5511961234567"
    assert _example("CO", PhoneNumberType.FIXED_LINE) == "+576012345678"
    assert _example("BJ") == "+2290195123456"
    assert _example("BJ", PhoneNumberType.FIXED_LINE) == "+2290120211234"


def test_issue_examples() -> None:
    assert to_e164("+52 1 222 123 4567", None).e164 == "+522221234567"
    assert to_e164("044 55 1234 5678", "MX").e164 == "+525512345678"


def test_extension_survives_the_rewrite() -> None:
    number = to_e164("+52 1 222 123 4567 ext. 12", None)
    assert (number.e164, number.extension) == ("+522221234567", "12")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("162", "32"), ("163", "33"), ("164", "34"), ("165", "35"), ("166", "36"),
        ("167", "37"), ("168", "38"), ("169", "39"),
        ("120", "70"), ("121", "79"), ("122", "77"), ("126", "76"), ("128", "78"),
        ("123", "83"), ("124", "84"), ("125", "85"), ("127", "81"), ("129", "82"),
        ("186", "56"), ("188", "58"), ("199", "59"),
    ],
)  # fmt: skip
def test_vietnam_2018_mobile_table(old: str, new: str) -> None:
    """Decision 798/QĐ-BTTTT (2018), section II.2.1: every old prefix, its new one."""
    assert to_e164(f"0{old} 765 4321", "VN").e164 == f"+84{new}7654321"


@pytest.mark.parametrize(
    ("old", "prefix"),
    [
        ("01", "01"), ("03", "01"), ("40", "01"), ("53", "01"), ("71", "01"),  # Moov
        ("04", "05"), ("05", "05"), ("45", "05"), ("66", "05"), ("86", "05"),  # MTN
        ("07", "07"), ("09", "07"), ("47", "07"), ("89", "07"), ("98", "07"),  # Orange
    ],
)  # fmt: skip
def test_cote_divoire_2021_mobile_operator_prefix(old: str, prefix: str) -> None:
    """ARTCI 2021: Moov 01, MTN 05, Orange 07, the operator named by the old second digit."""
    assert to_e164(f"+225 {old} 12 34 56", None).e164 == f"+225{prefix}{old}123456"


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("1 222 123 4567", "MX"),  # a national "1 + 10 digits" may be a NANP number: not read
        ("+52 044 55 1234 5678", None),  # 044 was a domestic prefix only
        ("+52 1 200 123 4567", None),  # 200 is a fixed-line range: it never had the mobile 1
        ("+225 20 21 22 23", None),  # CI fixed lines: operator rule not from a regulator
        ("+225 80 12 34 56", None),  # CI toll-free 80 was not renumbered
        ("+57 9 234 5678", None),  # no Colombian area code 9
        ("+84 130 123 4567", None),  # not in Vietnam's 2018 table
    ],
)
def test_forms_outside_the_documented_changes_stay_refused(raw: str, region: str | None) -> None:
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164(raw, region)
    assert info.value.reason in REASONS


def test_a_number_valid_as_written_is_never_rewritten() -> None:
    """Today's plan wins: an 8-digit Brazilian number starting with 7 is still valid."""
    for raw in ("+55 21 7123 4567", "+55 11 2345 6789", "+57 4 604 1234"):
        number = to_e164(raw, None)
        assert number.plan_change is None
        assert number.e164 == "+" + phonenumbers.normalize_digits_only(raw)


def test_every_plan_change_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "numbering-plans.md").read_text(
        encoding="utf-8"
    )
    for change in numbering_plans.PLAN_CHANGES:
        assert change.source and change.since
        assert f"`{change.key}`" in docs, change.key
    for rule in numbering_plans.ALIAS_RULES:
        assert rule.source
        assert f"`{rule.key}`" in docs, rule.key


# --- rule 3: one subscriber, more than one E.164 form ------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164", "aliases"),
    [
        ("+54 9 11 2345-6789", None, "+5491123456789", ("+541123456789",)),
        ("011 15 2345-6789", "AR", "+5491123456789", ("+541123456789",)),
        ("+54 11 15 2345-6789", None, "+5491123456789", ("+541123456789",)),
        ("+54 11 2345-6789", None, "+541123456789", ("+5491123456789",)),
        ("011 2345-6789", "AR", "+541123456789", ("+5491123456789",)),
    ],
)
def test_argentina_mobile_9_and_sms_form_are_one_subscriber(
    raw: str, region: str | None, e164: str, aliases: tuple[str, ...]
) -> None:
    number = to_e164(raw, region)
    assert (number.e164, number.aliases) == (e164, aliases)
    assert _example("AR") == "+5491123456789"
    assert _example("AR", PhoneNumberType.FIXED_LINE) == "+541123456789"


@pytest.mark.parametrize(
    "e164",
    ["+548001234567", "+522221234567", "+5511961234567", "+12025550123", "+442079460123"],
)
def test_no_alias_where_the_plan_dials_one_form(e164: str) -> None:
    """Argentine toll-free numbers, and Mexico's retired +52 1 / Brazil's 8-digit forms, which
    no longer connect, are not aliases."""
    assert to_e164(e164, None).aliases == ()
    assert numbering_plans.aliases_of(e164) == ()


def test_aliases_of_a_stored_key() -> None:
    assert numbering_plans.aliases_of("+5491123456789") == ("+541123456789",)
    assert numbering_plans.aliases_of("not a number") == ()


def test_every_alias_is_a_valid_number_whose_alias_is_the_original() -> None:
    for e164 in ("+5491123456789", "+541123456789", _example("AR"), "+5493515551234"):
        for alias in numbering_plans.aliases_of(e164):
            assert phonenumbers.is_valid_number(phonenumbers.parse(alias, None))
            assert numbering_plans.aliases_of(alias) == (e164,)


# --- rule 4: possible but unknown to the installed metadata ------------------------------------


def _unassigned(region: str) -> str:
    """A number of ``region`` the installed metadata calls possible but not valid: the fixed
    example number with its first two digits replaced by the first pair that fits the
    country's general pattern and length, is in no known range and is no retired form."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.FIXED_LINE)
    nsn = phonenumbers.national_significant_number(example)
    for head in range(10, 100):
        digits = f"{head}{nsn[2:]}"
        candidate = phonenumbers.parse(f"+{example.country_code}{digits}", None)
        if (
            re.fullmatch(metadata.general_desc.national_number_pattern, digits)
            and phonenumbers.is_possible_number_with_reason(candidate)
            == ValidationResult.IS_POSSIBLE
            and not phonenumbers.is_valid_number(candidate)
            and numbering_plans.current_form(candidate) is None
        ):
            return phonenumbers.format_number(candidate, PhoneNumberFormat.E164)
    raise AssertionError(f"no unassigned range found for {region}")


@pytest.mark.parametrize("region", ["US", "GB", "FR", "ES", "MX", "BR"])
def test_possible_but_unknown_number_is_refused_unless_allowed(region: str) -> None:
    e164 = _unassigned(region)
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164(e164, None)
    assert info.value.reason == "invalid_number"  # default unchanged: opt-ins keep refusing
    number = to_e164(e164, None, allow_unverified=True)
    assert (number.e164, number.unverified, number.aliases) == (e164, True, ())
    national = phonenumbers.format_number(
        phonenumbers.parse(e164, None), PhoneNumberFormat.NATIONAL
    )
    if region == "US":  # ten NANP digits are the whole number
        assert to_e164(national, region, allow_unverified=True) == number
    else:  # a national form of an unknown range may lack a part: it needs its country code
        with pytest.raises(PhoneNumberProblem):
            to_e164(national, region, allow_unverified=True)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("(000) 555-0100", "US"),  # NANP area code 000 does not exist
        ("(000) 000-0000", "US"),  # once stored under the key "+1(000) 000-0000"
        ("000-000-0000", "US"),
        ("15 2345-6789", "AR"),  # a local mobile form without its area code
        ("96123-4567", "BR"),
        ("1234567", "DE"),
    ],
)
def test_impossible_or_local_forms_are_never_kept_unverified(raw: str, region: str) -> None:
    # found by a break-it pass: each was kept for an opt-out under a number that is nobody's
    with pytest.raises(PhoneNumberProblem):
        to_e164(raw, region, allow_unverified=True)


def test_unverified_keeps_the_extension() -> None:
    number = to_e164("(211) 555-0123 x7", "US", allow_unverified=True)
    assert (number.e164, number.extension, number.unverified) == ("+12115550123", "7", True)


def test_valid_number_with_the_flag_is_not_flagged() -> None:
    number = to_e164("+1 202 555 0123", None, allow_unverified=True)
    assert (number.e164, number.unverified) == ("+12025550123", False)
    assert to_e164("044 55 1234 5678", "MX", allow_unverified=True).unverified is False


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("+1 202", None, "too_short"),
        ("+44 20 7946 0123 4567", None, "too_long"),
        ("+999 1234567", None, "invalid_country_code"),
        ("SUPPORT", "US", "not_a_number"),
        ("234 5678", "CO", "invalid_number"),  # possible only locally: no area code
        ("+225 20 21 22 23", None, "too_short"),  # old CI fixed line: wrong length today
        # valid as national number and as country code + number: refused either way
        ("4915123456784", "DE", "ambiguous_country_code"),
    ],
)
def test_impossible_and_ambiguous_numbers_are_refused_either_way(
    raw: str, region: str | None, reason: str
) -> None:
    for allow in (False, True):
        with pytest.raises(PhoneNumberProblem) as info:
            to_e164(raw, region, allow_unverified=allow)
        assert info.value.reason == reason


def test_unverified_reading_is_refused_when_the_country_code_reading_is_possible_too() -> None:
    """``392012345678`` in IT: +39 392012345678 or +39 2012345678, both possible and unknown;
    keeping either could file the opt-out under someone else."""
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164("392012345678", "IT")
    assert info.value.reason == "invalid_number"
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164("392012345678", "IT", allow_unverified=True)
    assert info.value.reason == "ambiguous_country_code"
