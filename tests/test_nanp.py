"""``dnc.nanp``'s shortcut gives ``phonenumbers``' own answer, or none at all.

Each test compares ``to_e164`` (shortcut first) with ``_to_e164_cached`` (the full path through
``phonenumbers.parse`` and ``is_valid_number``) on the same text, so a shortcut that read one
number differently (a wrong validity, a national form read in the wrong country) fails here.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnc import nanp
from dnc.e164 import PhoneNumberProblem, _to_e164_cached, to_e164

FORMS = (
    "({a}) {e}-{l}",
    "({a}){e}-{l}",
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "{a} {e} {l}",
    "{a}{e}{l}",
    "+1 ({a}) {e}-{l}",
    "+1 {a}-{e}-{l}",
    "+1{a}{e}{l}",
    "+1-{a}-{e}-{l}",
    "+1.{a}.{e}.{l}",
)
REGIONS = ("US", "CA", "PR", "AG", "JM", "GB", "DE", None)


def _full(raw: str, region: str | None) -> str | None:
    """The full path's E.164 answer, or None for a refusal or anything but a plain number."""
    try:
        number = _to_e164_cached(raw, region, False)
    except PhoneNumberProblem:
        return None
    if number.extension or number.aliases or number.unverified or number.plan_change:
        return None
    return number.e164


def _same(raw: str, region: str | None) -> None:
    fast = nanp.read_common(raw, region)
    if fast is not None:  # when the shortcut answers, it is the full path's answer
        assert fast == _full(raw, region), (raw, region)
        assert to_e164(raw, region).e164 == fast


def test_every_area_code_in_every_form_matches_phonenumbers() -> None:
    rng = random.Random(20261201)
    answered = 0
    for area in range(200, 1000):
        for _ in range(3):
            exchange, line = f"{rng.randint(0, 999):03d}", f"{rng.randint(0, 9999):04d}"
            for form in FORMS:
                raw = form.format(a=area, e=exchange, l=line)
                for region in REGIONS:
                    _same(raw, region)
                    answered += nanp.read_common(raw, region) is not None
    assert answered > 10_000  # the shortcut is taken for real numbers, not only refused


def test_validity_is_phonenumbers_validity_over_random_numbers() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        nsn = f"{rng.randint(200, 999)}{rng.randint(0, 9999999):07d}"
        parsed = phonenumbers.parse("+1" + nsn, None)
        assert nanp.valid(nsn) == phonenumbers.is_valid_number(parsed), nsn


def test_caribbean_leading_digits_pick_their_region() -> None:
    # 268 is Antigua's area code (leading digits): its validity is Antigua's, not the US's.
    for nsn in ("2684601234", "2687201234", "8765551234", "8095551234", "7875551234"):
        parsed = phonenumbers.parse("+1" + nsn, None)
        assert nanp.valid(nsn) == phonenumbers.is_valid_number(parsed), nsn


@pytest.mark.parametrize(
    "raw",
    [
        "1 (212) 555-0123",  # national prefix: full path
        "(212) 555-0123 x12",  # extension
        "(212 555-0123",  # unbalanced
        "212--555-0123",
        " 212-555-0123",
        "+1 (212) 555-01234",
        "(012) 555-0123",
        "\uff12\uff11\uff12-555-0123",  # full-width digits: folded on the full path
        "tel:+1-212-555-0123",
        "(212) 555-\u0660\u0661\u0662\u0663",  # Arabic-Indic digits: Python's \\d matches them
        "+1 212 555 \u0966\u0967\u0968\u0969",  # Devanagari
        "212555\uff10\uff11\uff12\uff13",  # full-width
    ],
)
def test_other_forms_take_the_full_path(raw: str) -> None:
    assert nanp.read_common(raw, "US") is None


def test_digits_of_other_scripts_give_the_ascii_number() -> None:
    # Found in review: the shortcut kept the digits as sent ("+1212555\u0660\u0661...").
    for raw in ("(212) 555-\u0660\u0661\u0662\u0663", "212555\uff10\uff11\uff12\uff13"):
        assert to_e164(raw, "US").e164 == "+12125550123"


def test_national_form_is_not_read_as_nanp_outside_nanp() -> None:
    assert nanp.read_common("(212) 555-0123", "GB") is None
    assert nanp.read_common("(212) 555-0123", None) is None
    assert nanp.read_common("+1 212 555 0123", "GB") == _full("+1 212 555 0123", "GB")


def test_invalid_numbers_take_the_full_path() -> None:
    # 555-01xx is fictional but valid by the metadata; an area code 999 is not assigned.
    assert nanp.read_common("(999) 555-0123", "US") is None
    with pytest.raises(PhoneNumberProblem):
        to_e164("(999) 555-0123", "US")


@settings(max_examples=300, deadline=None)
@given(
    area=st.integers(200, 999),
    exchange=st.integers(0, 999),
    line=st.integers(0, 9999),
    form=st.sampled_from(FORMS),
    region=st.sampled_from(REGIONS),
)
def test_property_shortcut_equals_full_path(
    area: int, exchange: int, line: int, form: str, region: str | None
) -> None:
    _same(form.format(a=area, e=f"{exchange:03d}", l=f"{line:04d}"), region)
