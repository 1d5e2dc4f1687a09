"""Issue 11, rules 1, 2 and 5: an opt-out is never refused over an optional field, sender
clocks are not trusted beyond receipt, and what real senders send is read.

Rule 1: a bad optional field (metadata over the cap or not an object, an unusable expiresAt,
an unknown region hint for a number written with its country code, a malformed eventId) is
dropped from an opt-out with a warning, kept in the audit record and counted; an opt-in with
the same problem is refused, the field named. Rule 2: an event time after receipt is recorded
as the receipt time (the sent time kept); times without a zone are read in
``DNC_INTAKE_NAIVE_TIME_ZONE`` and counted by sender. Rule 5: lowercase ``t``/``z`` and a JSON
object sent as ``application/x-www-form-urlencoded``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rich.console import Console

from dnc.errors import EventValidationError, StoreUnavailable
from dnc.events import Action
from dnc.intake import IntakePolicy, build_event
from dnc.keys import RedisKeys
from dnc.settings import IntakeSettings, ReceiverSettings, RedisSettings
from dnc.store import EventStore, RecordStatus, StoreLimits
from dnc_sync.status import QueueStatus, Status, read_queue
from dnc_sync.status_cli import render
from receiver.app import ReceiverApp
from receiver.auth import sign
from receiver.openapi import build_document
from tests.conftest import BEARER, HMAC_KEY, make_app, make_client, make_store
from tests.stored import all_states, latest_event, recorded_event

NOW_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z, a fixed receive time for intake tests
EVENT_MS = 1_794_994_200_000  # 2026-11-18T09:30:00Z
POLICY = IntakePolicy(default_region="US", max_future_skew_s=300, metadata_max_bytes=64)
BIG_METADATA = {"note": "x" * 100}  # over POLICY's 64 bytes
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

_test_start_ms = 0


@pytest.fixture(autouse=True)
def _read_clock_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "_test_start_ms", int(time.time() * 1000))


def now_ms() -> int:
    """Epoch ms when the running test started (read per test, never at import)."""
    return _test_start_ms


def fields(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "phoneNumber": "+1 202 555 0123",
        "eventName": "optOut",
        "timestamp": "2026-11-18T09:30:00Z",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def body(**overrides: object) -> dict[str, Any]:
    """An HTTP body stamped a minute before the test started."""
    return fields(**{"timestamp": now_ms() - 60_000, **overrides})


def problems_of(raw: dict[str, object], policy: IntakePolicy = POLICY) -> dict[str, str]:
    with pytest.raises(EventValidationError) as info:
        build_event(raw, policy, NOW_MS)
    return {p.field: p.reason for p in info.value.problems}


@pytest.fixture
def store(fake_redis: aioredis.Redis) -> EventStore:
    return make_store(fake_redis)


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(make_app(store)) as http:
        yield http


async def latest(store: EventStore, e164: str = "+12025550123") -> dict[str, Any]:
    """The whole event of the number's latest state (from the audit stream: the state keeps
    only what the sync needs, ``dnc.state``)."""
    raw = await recorded_event(store._client, store.keys, e164)
    assert raw is not None
    return raw


async def audit(store: EventStore) -> list[dict[str, Any]]:
    rows = await store._client.xrange(store.keys.audit)
    return [json.loads(fields[b"event"]) for _, fields in rows]


# -- rule 1: the issue's four examples, opt-out kept and opt-in refused ------------------------


ISSUE_EXAMPLES = [
    pytest.param({"metadata": {"note": "x" * 5000}}, "metadata", "too_large", id="metadata-cap"),
    pytest.param({"expiresAt": "EVENT"}, "expiresAt", "before_event_time", id="expiry-at-event"),
    pytest.param({"expiresAt": "EARLIER"}, "expiresAt", "before_event_time", id="expiry-before"),
    pytest.param({"expiresAt": "next year"}, "expiresAt", "invalid", id="expiry-not-a-time"),
    pytest.param({"region": "XX"}, "region", "unknown_region", id="region-unknown"),
]


def _resolve(extra: dict[str, object], event_ms: int) -> dict[str, object]:
    times = {"EVENT": event_ms, "EARLIER": event_ms - 86_400_000}
    return {k: times.get(v, v) if isinstance(v, str) else v for k, v in extra.items()}


@pytest.mark.parametrize(("extra", "field", "reason"), ISSUE_EXAMPLES)
async def test_an_opt_out_with_a_bad_optional_field_is_kept_without_it(
    client: httpx.AsyncClient, store: EventStore, extra: dict[str, object], field: str, reason: str
) -> None:
    sent = body(**_resolve(extra, now_ms() - 60_000))
    response = await client.post("/v1/events", json=sent)
    assert response.status_code == 202, response.text
    payload = response.json()
    assert payload["status"] == "queued"
    [dropped] = payload["dropped"]
    assert (dropped["field"], dropped["reason"]) == (field, reason)
    assert dropped["message"]
    [warning] = payload["warnings"]
    assert warning.startswith(f"{field} dropped ({reason})")
    stored = await latest(store)
    assert stored["action"] == "optOut"
    assert "expiresMs" not in stored  # no expiry: the stricter reading, permanent
    assert "metadata" not in stored or field != "metadata"
    assert stored["region"] == "US"  # the bad hint is not kept as the event's region
    # The audit record keeps what was wrong with the request.
    [recorded] = await audit(store)
    assert [(d["field"], d["reason"]) for d in recorded["dropped"]] == [(field, reason)]
    assert (await store._client.zrange(store.keys.pending, 0, -1)) == [b"+12025550123"]


@pytest.mark.parametrize(("extra", "field", "reason"), ISSUE_EXAMPLES)
async def test_an_opt_in_with_the_same_problem_is_refused(
    client: httpx.AsyncClient, store: EventStore, extra: dict[str, object], field: str, reason: str
) -> None:
    sent = body(eventName="optIn", **_resolve(extra, now_ms() - 60_000))
    response = await client.post("/v1/events", json=sent)
    assert response.status_code == 422, response.text
    named = {p["field"] for p in response.json()["problems"]}
    assert named == {field}
    assert await all_states(store._client, store.keys) == {}


async def test_an_unknown_region_for_a_national_number_is_still_refused(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    # Without a country code the region is what identifies the number: it cannot be dropped.
    response = await client.post("/v1/events", json=body(phoneNumber="020 7946 0123", region="UK"))
    assert response.status_code == 422
    assert response.json()["problems"][0] | {"message": ""} == {
        "field": "region",
        "reason": "unknown_region",
        "message": "",
    }
    assert await all_states(store._client, store.keys) == {}


async def test_several_bad_optional_fields_are_each_named(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    sent = body(
        eventId="has space",
        region="EU",
        metadata=["not", "an", "object"],
        expiresAt="2027-02-30T00:00:00Z",
    )
    response = await client.post("/v1/events", json=sent)
    assert response.status_code == 202, response.text
    dropped = {(d["field"], d["reason"]) for d in response.json()["dropped"]}
    assert dropped == {
        ("eventId", "bad_format"),
        ("region", "unknown_region"),
        ("metadata", "wrong_type"),
        ("expiresAt", "invalid"),
    }
    assert response.json()["eventId"].startswith("d-")  # derived: the bad one was dropped
    assert len(response.json()["warnings"]) == 4


async def test_dropped_fields_are_counted_in_metrics_and_status(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    for offset in (1, 2):
        sent = body(timestamp=now_ms() - offset * 1000, expiresAt="next year")
        assert (await client.post("/v1/events", json=sent)).status_code == 202
    retry = body(timestamp=now_ms() - 1000, expiresAt="next year")
    assert (await client.post("/v1/events", json=retry)).json()["status"] == "duplicate"
    await client.post("/v1/events", json=body(metadata={"x": "y" * 5000}))
    metrics = (await client.get("/metrics")).text
    line = 'dnc_receiver_event_warnings_total{field="expiresAt",reason="invalid"} 2.0'
    assert line in metrics
    assert 'dnc_receiver_event_warnings_total{field="metadata",reason="too_large"} 1.0' in metrics
    queue = await read_queue(store._client, store.keys, now_ms())
    assert queue.warnings_by_reason == {"expiresAt:invalid": 2, "metadata:too_large": 1}


async def test_stored_events_without_drops_keep_their_json(store: EventStore) -> None:
    # Existing data stays byte-identical: the new fields are left out when empty.
    event = build_event(fields(), POLICY, NOW_MS).event
    dumped = json.loads(event.model_dump_json(exclude_none=True))
    assert set(dumped) == {
        "eventId",
        "eventIdDerived",
        "e164",
        "action",
        "eventMs",
        "receivedMs",
        "region",
    }


# -- rule 1: the property ----------------------------------------------------------------------

VALID_NUMBERS = ("+1 202 555 0123", "+44 20 7946 0123", "+33 1 42 68 53 00", "+61 2 9374 4000")
BAD_EXPIRIES = st.one_of(
    st.sampled_from(["next year", "never", "31/12/2027", "2027-02-30T00:00:00Z", "soon"]),
    st.integers(1, 946_684_799_999),  # before 2000 (epoch seconds by mistake)
    st.integers(EVENT_MS - 10**10, EVENT_MS),  # at or before the event time
    st.integers(EVENT_MS + 1, NOW_MS),  # after the event but already lapsed at receipt
    st.integers(253_402_300_800_000, 2**53 - 1),  # after 9999-12-31
    st.booleans(),
    st.lists(st.integers(-1000, 1000), max_size=2),
)
BAD_METADATA = st.one_of(
    st.builds(lambda n: {"note": "x" * n}, st.integers(60, 400)),  # over the 64-byte cap
    st.lists(st.integers(-1000, 1000), max_size=3),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["not json", "[1, 2]", '{"a":' * 40]),
)
BAD_REGIONS = st.one_of(
    st.sampled_from(["XX", "ZZ", "UK", "EU", "usa", "1", "U"]), st.integers(0, 99)
)
BAD_EVENT_IDS = st.sampled_from(["has space", "x" * 129, "caf\u00e9", "tab\there"])
OPTIONAL = {
    "expiresAt": BAD_EXPIRIES,
    "metadata": BAD_METADATA,
    "region": BAD_REGIONS,
    "eventId": BAD_EVENT_IDS,
}


@st.composite
def bad_optionals(draw: st.DrawFn) -> dict[str, object]:
    """At least one bad optional field, any combination of them."""
    names = draw(st.sets(st.sampled_from(sorted(OPTIONAL)), min_size=1))
    return {name: draw(OPTIONAL[name]) for name in sorted(names)}


TIMES = st.one_of(
    st.just("2026-11-18T09:30:00Z"),
    st.just("2026-11-18t09:30:00z"),
    st.just(EVENT_MS),
    st.integers(NOW_MS + 1, NOW_MS + 10**9),  # after receipt: recorded as the receipt time
)


@settings(max_examples=300, deadline=None, database=None)
@given(bad=bad_optionals(), number=st.sampled_from(VALID_NUMBERS), timestamp=TIMES)
def test_property_opt_outs_are_kept_and_opt_ins_refused(
    bad: dict[str, object], number: str, timestamp: object
) -> None:
    raw = {"phoneNumber": number, "eventName": "optOut", "timestamp": timestamp, **bad}
    accepted = build_event(raw, POLICY, NOW_MS)
    event = accepted.event
    assert event.action is Action.OPT_OUT
    dropped = {p.field for p in accepted.dropped}
    assert dropped == set(bad)
    for name in bad:
        assert any(w.startswith(f"{name} dropped (") for w in accepted.warnings), name
    assert event.dropped is not None and {d.field for d in event.dropped} == set(bad)
    if "expiresAt" in bad:
        assert event.expiresMs is None
    if "metadata" in bad:
        assert event.metadata is None
    if "eventId" in bad:
        assert event.eventIdDerived
    assert event.eventMs <= NOW_MS
    with pytest.raises(EventValidationError) as info:
        build_event({**raw, "eventName": "optIn"}, POLICY, NOW_MS)
    named = {p.field for p in info.value.problems}
    assert set(bad) <= named
    assert named <= set(bad) | {"timestamp"}  # an opt-in far ahead is refused as well


def test_property_opt_outs_are_recorded_through_the_receiver() -> None:
    """The same property end to end: every such opt-out is answered 202 and recorded."""
    loop = asyncio.new_event_loop()

    async def post(raw: dict[str, object]) -> tuple[httpx.Response, dict[str, Any] | None]:
        client_redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        store = make_store(client_redis)
        async with make_client(make_app(store)) as http:
            response = await http.post("/v1/events", json=raw)
        found = await recorded_event(client_redis, store.keys, "+12025550123")
        await client_redis.aclose()
        return response, found

    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(bad=bad_optionals())
    def case(bad: dict[str, object]) -> None:
        if isinstance(bad.get("metadata"), dict):
            bad["metadata"] = {"note": "x" * 5000}  # over the receiver's default cap
        received = int(time.time() * 1000)
        for key in ("expiresAt",):
            value = bad.get(key)
            if (
                isinstance(value, int)
                and not isinstance(value, bool)
                and EVENT_MS < value <= NOW_MS
            ):
                bad[key] = received - 1  # already lapsed when the receiver gets it
        raw = {"phoneNumber": "+12025550123", "eventName": "optOut", "timestamp": EVENT_MS, **bad}
        response, stored = loop.run_until_complete(post(raw))
        assert response.status_code == 202, response.text
        assert {d["field"] for d in response.json()["dropped"]} == set(bad)
        assert stored is not None and stored["action"] == "optOut"
        refused, _ = loop.run_until_complete(post({**raw, "eventName": "optIn"}))
        assert refused.status_code == 422
        assert set(bad) <= {p["field"] for p in refused.json()["problems"]}

    try:
        case()
    finally:
        loop.close()


# -- rule 2: sender clocks ---------------------------------------------------------------------


async def test_an_opt_in_stamped_ahead_no_longer_beats_a_later_opt_out(
    fake_redis: aioredis.Redis,
) -> None:
    # The issue's example, on a fixed clock: at R an opt-in arrives stamped R + 4 min (its
    # sender's clock is fast); a minute later the person's real opt-out arrives.
    store = make_store(fake_redis)
    received = NOW_MS
    opt_in = build_event(fields(eventName="optIn", timestamp=received + 240_000), POLICY, received)
    assert opt_in.event.eventMs == received
    assert opt_in.event.sentEventMs == received + 240_000
    assert await store.record(opt_in.event) is RecordStatus.QUEUED
    later = received + 60_000
    opt_out = build_event(fields(timestamp=later), POLICY, later)
    assert await store.record(opt_out.event) is RecordStatus.QUEUED  # was: superseded
    stored = await latest_event(fake_redis, store.keys, "+12025550123")
    assert stored.action is Action.OPT_OUT


async def test_future_stamps_through_the_receiver(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    opt_in = await client.post(
        "/v1/events", json=body(eventName="optIn", timestamp=now_ms() + 240_000)
    )
    assert opt_in.status_code == 202, opt_in.text
    assert opt_in.json()["warnings"][0].startswith("timestamp is after the time of receipt")
    opt_out = await client.post("/v1/events", json=body(timestamp=now_ms() + 60_000))
    assert opt_out.json()["status"] == "queued"
    stored = await latest(store)
    assert stored["action"] == "optOut"
    assert stored["sentEventMs"] == now_ms() + 60_000
    assert stored["eventMs"] == stored["receivedMs"]


async def test_an_opt_out_far_ahead_is_kept_and_an_opt_in_refused(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    far = now_ms() + 30 * 86_400_000
    refused = await client.post("/v1/events", json=body(eventName="optIn", timestamp=far))
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["reason"] == "in_future"
    kept = await client.post("/v1/events", json=body(timestamp=far))
    assert kept.status_code == 202, kept.text
    stored = await latest(store)
    assert (stored["action"], stored["sentEventMs"]) == ("optOut", far)
    assert stored["eventMs"] <= int(time.time() * 1000)


async def test_a_retry_of_a_clamped_event_is_a_duplicate(
    client: httpx.AsyncClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sender's clock is ahead: each delivery is clamped to its own receipt time, so the
    # retry's clamped time differs from the first one's; it is still the same event.
    ahead = now_ms() + 3_600_000
    clock = [now_ms() / 1000]
    monkeypatch.setattr("receiver.app.time.time", lambda: clock[0])
    for sent in (body(timestamp=ahead), body(timestamp=ahead, eventId="studio-77")):
        clock[0] += 1.0
        first = await client.post("/v1/events", json=sent)
        clock[0] += 5.0
        again = await client.post("/v1/events", json=sent)
        assert first.json()["status"] in ("queued", "superseded")
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "duplicate"
        assert again.json()["eventId"] == first.json()["eventId"]
    # The clock catches up: a retry now within the sent time is still the same event.
    clock[0] = ahead / 1000 + 10
    last = await client.post("/v1/events", json=body(timestamp=ahead, eventId="studio-77"))
    assert (last.status_code, last.json()["status"]) == (202, "duplicate")


async def test_a_reused_event_id_is_still_a_conflict_when_clamped(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/v1/events", json=body(eventId="k-9"))
    assert first.json()["status"] == "queued"
    later = body(eventId="k-9", eventName="optIn", timestamp=now_ms() + 200_000)
    other = await client.post("/v1/events", json=later)
    assert other.status_code == 409  # an opt-in must be clean (an opt-out is kept re-keyed)


async def test_importing_future_rows_twice_gives_duplicates(fake_redis: aioredis.Redis) -> None:
    store = make_store(fake_redis)
    sent = NOW_MS + 200_000  # within the skew: the opt-in is kept too
    rows = [
        fields(timestamp=sent),
        fields(timestamp=sent, eventName="optIn", phoneNumber="+12025550199"),
    ]
    first = [build_event(row, POLICY, NOW_MS).event for row in rows]
    assert await store.record_many(first) == [RecordStatus.QUEUED, RecordStatus.QUEUED]
    again = [build_event(row, POLICY, NOW_MS + 60_000).event for row in rows]
    assert await store.record_many(again) == [RecordStatus.DUPLICATE, RecordStatus.DUPLICATE]


async def test_a_failed_later_call_keeps_earlier_clamps(
    fake_redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the clamps of a many-call recording were kept only after the last
    call, so Redis failing on the second call left the first call's clamped opt-outs unknown
    to their retry: a batch resent after its 503 got 409 id_conflict for a recorded opt-out."""
    store = EventStore(fake_redis, RedisKeys("dnc"), StoreLimits(max_batch=1))
    sent = NOW_MS + 200_000  # ahead of receipt: clamped, so each delivery has its own time
    rows = [fields(timestamp=sent), fields(timestamp=sent, phoneNumber="+12025550199")]
    first = [build_event(row, POLICY, NOW_MS).event for row in rows]
    real = store._record_batch
    calls = 0

    async def second_call_fails(groups: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreUnavailable("redis went away")
        return await real(groups)

    monkeypatch.setattr(store, "_record_batch", second_call_fails)
    with pytest.raises(StoreUnavailable):
        await store.record_many(first)
    monkeypatch.setattr(store, "_record_batch", real)
    again = [build_event(row, POLICY, NOW_MS + 60_000).event for row in rows]
    assert await store.record_many(again) == [RecordStatus.DUPLICATE, RecordStatus.QUEUED]


def test_naive_time_zone_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNC_INTAKE_NAIVE_TIME_ZONE", "America/New_York")
    assert IntakeSettings().policy().naive_time_zone == "America/New_York"
    monkeypatch.setenv("DNC_INTAKE_NAIVE_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ValidationError, match="naive_time_zone"):
        IntakeSettings()
    monkeypatch.setenv("DNC_INTAKE_NAIVE_TIME_ZONE", "../../etc/passwd")
    with pytest.raises(ValidationError):
        IntakeSettings()
    monkeypatch.delenv("DNC_INTAKE_NAIVE_TIME_ZONE")
    assert IntakeSettings().policy().naive_time_zone == "UTC"


async def test_a_local_time_opt_out_is_not_superseded_by_an_earlier_opt_in(
    fake_redis: aioredis.Redis,
) -> None:
    # The issue's example: 09:30 in New York (EST, UTC-5) is 14:30Z, after the opt-in at 14:00Z.
    store = make_store(fake_redis)
    eastern = IntakePolicy(default_region="US", naive_time_zone="America/New_York")
    opt_in = build_event(
        fields(eventName="optIn", timestamp="2026-11-18T14:00:00Z"), eastern, NOW_MS + 10**8
    )
    assert await store.record(opt_in.event) is RecordStatus.QUEUED
    opt_out = build_event(fields(timestamp="2026-11-18T09:30:00"), eastern, NOW_MS + 10**8)
    assert opt_out.event.eventMs == 1_795_012_200_000  # 2026-11-18T14:30:00Z
    assert opt_out.warnings == ("timestamp has no time zone; read as America/New_York",)
    assert opt_out.event.naiveTimeZone == "America/New_York"
    assert await store.record(opt_out.event) is RecordStatus.QUEUED
    # Read as UTC (the default), the same opt-out is 09:30Z and loses to the opt-in.
    utc = build_event(fields(timestamp="2026-11-18T09:30:00"), POLICY, NOW_MS + 10**8)
    assert utc.event.eventMs == 1_794_994_200_000


async def test_the_zone_setting_reaches_the_receiver(
    fake_redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_INTAKE_NAIVE_TIME_ZONE", "America/New_York")
    store = make_store(fake_redis)
    settings = ReceiverSettings(bearer_secrets=[BEARER])
    app = ReceiverApp(settings, IntakeSettings().policy(), RedisSettings(), store=store)
    async with make_client(app) as http:
        opt_in = body(eventName="optIn", timestamp="2026-11-18T14:00:00Z")
        assert (await http.post("/v1/events", json=opt_in)).json()["status"] == "queued"
        opt_out = await http.post("/v1/events", json=body(timestamp="2026-11-18T09:30:00"))
    naive = "timestamp has no time zone; read as America/New_York"
    assert opt_out.json() | {"eventId": ""} == {
        "status": "queued",
        "eventId": "",
        "warnings": [naive],
        "notes": [{"field": "timestamp", "reason": "no_time_zone", "message": naive}],
    }
    stored = await latest(store)
    assert (stored["action"], stored["naiveTimeZone"]) == ("optOut", "America/New_York")


def test_naive_expiry_is_read_in_the_same_zone() -> None:
    eastern = IntakePolicy(default_region="US", naive_time_zone="America/New_York")
    accepted = build_event(
        fields(timestamp="2026-11-18T14:00:00Z", expiresAt="2027-07-01T00:00:00"), eastern, NOW_MS
    )
    assert accepted.event.expiresMs == 1_814_414_400_000  # 2027-07-01T04:00:00Z (EDT)
    assert "expiresAt has no time zone; read as America/New_York" in accepted.warnings


async def test_times_without_a_zone_are_counted_by_sender(
    fake_redis: aioredis.Redis,
) -> None:
    store = make_store(fake_redis)
    second = "second-bearer-secret-0123456789"
    app = make_app(store, bearer_secrets=[BEARER, second])
    naive = body(timestamp="2026-11-18T09:30:00")
    async with make_client(app) as first_sender:
        assert (await first_sender.post("/v1/events", json=naive)).status_code == 202
        other = {"Authorization": f"Bearer {second}"}
        for n in (1, 2):
            sent = body(timestamp=f"2026-11-18T09:3{n}:00", phoneNumber="+1 202 555 0199")
            assert (
                await first_sender.post("/v1/events", json=sent, headers=other)
            ).status_code == 202
        signed = json.dumps(body(timestamp="2026-11-18T09:40:00")).encode()
        stamp = int(time.time())
        headers = {
            "Authorization": "",
            "Content-Type": "application/json",
            "X-Signature": sign(HMAC_KEY.encode(), stamp, signed).decode(),
            "X-Signature-Timestamp": str(stamp),
        }
        assert (
            await first_sender.post("/v1/events", content=signed, headers=headers)
        ).status_code == 202
        metrics = (await first_sender.get("/metrics")).text
    assert 'dnc_receiver_naive_times_total{sender="bearer-2"} 2.0' in metrics
    queue = await read_queue(fake_redis, store.keys, now_ms())
    assert queue.naive_times_by_sender == {"bearer-1": 1, "bearer-2": 2, "hmac-1": 1}
    assert queue.warnings_by_reason == {"timestamp:no_time_zone": 4}
    for value in queue.naive_times_by_sender:
        assert BEARER not in value and second not in value


async def test_without_authentication_the_sender_is_unknown(fake_redis: aioredis.Redis) -> None:
    store = make_store(fake_redis)
    app = ReceiverApp(
        ReceiverSettings(auth_disabled=True), IntakePolicy(), RedisSettings(), store=store
    )
    async with make_client(app, auth=False) as http:
        response = await http.post("/v1/events", json=body(timestamp="2026-11-18T09:30:00"))
    assert response.status_code == 202
    queue = await read_queue(fake_redis, store.keys, now_ms())
    assert queue.naive_times_by_sender == {"unknown": 1}


# -- rule 5: what real senders send -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-18t09:30:00z",
        "2026-11-18T09:30:00z",
        "2026-11-18t09:30:00Z",
        "2026-11-18t10:30:00+01:00",
    ],
)
def test_lowercase_t_and_z_are_rfc_3339(text: str) -> None:
    accepted = build_event(fields(timestamp=text), POLICY, NOW_MS)
    assert (accepted.event.eventMs, accepted.warnings) == (EVENT_MS, ())
    expiry = build_event(fields(expiresAt="2027-01-01t00:00:00z"), POLICY, NOW_MS)
    assert (expiry.event.expiresMs, expiry.warnings) == (1_798_761_600_000, ())


async def test_lowercase_times_through_the_receiver(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post("/v1/events", json=body(timestamp="2026-01-01t00:00:00z"))
    assert (response.status_code, response.json()["warnings"]) == (202, [])
    assert (await latest(store))["eventMs"] == 1_767_225_600_000


async def test_a_json_object_sent_as_form_is_read_as_json(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    content = json.dumps(body(phoneNumber="+36 1 234 5678", metadata={"contactId": 42}))
    response = await client.post("/v1/events", content=content, headers=FORM)
    assert response.status_code == 202, response.text
    assert response.json()["warnings"] == [
        "body is a JSON object sent as application/x-www-form-urlencoded; read as JSON"
    ]
    stored = await latest(store, "+3612345678")  # the '+' is a plus sign, not a space
    assert stored["metadata"] == {"contactId": 42}


@pytest.mark.parametrize(
    "content",
    [
        '{"phoneNumber": "+12025550101", "phoneNumber": "+12025550102", "eventName": "optOut",'
        ' "timestamp": 1790000000000}',
        '{"phoneNumber": "+12025550101", "phone\\u004eumber": "+12025550102",'
        ' "eventName": "optOut", "timestamp": 1790000000000}',
    ],
)
async def test_the_duplicate_key_screen_applies_to_json_sent_as_form(
    client: httpx.AsyncClient, store: EventStore, content: str
) -> None:
    response = await client.post("/v1/events", content=content, headers=FORM)
    assert response.status_code == 422
    assert response.json()["problems"][0]["reason"] == "duplicate"
    assert await all_states(store._client, store.keys) == {}


async def test_the_charset_screen_applies_to_json_sent_as_form(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    content = json.dumps(body(metadata={"n": "caf\u00e9"}), ensure_ascii=False).encode("latin-1")
    latin1 = {"Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1"}
    response = await client.post("/v1/events", content=content, headers=latin1)
    assert response.status_code == 202, response.text
    assert (await latest(store))["metadata"] == {"n": "caf\u00e9"}
    rot13 = {"Content-Type": "application/x-www-form-urlencoded; charset=rot13"}
    refused = await client.post("/v1/events", content=content, headers=rot13)
    assert refused.status_code == 415


async def test_a_real_form_that_starts_like_json_stays_a_form(client: httpx.AsyncClient) -> None:
    # Not a JSON object: read as form data, as before (a field named '{x' is ignored).
    content = f"{{x=1&phoneNumber=%2B12025550123&eventName=optOut&timestamp={now_ms() - 1000}"
    response = await client.post("/v1/events", content=content, headers=FORM)
    assert (response.status_code, response.json()["warnings"]) == (202, [])


# -- what the caller and the operator are told -------------------------------------------------


def test_openapi_says_what_is_refused_and_what_is_kept() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    dropped = schemas["Accepted"]["properties"]["dropped"]
    assert dropped["items"]["required"] == ["field", "reason", "message"]
    assert "dropped" not in schemas["Accepted"]["required"]  # only when a field was dropped
    operation = document["paths"]["/v1/events"]["post"]
    assert operation["description"].startswith("Opt-outs are kept, opt-ins must be clean.")
    assert "in_future" in operation["responses"]["422"]["description"]
    fields_doc = schemas["EventBody"]["properties"]
    for name in ("metadata", "expiresAt", "region", "eventId"):
        text = fields_doc[name]["description"]
        assert "opt-out" in text and "refused" in text and "warning" in text, name
    assert "receipt" in fields_doc["timestamp"]["description"]


async def test_the_202_body_matches_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = build_document()["components"]["schemas"]["Accepted"]
    response = await client.post("/v1/events", json=body(region="XX", expiresAt="never"))
    payload = response.json()
    assert set(payload) <= set(schema["properties"]) and set(schema["required"]) <= set(payload)
    for entry in payload["dropped"]:
        assert set(entry) == set(schema["properties"]["dropped"]["items"]["required"])


def test_status_prints_warnings_by_reason_and_times_by_sender() -> None:
    queue = QueueStatus(
        backlog=0,
        oldest_pending_age_s=0.0,
        dead_letters=0,
        rejected=0,
        rejected_by_reason={},
        warnings_by_reason={"expiresAt:invalid": 3, "timestamp:no_time_zone": 2},
        naive_times_by_sender={"bearer-2": 2},
    )
    console = Console(record=True, width=120)
    render(Status(queue, 3600, None, "PREFECT_API_URL is not set"), console)
    text = console.export_text()
    assert re.search(r"accepted with warnings \(per field:reason\)\s*│\s*5", text)
    assert re.search(r"expiresAt:invalid\s*│\s*3", text)
    assert re.search(r"times without a zone, by sender\s*│\s*2", text)
    assert re.search(r"bearer-2\s*│\s*2", text)
    assert Status(queue, 3600, None).as_json()["queue"]["naive_times_by_sender"] == {"bearer-2": 2}


# -- found by a break-it pass: a reused eventId never sinks an opt-out ------------------------


async def test_an_opt_out_under_a_reused_event_id_is_kept(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    # a Studio template that sends a constant id: the next person's opt-out must be kept
    first = await client.post("/v1/events", json=body(eventId="null"))
    assert first.status_code == 202
    other = body(eventId="null", phoneNumber="+1 202 555 0199")
    answer = await client.post("/v1/events", json=other)
    assert answer.status_code == 202, answer.text
    payload = answer.json()
    assert payload["status"] == "queued" and payload["eventId"].startswith("d-")
    assert [(d["field"], d["reason"]) for d in payload["dropped"]] == [("eventId", "reused")]
    stored = await latest(store, "+12025550199")
    assert stored["action"] == "optOut" and stored["dropped"][0]["sent"] == "null"
    again = await client.post("/v1/events", json=other)  # the sender's retry
    assert (again.status_code, again.json()["status"]) == (202, "duplicate")


async def test_an_opt_in_under_a_reused_event_id_is_refused(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=body(eventId="contact-42"))
    answer = await client.post(
        "/v1/events",
        json=body(eventId="contact-42", eventName="optIn", phoneNumber="+1 202 555 0199"),
    )
    assert answer.status_code == 409
    assert answer.json()["problems"][0]["field"] == "eventId"


def test_in_a_dst_overlap_a_later_opt_out_beats_an_earlier_opt_in() -> None:
    # found by a break-it pass: 2026-11-01 01:00-02:00 happens twice in New York; an opt-in at
    # 01:50 (EDT) and an opt-out half an hour later at 01:20 (EST), both written without a zone
    policy = IntakePolicy(naive_time_zone="America/New_York", max_future_skew_s=300)
    now = 1_800_000_000_000
    opt_in = build_event(fields(eventName="optIn", timestamp="2026-11-01T01:50:00"), policy, now)
    opt_out = build_event(fields(timestamp="2026-11-01T01:20:00"), policy, now)
    assert opt_out.event.eventMs > opt_in.event.eventMs


async def test_a_form_timestamp_whose_offset_plus_became_a_space_is_read(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    # found by a break-it pass: senders east of UTC lost every opt-out sent as a form
    content = "phoneNumber=%2B12025550123&eventName=optOut&timestamp=2025-06-01T10:00:00+02:00"
    answer = await client.post(
        "/v1/events",
        content=content,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 202, answer.text
    assert (await latest(store))["eventMs"] == 1_748_764_800_000  # 08:00 UTC
