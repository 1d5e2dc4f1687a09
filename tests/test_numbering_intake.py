"""Issue 11, rules 3 and 4 wired into intake, end to end: the receiver and ``dnc-sync import``.

Rule 3: a number written in a retired form is stored under today's number with a
``phoneNumber`` ``plan_change`` note; an opt-out for a number with other E.164 forms
(Argentina's mobile ``9``) is recorded under each form too, in one atomic store call, each
form a number of its own with its own watermark; an opt-in touches only the form it names.
Rule 4: a possible number the installed metadata does not know is kept for an opt-out with a
``phoneNumber`` ``unverified_number`` note, refused for an opt-in, and dead-lettered with
CXone's reason when CXone refuses it. Every number is fictional (``phonenumbers``' examples,
docs/numbering-plans.md).
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
import redis
import redis.asyncio as aioredis
import respx
from typer.testing import CliRunner

from dnc.cxone.dnc_groups import DncGroupsTarget
from dnc.errors import EventValidationError
from dnc.events import Action
from dnc.intake import IntakePolicy, alias_event_id, build_event
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.store import EventStore, RecordStatus, StoreLimits
from dnc.sync import settle
from dnc_sync import import_cli
from dnc_sync.cli import app as cli_app
from dnc_sync.status import read_queue
from receiver.openapi import build_document
from tests.conftest import make_app, make_client, make_store
from tests.cxone_fakes import API, ISSUER, RECORDS_URL, TOKEN_URL, Sleeps, groups_settings, make_jwt
from tests.stored import all_states, all_states_sync, id_is_kept, recorded_event

NOW_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z, a fixed receive time for intake tests
POLICY = IntakePolicy(default_region="US")
AR_MOBILE = "+5491123456789"  # phonenumbers' AR mobile example: voice form, with the 9
AR_SMS = "+541123456789"  # the same subscriber as SMS reaches them (and address books keep)
MX_TODAY = "+522221234567"  # phonenumbers' MX example
UNVERIFIED = "+12115550123"  # +1 211: the right length, a range no metadata knows (N11)
KEYS = RedisKeys("dnc")

_test_start_ms = 0


@pytest.fixture(autouse=True)
def _read_clock_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "_test_start_ms", int(time.time() * 1000))


def body(**overrides: object) -> dict[str, Any]:
    """An HTTP body for ``AR_MOBILE`` stamped a minute before the test started."""
    base: dict[str, Any] = {
        "phoneNumber": "+54 9 11 2345-6789",
        "eventName": "optOut",
        "timestamp": _test_start_ms - 60_000,
    }
    base.update(overrides)
    return base


def fields(**overrides: object) -> dict[str, object]:
    """Intake fields at a fixed time (``build_event`` tests)."""
    return {"eventName": "optOut", "timestamp": "2026-11-18T09:30:00Z", **overrides}


@pytest.fixture
def store(fake_redis: aioredis.Redis) -> EventStore:
    return make_store(fake_redis)


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(make_app(store)) as http:
        yield http


async def latest(store: EventStore, e164: str) -> dict[str, Any] | None:
    """The whole event of the number's latest state (from the audit stream, ``dnc.state``)."""
    return await recorded_event(store._client, store.keys, e164)


async def pending(store: EventStore) -> set[str]:
    return {m.decode() for m in await store._client.zrange(store.keys.pending, 0, -1)}


async def audit(store: EventStore) -> list[dict[str, Any]]:
    rows = await store._client.xrange(store.keys.audit)
    return [json.loads(row[b"event"]) for _, row in rows]


# -- intake: what build_event makes of it --------------------------------------------------------


def test_an_opt_out_names_every_form_of_its_subscriber() -> None:
    accepted = build_event(fields(phoneNumber="+54 9 11 2345-6789"), POLICY, NOW_MS)
    primary = accepted.event
    assert (primary.e164, primary.aliases, primary.aliasOf) == (AR_MOBILE, (AR_SMS,), None)
    [alias] = accepted.alias_events
    assert alias.e164 == AR_SMS and alias.aliasOf == AR_MOBILE
    assert alias.eventId == alias_event_id(primary.eventId, AR_SMS) == f"{primary.eventId}~{AR_SMS}"
    # The same opt-out otherwise: action, time, receipt, expiry.
    same = ("action", "eventMs", "receivedMs", "expiresMs", "eventIdDerived", "region")
    assert all(getattr(alias, name) == getattr(primary, name) for name in same)
    assert accepted.events == (primary, alias)
    assert accepted.warnings == ()  # nothing was wrong with the request
    # Written in the other form, the opt-out names the mobile form as its alias.
    sms = build_event(fields(phoneNumber="011 2345-6789", region="AR"), POLICY, NOW_MS)
    assert (sms.event.e164, [a.e164 for a in sms.alias_events]) == (AR_SMS, [AR_MOBILE])


