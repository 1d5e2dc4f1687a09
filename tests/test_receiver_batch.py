"""POST /v1/events:batch, in process through httpx.ASGITransport, on fakeredis (as
tests/test_receiver_http.py)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis

from dnc.errors import StoreError
from dnc.intake import AcceptedEvent, IntakePolicy, build_event
from dnc.store import EventStore
from receiver.app import ReceiverApp
from receiver.auth import sign
from receiver.batch_events import runs
from tests.conftest import HMAC_KEY, make_app, make_client, make_store
from tests.stored import state_value

BATCH = "/v1/events:batch"
NDJSON = {"Content-Type": "application/x-ndjson"}
T0_MS = 1_793_000_000_000  # a fixed past time (2026-10-26): never "now" at import


def event(number: str = "(202) 555-0123", **overrides: object) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phoneNumber": number,
        "eventName": "optOut",
        "timestamp": T0_MS,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(json.dumps(e).encode() for e in events) + b"\n"


@pytest.fixture
def store(fake_redis: aioredis.Redis) -> EventStore:
    return make_store(fake_redis)


@pytest.fixture
def app(store: EventStore) -> ReceiverApp:
    return make_app(store)


@pytest.fixture
async def client(app: ReceiverApp) -> httpx.AsyncClient:
    async with make_client(app) as http:
        yield http  # type: ignore[misc]


async def rejected(store: EventStore) -> list[dict[bytes, bytes]]:
    return [row[1] for row in await store._client.xrange(store.keys.rejected)]


async def pending(store: EventStore) -> set[bytes]:
    return set(await store._client.zrange(store.keys.pending, 0, -1))


async def latest_action(store: EventStore, e164: str) -> str:
    """The action of the number's latest event: its watermark starts ``<ms>:<action>``."""
    raw = await state_value(store._client, store.keys, e164)
    assert raw is not None
    return str(raw.decode().split(" ")[0].split(":")[1])


# -- accepted ---------------------------------------------------------------------------------


async def test_json_array_all_valid_is_202(client: httpx.AsyncClient, store: EventStore) -> None:
    events = [event("(202) 555-0123"), event("+1 212 555 0199", eventName="optIn")]
    response = await client.post(BATCH, json=events)
    assert response.status_code == 202, response.text
    payload = response.json()
    assert (payload["accepted"], payload["rejected"]) == (2, 0)
    assert [(r["index"], r["status"]) for r in payload["results"]] == [(0, "queued"), (1, "queued")]
    assert all(r["eventId"].startswith("d-") and r["warnings"] == [] for r in payload["results"])
    assert await pending(store) == {b"+12025550123", b"+12125550199"}
    assert await rejected(store) == []


async def test_ndjson_with_blank_lines(client: httpx.AsyncClient, store: EventStore) -> None:
    raw = b"\n" + ndjson([event("(202) 555-0123")]) + b"\r\n  \n" + ndjson([event("2125550199")])
    response = await client.post(BATCH, content=raw, headers=NDJSON)
    assert response.status_code == 202, response.text
    assert [r["index"] for r in response.json()["results"]] == [0, 1]
    assert await pending(store) == {b"+12025550123", b"+12125550199"}


