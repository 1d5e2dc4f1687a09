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
        ({"region": "ZZ"}, {"region": "unknown_region"}),  # national number: needs the hint
    ],
)
@pytest.mark.parametrize("action", ["optOut", "optIn"])
def test_field_problems(
    overrides: dict[str, object], expected: dict[str, str], action: str
) -> None:
    assert problems_of(fields(eventName=action, **overrides)) == expected


OPTIONAL_PROBLEMS = [
    ({"eventId": "has space"}, {"eventId": "bad_format"}),
    ({"eventId": "x" * 129}, {"eventId": "too_long"}),
    ({"region": "USA", "phoneNumber": "+1 202 555 0123"}, {"region": "bad_format"}),
    ({"region": "ZZ", "phoneNumber": "+1 202 555 0123"}, {"region": "unknown_region"}),
    ({"metadata": ["not", "object"]}, {"metadata": "wrong_type"}),
    ({"metadata": {"note": "x" * 100}}, {"metadata": "too_large"}),
]


@pytest.mark.parametrize(("overrides", "expected"), OPTIONAL_PROBLEMS)
def test_optional_field_problems_refuse_an_opt_in(
    overrides: dict[str, object], expected: dict[str, str]
) -> None:
    assert problems_of(fields(eventName="optIn", **overrides)) == expected


@pytest.mark.parametrize(("overrides", "expected"), OPTIONAL_PROBLEMS)
def test_optional_field_problems_are_dropped_from_an_opt_out(
    overrides: dict[str, object], expected: dict[str, str]
) -> None:
    accepted = build_event(fields(**overrides), POLICY, NOW_MS)
    assert {p.field: p.reason for p in accepted.dropped} == expected
    event = accepted.event
    assert (event.e164, event.action, event.region) == ("+12025550123", Action.OPT_OUT, "US")
    assert (event.metadata, event.eventIdDerived) == (None, True)
    [dropped] = event.dropped or ()
    assert (dropped.field, dropped.reason) == next(iter(expected.items()))
    assert dropped.sent  # what was sent, for the audit record


def test_future_time_refuses_only_an_opt_in_beyond_the_skew() -> None:
    assert problems_of(fields(eventName="optIn", timestamp=NOW_MS + 600_000)) == {
        "timestamp": "in_future"
    }
    for action, sent in (("optIn", NOW_MS + 240_000), ("optOut", NOW_MS + 600_000)):
        event = build_event(fields(eventName=action, timestamp=sent), POLICY, NOW_MS).event
        assert (event.eventMs, event.sentEventMs) == (NOW_MS, sent)
    at_receipt = build_event(fields(timestamp=NOW_MS), POLICY, NOW_MS).event
    assert (at_receipt.eventMs, at_receipt.sentEventMs) == (NOW_MS, None)


def test_a_clamped_event_derives_its_id_from_the_time_sent() -> None:
    # Each delivery of it is clamped to its own receipt: the id must not change with it.
    sent = NOW_MS + 600_000
    one = build_event(fields(timestamp=sent), POLICY, NOW_MS).event
    retry = build_event(fields(timestamp=sent), POLICY, NOW_MS + 5_000).event
    assert one.eventId == retry.eventId and one.eventMs != retry.eventMs


def test_form_metadata_string_is_read_as_json() -> None:
    event = build_event(fields(metadata='{"k": 1}'), POLICY, NOW_MS).event
    assert event.metadata == {"k": 1}


# -- expiresAt (opt-outs only) -----------------------------------------------------------------

EVENT_MS = 1_794_994_200_000  # 2026-11-18T09:30:00Z, the event time of fields()
LATER_MS = NOW_MS + 86_400_000  # a day after intake


def test_event_without_expiry_keeps_its_derived_id() -> None:
    event = build_event(fields(), POLICY, NOW_MS).event
    # Pinned: ids derived before expiries existed must not change (Redis remembers them).
    assert event.eventId == "d-109553a9a37ba0938da02b9b0aed51fd"
    assert event.expiresMs is None
    assert "expiresMs" not in event.model_dump_json(exclude_none=True)


