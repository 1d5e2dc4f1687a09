"""Intake: raw fields to a stored event, or every problem named at once."""

from __future__ import annotations

import pytest

from dnc.errors import EventValidationError
from dnc.events import Action
from dnc.intake import IntakePolicy, build_event, derive_event_id

NOW_MS = 1_795_000_000_000
POLICY = IntakePolicy(default_region="US", max_future_skew_s=300, metadata_max_bytes=64)


def fields(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "phoneNumber": "(202) 555-0123",
        "eventName": "optOut",
        "timestamp": "2026-11-18T09:30:00Z",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def problems_of(raw: dict[str, object], policy: IntakePolicy = POLICY) -> dict[str, str]:
    with pytest.raises(EventValidationError) as info:
        build_event(raw, policy, NOW_MS)
    return {p.field: p.reason for p in info.value.problems}


def test_valid_event_is_normalised() -> None:
    accepted = build_event(fields(metadata={"agent": "a1"}), POLICY, NOW_MS)
    event = accepted.event
    assert event.e164 == "+12025550123"
    assert event.action is Action.OPT_OUT
    assert event.eventMs == 1_794_994_200_000
    assert event.receivedMs == NOW_MS
    assert event.metadata == {"agent": "a1"}
    assert event.eventIdDerived and event.eventId == derive_event_id(event.fingerprint)
    assert accepted.warnings == ()


@pytest.mark.parametrize("name", ["optout", "OPTOUT", "OptOut", " optOut "])
def test_event_name_is_case_insensitive(name: str) -> None:
    assert build_event(fields(eventName=name), POLICY, NOW_MS).event.action is Action.OPT_OUT


def test_caller_event_id_is_kept() -> None:
    event = build_event(fields(eventId="studio-123"), POLICY, NOW_MS).event
    assert (event.eventId, event.eventIdDerived) == ("studio-123", False)


def test_same_event_derives_same_id_and_other_time_another() -> None:
    one = build_event(fields(), POLICY, NOW_MS).event.eventId
    again = build_event(fields(phoneNumber="+1 202 555 0123"), POLICY, NOW_MS + 5).event.eventId
    later = build_event(fields(timestamp="2026-11-18T09:30:01Z"), POLICY, NOW_MS).event.eventId
    assert one == again != later


def test_naive_timestamp_warns() -> None:
    accepted = build_event(fields(timestamp="2026-11-18T09:30:00"), POLICY, NOW_MS)
    assert accepted.warnings == ("timestamp has no time zone; read as UTC",)


def test_region_field_overrides_default() -> None:
    event = build_event(fields(phoneNumber="020 7946 0123", region="gb"), POLICY, NOW_MS).event
    assert (event.e164, event.region) == ("+442079460123", "GB")


def test_no_default_region_needs_country_code() -> None:
    policy = IntakePolicy(default_region=None)
    assert problems_of(fields(), policy) == {"phoneNumber": "invalid_country_code"}
    assert build_event(fields(phoneNumber="+1 202 555 0123"), policy, NOW_MS).event.e164


def test_every_missing_field_is_named() -> None:
    assert problems_of({}) == {
        "phoneNumber": "missing",
        "eventName": "missing",
        "timestamp": "missing",
    }


def test_shape_and_meaning_problems_are_reported_together() -> None:
    got = problems_of(fields(eventName="subscribe", phoneNumber="12", timestamp=1_000))
    assert got == {
        "eventName": "unknown_event_name",
        "phoneNumber": "too_short",
        "timestamp": "too_old",
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"phoneNumber": 2025550123}, {"phoneNumber": "wrong_type"}),
        ({"phoneNumber": ""}, {"phoneNumber": "empty"}),
        ({"phoneNumber": "1" * 101}, {"phoneNumber": "too_long"}),
        ({"timestamp": True}, {"timestamp": "wrong_type"}),
        ({"timestamp": NOW_MS + 600_000}, {"timestamp": "in_future"}),
        ({"eventId": "has space"}, {"eventId": "bad_format"}),
        ({"eventId": "x" * 129}, {"eventId": "too_long"}),
        ({"region": "USA"}, {"region": "bad_format"}),
        ({"region": "ZZ"}, {"region": "unknown_region"}),
        ({"metadata": ["not", "object"]}, {"metadata": "wrong_type"}),
        ({"metadata": {"note": "x" * 100}}, {"metadata": "too_large"}),
    ],
)
def test_field_problems(overrides: dict[str, object], expected: dict[str, str]) -> None:
    assert problems_of(fields(**overrides)) == expected


def test_form_metadata_string_is_read_as_json() -> None:
    event = build_event(fields(metadata='{"k": 1}'), POLICY, NOW_MS).event
    assert event.metadata == {"k": 1}