def test_an_opt_in_names_only_its_own_form() -> None:
    accepted = build_event(fields(phoneNumber=AR_MOBILE, eventName="optIn"), POLICY, NOW_MS)
    assert (accepted.event.e164, accepted.event.aliases, accepted.alias_events) == (
        AR_MOBILE,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("raw", "region", "change"),
    [
        ("+52 1 222 123 4567", None, "MX-2019-mobile-1"),
        ("045 222 123 4567", "MX", "MX-2019-044-045"),
    ],
)
@pytest.mark.parametrize("action", ["optOut", "optIn"])
def test_a_retired_form_is_stored_under_todays_number_with_a_note(
    raw: str, region: str | None, change: str, action: str
) -> None:
    accepted = build_event(fields(phoneNumber=raw, region=region, eventName=action), POLICY, NOW_MS)
    assert (accepted.event.e164, accepted.event.planChange) == (MX_TODAY, change)
    [note] = accepted.notes
    assert (note.field, note.reason) == ("phoneNumber", "plan_change")
    assert change in note.message and MX_TODAY in note.message
    assert accepted.warnings == (note.message,)
    assert accepted.warning_reasons == ["phoneNumber:plan_change"]
    assert accepted.dropped == ()


def test_an_unverified_opt_out_is_kept_and_flagged() -> None:
    accepted = build_event(fields(phoneNumber="(211) 555-0123"), POLICY, NOW_MS)
    event = accepted.event
    assert (event.e164, event.unverifiedNumber, event.action) == (UNVERIFIED, True, Action.OPT_OUT)
    [note] = accepted.notes
    assert (note.field, note.reason) == ("phoneNumber", "unverified_number")
    assert accepted.warnings[0].startswith("phoneNumber ")
    assert accepted.warning_reasons == ["phoneNumber:unverified_number"]
    assert accepted.alias_events == ()


def test_an_unverified_opt_in_is_refused_as_before() -> None:
    with pytest.raises(EventValidationError) as info:
        build_event(fields(phoneNumber="(211) 555-0123", eventName="optIn"), POLICY, NOW_MS)
    assert [(p.field, p.reason) for p in info.value.problems] == [("phoneNumber", "invalid_number")]


def test_an_unverified_opt_out_with_another_problem_names_only_the_real_one() -> None:
    with pytest.raises(EventValidationError) as info:
        build_event({"phoneNumber": "(211) 555-0123", "eventName": "optOut"}, POLICY, NOW_MS)
    assert [(p.field, p.reason) for p in info.value.problems] == [("timestamp", "missing")]


def test_events_without_these_notes_keep_their_json() -> None:
    event = build_event(fields(phoneNumber="+1 202 555 0123"), POLICY, NOW_MS).event
    dumped = json.loads(event.model_dump_json(exclude_none=True))
    assert not {"aliases", "aliasOf", "planChange", "unverifiedNumber"} & set(dumped)


# -- the receiver ----------------------------------------------------------------------------------