async def test_a_batch_may_exceed_the_single_event_body_cap(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    events = [event(f"(202) 555-{i:04d}", metadata={"pad": "x" * 300}) for i in range(300)]
    assert len(json.dumps(events)) > 65_536
    response = await client.post(BATCH, json=events)
    assert (response.status_code, response.json()["accepted"]) == (202, 300)


async def test_single_event_rules_apply_to_each_event(client: httpx.AsyncClient) -> None:
    kept = event("+1 202 555 0123", expiresAt="next year", timestamp="2026-01-01T00:00:00")
    response = await client.post(BATCH, json=[kept])
    assert response.status_code == 202
    [result] = response.json()["results"]
    single = (await client.post("/v1/events", json=kept)).json()
    assert result.pop("index") == 0 and single["status"] == "duplicate"
    assert {k: v for k, v in result.items() if k != "status"} == {
        k: v for k, v in single.items() if k != "status"
    }
    assert [d["field"] for d in result["dropped"]] == ["expiresAt"]


# -- mixed: 207 -------------------------------------------------------------------------------


async def test_mixed_batch_is_207_in_order_with_refusals_kept(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    events = [
        event("(202) 555-0123"),
        event("73827"),  # too short
        event("(212) 555-0199", eventName="unsubscribe"),
        event("(312) 555-0142"),
    ]
    response = await client.post(BATCH, json=events)
    assert response.status_code == 207, response.text
    payload = response.json()
    assert (payload["accepted"], payload["rejected"]) == (2, 2)
    results = payload["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == ["queued", "rejected", "rejected", "queued"]
    assert results[1]["httpStatus"] == 422 and results[1]["error"] == "invalid_event"
    assert results[1]["problems"][0]["reason"] == "too_short"
    assert results[2]["problems"][0]["reason"] == "unknown_event_name"
    assert await pending(store) == {b"+12025550123", b"+13125550142"}
    kept = await rejected(store)
    assert [(e[b"status"], e[b"batchIndex"]) for e in kept] == [(b"422", b"1"), (b"422", b"2")]
    assert json.loads(kept[0][b"body"]) == events[1]  # that event's own JSON only
    assert kept[0][b"phoneNumber"] == b"73827" and kept[0][b"sender"] == b"bearer-1"
    assert kept[1][b"path"] == BATCH.encode()
    assert json.loads(kept[0][b"detail"])[0]["reason"] == "too_short"
    counts = await store._client.hgetall(store.keys.rejection_counts)
    assert counts[b"auth:phoneNumber:too_short"] == b"1"


async def test_a_field_given_twice_refuses_that_event_only(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    raw = (
        b'[{"phoneNumber": "2025550123", "eventName": "optOut", "timestamp": 1700000000000},'
        b' {"phoneNumber": "2125550199", "phoneNumber": "3125550142", "eventName": "optOut",'
        b' "timestamp": 1700000000000}]'
    )
    response = await client.post(BATCH, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 207
    second = response.json()["results"][1]
    assert second["problems"] == [
        {"field": "phoneNumber", "reason": "duplicate", "message": second["problems"][0]["message"]}
    ]
    [entry] = await rejected(store)
    assert entry[b"body"].count(b"phoneNumber") == 2  # the raw element, as sent
    assert b"2025550123" not in entry[b"body"]


async def test_event_id_conflict(client: httpx.AsyncClient, store: EventStore) -> None:
    assert (await client.post("/v1/events", json=event(eventId="k-1"))).status_code == 202
    events = [
        event("(212) 555-0199", eventId="k-1", eventName="optIn"),  # opt-in: refused 409
        event("(312) 555-0142", eventId="k-1"),  # opt-out: kept under its derived id
    ]
    response = await client.post(BATCH, json=events)
    assert response.status_code == 207
    refused, kept = response.json()["results"]
    assert (refused["httpStatus"], refused["error"]) == (409, "id_conflict")
    assert refused["problems"][0]["reason"] == "reused"
    assert kept["status"] == "queued" and kept["eventId"].startswith("d-")
    assert kept["dropped"][0] == {
        "field": "eventId",
        "reason": "reused",
        "message": "eventId was already used for a different event",
    }
    [entry] = await rejected(store)
    assert (entry[b"status"], entry[b"batchIndex"]) == (b"409", b"0")
    assert b"+13125550142" in await pending(store)


# -- duplicates and latest-wins -------------------------------------------------------------


async def test_duplicates_within_and_across_batches(client: httpx.AsyncClient) -> None:
    events = [event(eventId="s-1"), event(eventId="s-1"), event("(212) 555-0199")]
    first = await client.post(BATCH, json=events)
    assert [r["status"] for r in first.json()["results"]] == ["queued", "duplicate", "queued"]
    again = await client.post(BATCH, content=ndjson(events), headers=NDJSON)
    assert again.status_code == 202
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 3


@pytest.mark.parametrize(
    ("opt_in_delta_ms", "order"),
    [(1_000, "in-first"), (1_000, "out-first"), (-1_000, "in-first"), (0, "in-first")],
)
async def test_opt_out_and_opt_in_in_one_batch_follow_latest_wins(
    fake_server: fakeredis.FakeServer,
    opt_in_delta_ms: int,
    order: str,
) -> None:
    out = event("(202) 555-0123", timestamp=T0_MS)
    opt_in = event("202-555-0123", eventName="optIn", timestamp=T0_MS + opt_in_delta_ms)
    events = [opt_in, out] if order == "in-first" else [out, opt_in]
    batch_store = make_store(fakeredis.FakeAsyncRedis(server=fake_server), "batch")
    single_store = make_store(fakeredis.FakeAsyncRedis(server=fake_server), "single")
    async with make_client(make_app(batch_store)) as http:
        batched = [r["status"] for r in (await http.post(BATCH, json=events)).json()["results"]]
    async with make_client(make_app(single_store)) as http:
        singles = [(await http.post("/v1/events", json=e)).json()["status"] for e in events]
    assert batched == singles
    expected = "optIn" if opt_in_delta_ms > 0 else "optOut"
    assert await latest_action(batch_store, "+12025550123") == expected
    assert await latest_action(single_store, "+12025550123") == expected


async def test_a_rekeyed_opt_out_is_recorded_before_later_events_of_its_number(
    fake_server: fakeredis.FakeServer,
) -> None:
    """Found in review: an opt-out whose caller id was taken was re-recorded under its derived
    id after the whole batch, so a later opt-in of the number (same time) was answered queued
    where one by one says superseded, and sat in Redis as the number's latest meanwhile."""
    taken = event("(202) 555-0199", eventId="B", timestamp=T0_MS - 5_000)
    out = event("(202) 555-0123", eventId="B", timestamp=T0_MS + 2_000)
    opt_in = event("202-555-0123", eventName="optIn", timestamp=T0_MS + 2_000)
    statuses = []
    for name, batched in (("batch", True), ("single", False)):
        store = make_store(fakeredis.FakeAsyncRedis(server=fake_server), name)
        async with make_client(make_app(store)) as http:
            assert (await http.post("/v1/events", json=taken)).status_code == 202
            if batched:
                answer = (await http.post(BATCH, json=[out, opt_in])).json()["results"]
                statuses.append([r["status"] for r in answer])
            else:
                statuses.append([(await http.post("/v1/events", json=e)).json()["status"]
                                 for e in (out, opt_in)])  # fmt: skip
        assert await latest_action(store, "+12025550123") == "optOut"
    assert statuses[0] == statuses[1] == ["queued", "superseded"]


def test_runs_never_hold_a_number_twice() -> None:
    def accepted(number: str) -> AcceptedEvent:
        fields = event(number, timestamp=T0_MS)
        return build_event(fields, IntakePolicy(), T0_MS + 1_000, sender="bearer-0")

    items = [(i, accepted(n)) for i, n in enumerate(["+12025550101", "+12025550102",
             "+12025550101", "+12025550103", "+12025550102"])]  # fmt: skip
    assert [[i for i, _ in run] for run in runs(items)] == [[0, 1], [2, 3, 4]]


# -- whole-request refusals -----------------------------------------------------------------


async def test_over_the_event_limit_is_413(store: EventStore) -> None:
    async with make_client(make_app(store, max_batch_events=3)) as http:
        response = await http.post(BATCH, json=[event(f"(202) 555-{i:04d}") for i in range(4)])
        assert response.status_code == 413
        assert response.json()["error"] == "too_many_events"
        assert (response.json()["limit"], response.json()["events"]) == (3, 4)
        lines = ndjson([event(f"(202) 555-{i:04d}") for i in range(4)])
        assert (await http.post(BATCH, content=lines, headers=NDJSON)).status_code == 413
        fits = await http.post(BATCH, json=[event(f"(202) 555-{i:04d}") for i in range(3)])
        assert fits.status_code == 202
    assert len(await pending(store)) == 3


async def test_over_the_batch_body_cap_is_413(store: EventStore) -> None:
    async with make_client(make_app(store, max_batch_body_bytes=2048)) as http:
        response = await http.post(BATCH, json=[event(f"(202) 555-{i:04d}") for i in range(40)])
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    assert await pending(store) == set()


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "error", "says"),
    [
        (b"[]", "application/json", 422, "empty_batch", "no event"),
        (b"\n \n", "application/x-ndjson", 422, "empty_batch", "no event"),
        (b'{"phoneNumber": "2025550123"}', "application/json", 400, "malformed_body", "array"),
        (b"[1, 2]", "application/json", 400, "malformed_body", "element 0"),
        (b"[{}, []]", "application/json", 400, "malformed_body", "element 1"),
        (b"[{}, ", "application/json", 400, "malformed_body", "not valid JSON"),
        (b'{}\n{"a": \n', "application/x-ndjson", 400, "malformed_body", "line 2"),
        (b"{}\n[]\n", "application/x-ndjson", 400, "malformed_body", "line 2 is not a JSON obj"),
    ],
)
async def test_a_body_that_is_not_a_batch(
    client: httpx.AsyncClient,
    store: EventStore,
    raw: bytes,
    content_type: str,
    status: int,
    error: str,
    says: str,
) -> None:
    response = await client.post(BATCH, content=raw, headers={"Content-Type": content_type})
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert says in response.json()["message"]
    assert (await rejected(store))[-1][b"status"] == str(status).encode()


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "application/json; charset=klingon"],
)
async def test_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(BATCH, content=b"[]", headers={"Content-Type": content_type})
    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")


async def test_405_and_401(app: ReceiverApp, store: EventStore) -> None:
    async with make_client(app) as http:
        assert (await http.get(BATCH)).status_code == 405
    async with make_client(app, auth=False) as anonymous:
        response = await anonymous.post(BATCH, json=[event()])
        wrong = await anonymous.post(
            BATCH, json=[event()], headers={"Authorization": "Bearer wrong-secret-0123456789"}
        )
    assert (response.status_code, wrong.status_code) == (401, 401)
    assert response.json() == {"error": "unauthorized", "message": "missing or wrong credentials"}
    assert await pending(store) == set() and await rejected(store) == []


async def test_hmac_signature_over_the_whole_batch(app: ReceiverApp, store: EventStore) -> None:
    raw = json.dumps([event(), event("(212) 555-0199"), event("73827")]).encode()
    now_s = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": str(now_s),
        "X-Signature": sign(HMAC_KEY.encode(), now_s, raw).decode(),
    }
    async with make_client(app, auth=False) as signed:
        tampered = await signed.post(BATCH, content=raw.replace(b"0199", b"0198"), headers=headers)
        assert tampered.status_code == 401
        assert await pending(store) == set()
        response = await signed.post(BATCH, content=raw, headers=headers)
    assert response.status_code == 207, response.text
    assert await pending(store) == {b"+12025550123", b"+12125550199"}
    [entry] = await rejected(store)
    assert entry[b"sender"] == b"hmac-1"


