"""E.164 normalisation over the family of ways people write one number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnc.e164 import MAX_RAW_LENGTH, PhoneNumberProblem, fold_text, to_e164
from dnc.masking import mask_number

US = "+12025550123"


@pytest.mark.parametrize(
    "raw",
    [
        "2025550123",
        "202-555-0123",
        "202.555.0123",
        "(202) 555-0123",
        "+1 202 555 0123",
        "1-202-555-0123",
        "  +1 (202) 555-0123  ",
        "tel:+1-202-555-0123",
        "TEL:+12025550123",
        "tel:+1-202-555-0123;ext=9",
        "sip:+12025550123@pbx.example.com;user=phone",
        "+1\u00a0202\u00a0555\u00a00123",  # no-break spaces
        "+1\u2009202\u2009555\u20090123",  # thin spaces
        "+1\t202\n555\r0123",
        "\u200b+1 202 555 0123\u200e",  # zero-width space, left-to-right mark
        "\ufeff+12025550123",  # byte-order mark
        "+1\u2013202\u2014555\u22120123",  # en dash, em dash, minus sign
        "+1\u00ad202\u00ad555\u00ad0123",  # soft hyphens
        "\uff0b\uff11\uff12\uff10\uff12\uff15\uff15\uff15\uff10\uff11\uff12\uff13",
        "\u0968\u0966\u0968\u096b\u096b\u096b\u0966\u0967\u0968\u0969",  # Devanagari digits
        "\u06f2\u06f0\u06f2\u06f5\u06f5\u06f5\u06f0\u06f1\u06f2\u06f3",  # Persian digits
        "202 555 0123 ext. 77",
        "202-555-0123 x77",
        "1-202-JKL-0123",
    ],
)
def test_family_of_one_us_number(raw: str) -> None:
    assert to_e164(raw, "US").e164 == US


def test_extension_is_kept_beside_the_key() -> None:
    number = to_e164("+1 202 555 0123 ext. 45", None)
    assert (number.e164, number.extension, number.region) == (US, "45", "US")


def test_region_hint_decides_numbers_without_country_code() -> None:
    assert to_e164("020 7946 0123", "GB").e164 == "+442079460123"
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164("020 7946 0123", None)
    assert info.value.reason == "invalid_country_code"


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        # Valid as a national number of the region AND as country code + number: phonenumbers
        # takes the national reading, which would file the opt-out under someone else.
        ("4915123456784", "DE"),  # +49 151 23456784 (mobile) or +49 4915123456784
        ("62812345653", "ID"),
        ("318001233", "NL"),
        ("468123196", "SE"),
    ],
)
def test_country_code_without_plus_that_is_also_a_national_number_is_ambiguous(
    raw: str, region: str
) -> None:
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164(raw, region)
    assert info.value.reason == "ambiguous_country_code"
    assert to_e164("+" + raw, None).e164 == "+" + raw  # written with + it is accepted


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("55800123864", "BR", "+55800123864"),  # only valid read with its country code
        ("12025550123", "US", "+12025550123"),  # both readings name the same number
        ("2025550123", "US", "+12025550123"),
        ("015123456784", "DE", "+4915123456784"),  # national prefix, not a country code
    ],
)
def test_country_code_without_plus_is_read_when_only_one_reading_is_valid(
    raw: str, region: str, e164: str
) -> None:
    assert to_e164(raw, region).e164 == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("SUPPORT", "not_a_number"),
        ("", "not_a_number"),
        ("---", "not_a_number"),
        ("+999 1234567", "invalid_country_code"),
        ("+1 202", "too_short"),
        ("+1 202 555 0123 4567 8888", "too_long"),
        ("5555555555", "invalid_number"),
        ("1" * (MAX_RAW_LENGTH + 1), "too_long"),
    ],
)
def test_reject_reasons(raw: str, reason: str) -> None:
    with pytest.raises(PhoneNumberProblem) as info:
        to_e164(raw, "US")
    assert info.value.reason == reason


def test_non_geographic_number_has_no_region() -> None:
    number = to_e164("+800 1234 5678", None)
    assert (number.e164, number.region) == ("+80012345678", None)


def test_fold_text_maps_script_digits_and_drops_invisibles() -> None:
    assert fold_text("\u200b\u0662\u0660\u0662\u00a0-\u2011") == "202 --"


@given(st.text(max_size=120))
def test_any_text_gives_a_number_or_a_reason(raw: str) -> None:
    try:
        number = to_e164(raw, "US")
    except PhoneNumberProblem as exc:
        assert exc.reason
    else:
        assert number.e164.startswith("+") and number.e164[1:].isdigit()


@pytest.mark.parametrize(
    ("raw", "masked"),
    [("+12025550123", "***0123"), ("(202) 555-0123", "***0123"), (None, "***"), ("12", "***")],
)
def test_mask_number_keeps_only_last_four_digits(raw: str | None, masked: str) -> None:
    assert mask_number(raw) == masked