async def test_an_argentine_opt_out_records_both_forms_and_both_are_pending(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post("/v1/events", json=body())
    assert response.status_code == 202, response.text
    payload = response.json()
    assert payload["status"] == "queued"
    assert payload["aliases"] == [{"e164": AR_SMS, "status": "queued"}]
    assert payload["warnings"] == []
    assert await pending(store) == {AR_MOBILE, AR_SMS}
    watermarks = await all_states(store._client, store.keys)
    assert {k: v.decode().split(" ")[0].split(":")[1] for k, v in watermarks.items()} == {
        AR_MOBILE: "optOut",
        AR_SMS: "optOut",
    }
    alias = await latest(store, AR_SMS)
    assert alias is not None and alias["aliasOf"] == AR_MOBILE
    assert alias["eventId"] == f"{payload['eventId']}~{AR_SMS}"
    assert [(e["e164"], e.get("aliasOf")) for e in await audit(store)] == [
        (AR_MOBILE, None),
        (AR_SMS, AR_MOBILE),
    ]


async def test_a_retry_is_a_duplicate_for_every_form(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    for sent in (body(), body(eventId="studio-ar-1", timestamp=_test_start_ms - 30_000)):
        first = await client.post("/v1/events", json=sent)
        again = await client.post("/v1/events", json=sent)
        assert first.json()["status"] in ("queued", "superseded")
        assert again.json()["status"] == "duplicate"
        assert again.json()["aliases"] == [{"e164": AR_SMS, "status": "duplicate"}]
    # two events, each under both forms, and each retry's duplicates: every delivery is kept
    rows = await store._client.xrange(store.keys.audit)
    assert [row[b"status"] for _, row in rows].count(b"duplicate") == 4
    assert len(rows) == 8


async def test_a_retry_of_a_clamped_opt_out_is_a_duplicate_for_every_form(
    client: httpx.AsyncClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sender's clock is ahead: each delivery is recorded at its own receipt time.
    ahead = _test_start_ms + 3_600_000
    clock = [_test_start_ms / 1000]
    monkeypatch.setattr("receiver.app.time.time", lambda: clock[0])
    first = await client.post("/v1/events", json=body(timestamp=ahead))
    clock[0] += 5.0
    again = await client.post("/v1/events", json=body(timestamp=ahead))
    assert first.json()["aliases"] == [{"e164": AR_SMS, "status": "queued"}]
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["aliases"] == [{"e164": AR_SMS, "status": "duplicate"}]


async def test_an_opt_in_touches_only_its_own_form(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await client.post("/v1/events", json=body())
    await store._client.delete(store.keys.pending)  # as if the sync had applied both
    opt_in = await client.post(
        "/v1/events", json=body(eventName="optIn", timestamp=_test_start_ms - 1_000)
    )
    assert opt_in.json()["status"] == "queued" and "aliases" not in opt_in.json()
    assert await pending(store) == {AR_MOBILE}
    mobile, sms = await latest(store, AR_MOBILE), await latest(store, AR_SMS)
    assert mobile is not None and mobile["action"] == "optIn"
    assert sms is not None and sms["action"] == "optOut"  # kept until an opt-in names it


async def test_a_later_opt_in_on_the_alias_form_is_not_overridden(
    client: httpx.AsyncClient,
) -> None:
    # The SMS form was opted in after this opt-out: the alias is superseded, the primary not.
    later = body(phoneNumber=AR_SMS, eventName="optIn", timestamp=_test_start_ms - 1_000)
    assert (await client.post("/v1/events", json=later)).json()["status"] == "queued"
    response = await client.post("/v1/events", json=body())
    assert response.json()["status"] == "queued"
    assert response.json()["aliases"] == [{"e164": AR_SMS, "status": "superseded"}]


async def test_one_request_is_one_store_call(
    client: httpx.AsyncClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real = store._script_input

    def spy(events, group_sizes=None):  # type: ignore[no-untyped-def]
        calls.append([e.e164 for e in events])
        return real(events, group_sizes)

    monkeypatch.setattr(store, "_script_input", spy)
    assert (await client.post("/v1/events", json=body())).status_code == 202
    assert calls == [[AR_MOBILE, AR_SMS]]


async def test_a_refused_opt_out_records_no_form(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    # The eventId was used for another event: the group under it writes nothing (not even
    # the alias copy), and the opt-out is then kept under its derived key, both forms.
    other = body(phoneNumber="+1 202 555 0123", eventId="k-ar")
    assert (await client.post("/v1/events", json=other)).status_code == 202
    response = await client.post("/v1/events", json=body(eventId="k-ar"))
    assert response.status_code == 202, response.text
    assert response.json()["dropped"][0]["reason"] == "reused"
    assert not await id_is_kept(store._client, store.keys, f"k-ar~{AR_SMS}")
    assert await id_is_kept(store._client, store.keys, "k-ar")
    assert await latest(store, AR_SMS) is not None and await latest(store, AR_MOBILE) is not None


async def test_redis_down_records_no_form(
    client: httpx.AsyncClient, store: EventStore, fake_server: fakeredis.FakeServer
) -> None:
    fake_server.connected = False
    assert (await client.post("/v1/events", json=body())).status_code == 503
    fake_server.connected = True
    assert await all_states(store._client, store.keys) == {}


async def test_a_mexican_old_form_is_stored_under_todays_number(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post("/v1/events", json=body(phoneNumber="+52 1 222 123 4567"))
    assert response.status_code == 202, response.text
    payload = response.json()
    [note] = payload["notes"]
    assert (note["field"], note["reason"]) == ("phoneNumber", "plan_change")
    assert payload["warnings"] == [note["message"]] and "MX-2019-mobile-1" in note["message"]
    assert "aliases" not in payload and "dropped" not in payload
    assert await pending(store) == {MX_TODAY}
    stored = await latest(store, MX_TODAY)
    assert stored is not None and stored["planChange"] == "MX-2019-mobile-1"
    metrics = (await client.get("/metrics")).text
    assert 'dnc_receiver_event_warnings_total{field="phoneNumber",reason="plan_change"} 1.0' in (
        metrics
    )


async def test_an_unverified_opt_out_is_kept_and_an_opt_in_refused(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    refused = await client.post(
        "/v1/events", json=body(phoneNumber="(211) 555-0123", eventName="optIn")
    )
    assert refused.status_code == 422
    assert [(p["field"], p["reason"]) for p in refused.json()["problems"]] == [
        ("phoneNumber", "invalid_number")
    ]
    kept = await client.post("/v1/events", json=body(phoneNumber="(211) 555-0123"))
    assert kept.status_code == 202, kept.text
    [note] = kept.json()["notes"]
    assert (note["field"], note["reason"]) == ("phoneNumber", "unverified_number")
    assert kept.json()["warnings"] == [note["message"]]
    assert await pending(store) == {UNVERIFIED}
    [recorded] = await audit(store)  # the audit shows the flag
    assert (recorded["e164"], recorded["unverifiedNumber"]) == (UNVERIFIED, True)
    metrics = (await client.get("/metrics")).text
    line = 'dnc_receiver_event_warnings_total{field="phoneNumber",reason="unverified_number"} 1.0'
    assert line in metrics
    queue = await read_queue(store._client, store.keys, _test_start_ms)
    assert queue.warnings_by_reason == {"phoneNumber:unverified_number": 1}


async def test_the_202_body_with_aliases_and_notes_matches_the_openapi_schema(
    client: httpx.AsyncClient,
) -> None:
    schema = build_document()["components"]["schemas"]["Accepted"]
    assert not {"aliases", "notes"} & set(schema["required"])
    for sent in (body(), body(phoneNumber="(211) 555-0123")):
        payload = (await client.post("/v1/events", json=sent)).json()
        assert set(payload) <= set(schema["properties"]), payload
    aliases = schema["properties"]["aliases"]["items"]
    assert set(aliases["required"]) == {"e164", "status"}


# -- CXone refuses an unverified number: a dead letter with CXone's reason -----------------------


async def test_an_unverified_number_cxone_refuses_is_dead_lettered_with_its_reason(
    fake_redis: aioredis.Redis,
) -> None:
    # The sandbox takes any 7-15 digits (sandbox/dnc_groups.py), so CXone's refusal is
    # played by respx, as in tests/test_cxone_dnc_groups.py.
    store = make_store(fake_redis)
    queue = PendingQueue(fake_redis, store.keys)
    accepted = build_event(fields(phoneNumber="+1 211 555 0123"), POLICY, NOW_MS)
    assert await store.record_group(accepted.events) == [RecordStatus.QUEUED]
    assert await queue.acquire_lease("run-1", 60_000)
    claims = await queue.claim("run-1", 10, now_ms=NOW_MS)
    assert [c.e164 for c in claims] == [UNVERIFIED]
    # the claim carries what the push needs; the flag is in the audit record (dnc.state)
    assert (await recorded_event(fake_redis, store.keys, UNVERIFIED) or {})["unverifiedNumber"]
    refusal = "Invalid phone number."
    async with httpx.AsyncClient() as http:
        with respx.mock(assert_all_called=False) as router:
            router.get(f"{ISSUER}/.well-known/openid-configuration").respond(
                json={"issuer": ISSUER, "token_endpoint": TOKEN_URL}
            )
            router.get(f"{ISSUER}/.well-known/cxone-configuration").respond(
                json={"api_endpoint": API, "tenantId": "tenant-1"}
            )
            router.post(TOKEN_URL).respond(json={"access_token": make_jwt(), "expires_in": 3600})
            post = router.post(RECORDS_URL).respond(
                json={
                    "resultSet": {
                        "errorCount": 1,
                        "recordResults": [
                            {
                                "phoneNumber": "2115550123",
                                "formattedPhone": "2115550123",
                                "success": False,
                                "error": refusal,
                            }
                        ],
                    }
                }
            )
            target = DncGroupsTarget(http, groups_settings(), sleep=Sleeps(), rng=random.Random(3))
            outcomes = await target.apply([c.change() for c in claims])
    assert json.loads(post.calls.last.request.content) == {
        "dncGroupRecords": [{"phoneNumber": "2115550123"}]
    }
    settlement = settle(claims, outcomes)
    assert settlement.dead_letter == [(claims[0], refusal)]
    assert await queue.dead_letter(settlement.dead_letter, now_ms=NOW_MS) == [True]
    letter = (await queue.dead_letters())[UNVERIFIED]
    # the letter names the event (id, action, times); its flags are in the audit record
    assert letter.reason == refusal and letter.event.eventId == accepted.event.eventId
    assert await pending(store) == set()


# -- dnc-sync import ------------------------------------------------------------------------------

HEADER = "phoneNumber,eventName,timestamp,region"


@pytest.fixture
def fake_env(fake_server: fakeredis.FakeServer, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    """The import command's Redis is ``fake_server``; returns a sync client to look at it."""
    monkeypatch.setattr(
        import_cli, "open_redis", lambda settings: fakeredis.FakeAsyncRedis(server=fake_server)
    )
    for name in ("DNC_INTAKE_DEFAULT_REGION", "DNC_REDIS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    return fakeredis.FakeRedis(server=fake_server)


def run_import(*args: str | Path) -> tuple[int, dict[str, int], str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli_app, ["import", *map(str, args)])
    rows = re.findall(r"│\s*([^│]+?)\s*│\s*([\d,.]+)\s*│", result.output)
    counts = {name: int(float(value.replace(",", ""))) for name, value in rows}
    return result.exit_code, counts, result.output


def test_import_applies_the_same_rules(tmp_path: Path, fake_env: redis.Redis) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                "+54 9 11 2345-6789,optOut,2025-01-01T00:00:00Z,",  # both forms
                "+54 9 351 555-1234,optIn,2025-01-01T00:00:00Z,",  # its own form only
                "044 55 1234 5678,optOut,2025-01-01T00:00:00Z,MX",  # retired form
                "(211) 555-0123,optOut,2025-01-01T00:00:00Z,",  # unverified: kept
                "(211) 555-0124,optIn,2025-01-01T00:00:00Z,",  # unverified: refused
            ]
        )
        + "\n"
    )
    code, counts, output = run_import(path)
    assert code == 0, output
    assert counts | {"seconds": 0, "rows/s": 0} == {
        "queued": 4,
        "duplicate": 0,
        "superseded": 0,
        "rejected": 1,
        "rejected phoneNumber:invalid_number": 1,
        "accepted with warnings": 2,
        "warning phoneNumber:plan_change": 1,
        "warning phoneNumber:unverified_number": 1,
        "alias forms of opt-outs recorded": 1,
        "rows read": 5,
        "seconds": 0,
        "rows/s": 0,
    }
    stored = all_states_sync(fake_env, KEYS)  # "<ms>:<action>[:<expiry>] ..." (dnc.state)
    numbers = {k: v.decode().split(" ")[0].split(":")[1] for k, v in stored.items()}
    assert numbers == {
        AR_MOBILE: "optOut",
        AR_SMS: "optOut",
        "+5493515551234": "optIn",
        "+525512345678": "optOut",
        UNVERIFIED: "optOut",
    }
    assert fake_env.zcard(KEYS.pending) == 5
    assert fake_env.hgetall(KEYS.warnings) == {
        b"phoneNumber:plan_change": b"1",
        b"phoneNumber:unverified_number": b"1",
    }
    # Imported again: every row and every alias form a duplicate, nothing counted twice.
    code, counts, output = run_import(path)
    assert (code, counts["duplicate"], counts["queued"]) == (0, 4, 0), output
    assert "alias forms of opt-outs recorded" not in counts
    assert fake_env.hget(KEYS.warnings, "phoneNumber:plan_change") == b"1"


async def test_import_never_splits_an_opt_out_and_its_alias_across_store_calls(
    fake_redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(fake_redis, KEYS, StoreLimits(max_batch=2))
    calls: list[list[str]] = []
    real = store._script_input

    def spy(events, group_sizes=None):  # type: ignore[no-untyped-def]
        calls.append([e.e164 for e in events])
        return real(events, group_sizes)

    monkeypatch.setattr(store, "_script_input", spy)
    rows = [
        fields(phoneNumber="+1 202 555 0123"),
        fields(phoneNumber="+54 9 11 2345-6789"),
        fields(phoneNumber="+1 202 555 0124"),
    ]
    groups = [build_event(row, POLICY, NOW_MS).events for row in rows]
    statuses = await store.record_groups(groups)
    assert statuses == [[RecordStatus.QUEUED], [RecordStatus.QUEUED] * 2, [RecordStatus.QUEUED]]
    assert calls == [["+12025550123"], [AR_MOBILE, AR_SMS], ["+12025550124"]]