@pytest.mark.parametrize(
    ("raw", "expected_ms"),
    [
        (LATER_MS, LATER_MS),
        (str(LATER_MS), LATER_MS),  # form bodies and CSV cells carry epoch ms as text
        ("2026-11-19T11:06:40Z", LATER_MS),
        ("2026-11-19T12:06:40+01:00", LATER_MS),
    ],
)
def test_opt_out_expiry_is_stored_in_utc_ms(raw: object, expected_ms: int) -> None:
    accepted = build_event(fields(expiresAt=raw), POLICY, NOW_MS)
    assert accepted.event.expiresMs == expected_ms
    assert accepted.warnings == ()


def test_expiry_without_zone_is_utc_with_a_warning() -> None:
    accepted = build_event(fields(expiresAt="2026-11-19T11:06:40"), POLICY, NOW_MS)
    assert accepted.event.expiresMs == LATER_MS
    assert accepted.warnings == ("expiresAt has no time zone; read as UTC",)


def test_empty_expiry_is_no_expiry() -> None:
    assert build_event(fields(expiresAt=""), POLICY, NOW_MS).event.expiresMs is None


def test_expiry_changes_the_derived_id_only_when_given() -> None:
    plain = build_event(fields(), POLICY, NOW_MS).event
    one = build_event(fields(expiresAt=LATER_MS), POLICY, NOW_MS).event
    other = build_event(fields(expiresAt=LATER_MS + 1), POLICY, NOW_MS).event
    again = build_event(fields(expiresAt=str(LATER_MS)), POLICY, NOW_MS + 9).event
    assert len({plain.eventId, one.eventId, other.eventId}) == 3
    assert one.eventId == again.eventId
    assert one.fingerprint == plain.fingerprint  # what the idempotency key stands for


@pytest.mark.parametrize("expiry", [LATER_MS, "soon", "2027-01-01t00:00:00z"])
@pytest.mark.parametrize("name", ["optIn", " OPTIN "])
def test_any_expiry_refuses_an_opt_in(expiry: object, name: str) -> None:
    assert problems_of(fields(eventName=name, expiresAt=expiry)) == {"expiresAt": "not_for_opt_in"}


@pytest.mark.parametrize(
    ("expiry", "reason"),
    [
        (EVENT_MS, "before_event_time"),
        (EVENT_MS - 1, "before_event_time"),
        ("2026-11-18T09:29:59Z", "before_event_time"),
        (EVENT_MS + 1, "already_lapsed"),  # after the event, before intake
        (NOW_MS, "already_lapsed"),
        ("tomorrow", "invalid"),
        ("next year", "invalid"),
        (1_795_086_400, "too_old"),  # epoch seconds sent by mistake
        (253_402_300_800_000, "too_far"),  # after 9999-12-31T23:59:59.999Z
        (True, "wrong_type"),
        (["2027-01-01T00:00:00Z"], "wrong_type"),
    ],
)
def test_an_unusable_expiry_leaves_the_opt_out_permanent(expiry: object, reason: str) -> None:
    accepted = build_event(fields(expiresAt=expiry), POLICY, NOW_MS)
    assert accepted.event.expiresMs is None  # never lapses: the stricter reading
    assert [(p.field, p.reason) for p in accepted.dropped] == [("expiresAt", reason)]
    assert accepted.warnings[-1].startswith(f"expiresAt dropped ({reason}): ")
    assert accepted.warnings[-1].endswith("it never lapses")
    # Its derived id is that of the same opt-out sent without an expiry.
    assert accepted.event.eventId == build_event(fields(), POLICY, NOW_MS).event.eventId


def test_expiry_is_judged_beside_other_bad_fields() -> None:
    # A required field is bad: the opt-out is refused, naming the expiry's problem too.
    got = problems_of(fields(phoneNumber="12", expiresAt=EVENT_MS))
    assert got == {"phoneNumber": "too_short", "expiresAt": "before_event_time"}
    got = problems_of(fields(eventId="has space", eventName="optIn", expiresAt=LATER_MS))
    assert got == {"eventId": "bad_format", "expiresAt": "not_for_opt_in"}
    # Unusable event time: the expiry is only checked against the receive time.
    got = problems_of(fields(timestamp="yesterday", expiresAt=NOW_MS - 1))
    assert got == {"timestamp": "invalid", "expiresAt": "already_lapsed"}
    # Its shape is bad as well as another field's: both named.
    got = problems_of(fields(eventName="subscribe", expiresAt=True, metadata={"n": "x" * 99}))
    assert got == {
        "eventName": "unknown_event_name",
        "expiresAt": "wrong_type",
        "metadata": "too_large",
    }