# -- Redis trouble --------------------------------------------------------------------------


async def test_redis_down_is_503_for_the_whole_batch(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer, store: EventStore
) -> None:
    events = [event(), event("73827")]
    fake_server.connected = False
    response = await client.post(BATCH, json=events)
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json() == {"error": "redis_unavailable", "message": "try again later"}
    fake_server.connected = True
    assert await pending(store) == set() and await rejected(store) == []
    again = await client.post(BATCH, json=events)
    assert again.status_code == 207
    assert [r["status"] for r in again.json()["results"]] == ["queued", "rejected"]


async def test_a_refusal_that_cannot_be_kept_is_503_and_a_resend_is_safe(
    client: httpx.AsyncClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [event(), event("73827")]

    async def broken(entries: object) -> None:
        raise StoreError("redis error: ResponseError")

    with monkeypatch.context() as patch:
        patch.setattr(store, "record_rejections", broken)
        response = await client.post(BATCH, json=events)
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert "results" not in response.json()
    again = await client.post(BATCH, json=events)
    assert again.status_code == 207
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "rejected"]
    assert len(await rejected(store)) == 1


# -- logs, metrics, contract ----------------------------------------------------------------


async def test_one_log_line_per_batch_without_numbers(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    events = [event(f"(202) 555-{i:04d}") for i in range(5)] + [event("+1 202 555 01")]
    with caplog.at_level(logging.INFO, logger="dnc.receiver"):
        await client.post(BATCH, json=events)
    [line] = [r for r in caplog.records if r.name == "dnc.receiver"]
    assert line.getMessage() == "batch request" and line.levelname == "INFO"
    fields = line.fields  # type: ignore[attr-defined]
    assert (fields["status"], fields["events"], fields["accepted"], fields["rejected"]) == (
        207,
        6,
        5,
        1,
    )
    assert fields["queued"] == 5
    assert "555" not in caplog.text and "0123" not in json.dumps(fields)


async def test_metrics_count_each_event(client: httpx.AsyncClient) -> None:
    await client.post(BATCH, json=[event(), event(), event("12")])
    text = (await client.get("/metrics")).text
    assert 'dnc_receiver_requests_total{outcome="queued",reason=""} 1.0' in text
    assert 'dnc_receiver_requests_total{outcome="duplicate",reason=""} 1.0' in text
    assert 'outcome="rejected",reason="invalid_event:too_short"} 1.0' in text


async def test_openapi_documents_the_batch_path(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    operation = doc["paths"][BATCH]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "application/ndjson",  # accepted too: found in review missing from the document
    }
    assert {"202", "207", "400", "401", "413", "415", "422", "503"} <= set(operation["responses"])
    schemas = doc["components"]["schemas"]
    assert {"BatchResult", "BatchAccepted", "BatchRejected"} <= set(schemas)
    example = operation["responses"]["207"]["content"]["application/json"]["example"]
    assert [r["status"] for r in example["results"]] == ["queued", "rejected"]
