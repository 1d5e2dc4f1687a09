"""Every answer of the receiver, in process through httpx.ASGITransport, on fakeredis."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.store import EventStore, StoreLimits
from receiver.app import ReceiverApp
from tests.conftest import make_app, make_client, make_store
from tests.stored import latest_event, numbers_with_state, recorded_event

NOT_JSON = "body is not valid JSON (or nests deeper or holds longer numbers than accepted)"


_test_start_ms = 0  # set for each test by the autouse fixture below


@pytest.fixture(autouse=True)
def _read_clock_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "_test_start_ms", int(time.time() * 1000))


def now_ms() -> int:
    """Epoch ms when the running test started: the same value for every call in one test (so
    repeated bodies are identical), read per test, never at import (a long suite reaches a
    module's tests minutes after importing it)."""
    return _test_start_ms


def body(**overrides: object) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phoneNumber": "(202) 555-0123",
        "eventName": "optOut",
        "timestamp": now_ms() - 60_000,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


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
    rows = await store._client.xrange(store.keys.rejected)
    return [row[1] for row in rows]


async def refused_unauthenticated(store: EventStore) -> list[dict[bytes, bytes]]:
    rows = await store._client.xrange(store.keys.rejected_unauthenticated)
    return [row[1] for row in rows]


async def pending(store: EventStore) -> list[bytes]:
    return list(await store._client.zrange(store.keys.pending, 0, -1))


# -- 202 ------------------------------------------------------------------------------------


async def test_queued(client: httpx.AsyncClient, store: EventStore) -> None:
    response = await client.post("/v1/events", json=body())
    assert response.status_code == 202
    payload = response.json()
    assert payload["status"] == "queued" and payload["warnings"] == []
    assert payload["eventId"].startswith("d-")
    assert await pending(store) == [b"+12025550123"]


async def test_webhook_alias(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook", json=body())
    assert (response.status_code, response.json()["status"]) == (202, "queued")


async def test_duplicate(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/events", json=body(eventId="studio-1"))
    again = await client.post("/v1/events", json=body(eventId="studio-1"))
    assert first.json()["status"] == "queued"
    assert (again.status_code, again.json()) == (
        202,
        {"status": "duplicate", "eventId": "studio-1", "warnings": []},
    )


async def test_studio_retry_without_event_id_is_duplicate(client: httpx.AsyncClient) -> None:
    statuses = [(await client.post("/v1/events", json=body())).json()["status"] for _ in range(3)]
    assert statuses == ["queued", "duplicate", "duplicate"]


async def test_superseded(client: httpx.AsyncClient, store: EventStore) -> None:
    newer = body(eventName="optIn", timestamp=now_ms() - 1_000)
    await client.post("/v1/events", json=newer)
    response = await client.post("/v1/events", json=body())
    assert (response.status_code, response.json()["status"]) == (202, "superseded")
    latest = await recorded_event(store._client, store.keys, "+12025550123")
    assert latest is not None and latest["action"] == "optIn"


async def test_naive_timestamp_warns(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json=body(timestamp="2026-01-01T00:00:00"))
    assert response.status_code == 202
    assert response.json()["warnings"] == ["timestamp has no time zone; read as UTC"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=UTF-8",
        "application/json;charset=utf-8",
    ],
)
async def test_json_content_types(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/v1/events", content=json.dumps(body()), headers={"Content-Type": content_type}
    )
    assert response.status_code == 202


async def test_form_body_as_studio_sends_it(client: httpx.AsyncClient, store: EventStore) -> None:
    form = {
        "phoneNumber": "202-555-0123",
        "eventName": "OPTIN",
        "timestamp": str(now_ms() - 5_000),
        "eventId": "",
        "region": "",
        "metadata": '{"contactId": "42"}',
    }
    response = await client.post("/v1/events", data=form)
    assert response.status_code == 202, response.text
    latest = await recorded_event(store._client, store.keys, "+12025550123")
    assert latest is not None
    assert (latest["action"], latest["metadata"]) == ("optIn", {"contactId": "42"})


async def test_form_with_latin1_charset(client: httpx.AsyncClient) -> None:
    content = (
        "phoneNumber=%2B1+202+555+0123&eventName=optOut&timestamp="
        + str(now_ms() - 5_000)
        + "&metadata=%7B%22n%22%3A%22caf%E9%22%7D"
    )
    response = await client.post(
        "/v1/events",
        content=content,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1"},
    )
    assert response.status_code == 202, response.text


# -- 4xx ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b"{not json", "application/json", NOT_JSON),
        (b"[1, 2]", "application/json", "body must be a JSON object"),
        (b'"text"', "application/json", "body must be a JSON object"),
        (b"\xff\xfe{}", "application/json", NOT_JSON),
        (b"", "application/json", NOT_JSON),
        (b"[" * 5000 + b"]" * 5000, "application/json", NOT_JSON),
        (b"", "application/x-www-form-urlencoded", "form body has no fields"),
        (b"phoneNumber=%ff%fe", "application/x-www-form-urlencoded", "body is not valid form data"),
    ],
)
async def test_400_malformed_body(
    client: httpx.AsyncClient, store: EventStore, raw: bytes, content_type: str, message: str
) -> None:
    response = await client.post("/v1/events", content=raw, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json() == {"error": "malformed_body", "message": message}
    assert (await rejected(store))[-1][b"status"] == b"400"


async def test_401_without_credentials(app: ReceiverApp, store: EventStore) -> None:
    async with make_client(app, auth=False) as anonymous:
        response = await anonymous.post("/v1/events", json=body())
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": "missing or wrong credentials"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert await pending(store) == []
    assert await rejected(store) == []  # a caller without the secret cannot fill this one
    entry = (await refused_unauthenticated(store))[-1]
    assert entry[b"status"] == b"401" and b"body" not in entry


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer wrong-secret-0123456789",
        b"Basic dGVzdA==",
        b"Bearer",
        b"bearer\xff\xfe\x00",
        "Bearer t\u00e9st-bearer-secret-012345678".encode(),
        b"Bearer test-bearer-secret-012345678",
    ],
)
async def test_401_wrong_credentials(app: ReceiverApp, authorization: bytes) -> None:
    async with make_client(app, auth=False) as anonymous:
        response = await anonymous.post(
            "/v1/events", json=body(), headers={"Authorization": authorization}
        )
    assert response.status_code == 401
    assert "secret" not in response.text


async def test_405_wrong_method(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/events")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


async def test_405_on_health_path(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")
    assert (await client.head("/healthz")).status_code == 200  # as Allow says


async def test_404_unknown_path(client: httpx.AsyncClient, store: EventStore) -> None:
    response = await client.post("/v2/events", json=body())
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert (await refused_unauthenticated(store))[-1][b"status"] == b"404"


async def test_413_declared_length(client: httpx.AsyncClient, store: EventStore) -> None:
    big = body(metadata={"pad": "x" * 70_000})
    response = await client.post("/v1/events", json=big)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert await pending(store) == []


async def test_413_chunked_without_content_length(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"phoneNumber": "2025550123", "metadata": {"pad": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}}'

    response = await client.post(
        "/v1/events", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_body_cap_is_configurable(store: EventStore) -> None:
    app = make_app(store, max_body_bytes=1024)
    async with make_client(app) as http:
        response = await http.post("/v1/events", json=body(metadata={"pad": "x" * 1100}))
    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/json; charset=klingon",
        None,
    ],
)
async def test_415_content_type(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/events", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


async def test_422_names_each_field(client: httpx.AsyncClient, store: EventStore) -> None:
    response = await client.post(
        "/v1/events", json={"phoneNumber": "73827", "eventName": "unsubscribe"}
    )
    assert response.status_code == 422
    problems = {p["field"]: p["reason"] for p in response.json()["problems"]}
    assert problems == {
        "phoneNumber": "too_short",
        "eventName": "unknown_event_name",
        "timestamp": "missing",
    }
    entry = (await rejected(store))[-1]
    assert entry[b"status"] == b"422"
    assert b"73827" in entry[b"body"]  # kept for audit in Redis (never in logs)
    assert await pending(store) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("SUPPORT", "not_a_number"),
        ("+999 123 4567", "invalid_country_code"),
        ("+1 202", "too_short"),
        ("+1 202 555 0123 4444 5555", "too_long"),
        ("5555555555", "invalid_number"),
    ],
)
async def test_422_phone_reasons(client: httpx.AsyncClient, raw: str, reason: str) -> None:
    # An opt-in: an opt-out for a possible number the metadata does not know (5555555555:
    # area code 555) is kept, flagged (tests/test_numbering_intake.py).
    response = await client.post("/v1/events", json=body(phoneNumber=raw, eventName="optIn"))
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {
            "field": "phoneNumber",
            "reason": reason,
            "message": response.json()["problems"][0]["message"],
        }
    ]
    assert response.json()["problems"][0]["message"].startswith("phoneNumber ")
    for_opt_out = await client.post("/v1/events", json=body(phoneNumber=raw))
    if reason == "invalid_number":
        assert for_opt_out.status_code == 202
        assert for_opt_out.json()["notes"][0]["reason"] == "unverified_number"
    else:
        assert for_opt_out.json()["problems"][0]["reason"] == reason


async def test_422_opt_in_far_in_the_future(client: httpx.AsyncClient) -> None:
    sent = body(eventName="optIn", timestamp=now_ms() + 600_000)
    response = await client.post("/v1/events", json=sent)
    assert response.status_code == 422
    assert response.json()["problems"][0]["reason"] == "in_future"
    # An opt-out is never refused for its clock: recorded at the time of receipt.
    kept = await client.post("/v1/events", json=body(timestamp=now_ms() + 600_000))
    assert kept.status_code == 202


async def test_409_event_id_reused(client: httpx.AsyncClient, store: EventStore) -> None:
    await client.post("/v1/events", json=body(eventId="k-1"))
    response = await client.post("/v1/events", json=body(eventId="k-1", eventName="optIn"))
    assert response.status_code == 409
    assert response.json()["problems"][0] == {
        "field": "eventId",
        "reason": "reused",
        "message": "eventId was already used for a different event",
    }
    assert (await rejected(store))[-1][b"status"] == b"409"


# -- 503 and health -------------------------------------------------------------------------


async def test_503_when_a_pooled_connection_was_reset(
    client: httpx.AsyncClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvloop's error for a write on a connection a dying primary reset; redis-py passes it on
    async def reset(*args: object, **kwargs: object) -> object:
        raise RuntimeError(
            "unable to perform operation on <TCPTransport closed=True reading=False>; "
            "the handler is closed"
        )

    monkeypatch.setattr(store, "_record_script", reset)
    response = await client.post("/v1/events", json=body())
    assert response.status_code == 503, response.text  # retried by the sender, not a 500
    assert response.headers["retry-after"] == "5"


async def test_503_when_redis_is_down(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer
) -> None:
    fake_server.connected = False
    response = await client.post("/v1/events", json=body())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "redis_unavailable"
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.headers["retry-after"]) == (503, "5")
    assert (await client.get("/healthz")).status_code == 200


async def test_recovers_when_redis_comes_back(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer, store: EventStore
) -> None:
    fake_server.connected = False
    assert (await client.post("/v1/events", json=body())).status_code == 503
    fake_server.connected = True
    response = await client.post("/v1/events", json=body())
    assert (response.status_code, response.json()["status"]) == (202, "queued")
    assert await pending(store) == [b"+12025550123"]


async def test_refusal_that_cannot_be_kept_asks_for_a_retry(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer, app: ReceiverApp
) -> None:
    # A 422 while Redis is down would lose the event: nothing keeps it for audit, and CXone
    # does not retry a 4xx. A 503 makes Studio deliver it again.
    fake_server.connected = False
    response = await client.post("/v1/events", json=body(phoneNumber="12"))
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    async with make_client(app, auth=False) as anonymous:  # nothing to keep: plain 401
        assert (await anonymous.post("/v1/events", json=body())).status_code == 401


async def test_readyz_and_healthz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_health_needs_no_auth(app: ReceiverApp) -> None:
    async with make_client(app, auth=False) as anonymous:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await anonymous.get(path)).status_code == 200, path


async def test_redis_error_counters_are_at_zero_before_any_error(client: httpx.AsyncClient) -> None:
    # the runbook's 503 case says to watch it: absent until the first error, it could not be
    text = (await client.get("/metrics")).text
    for kind in ("unavailable", "error"):
        assert f'dnc_receiver_redis_errors_total{{kind="{kind}"}} 0.0' in text


async def test_metrics_count_outcomes(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=body())
    await client.post("/v1/events", json=body())
    await client.post("/v1/events", json=body(phoneNumber="12"))
    text = (await client.get("/metrics")).text
    assert 'dnc_receiver_requests_total{outcome="queued",reason=""} 1.0' in text
    assert 'dnc_receiver_requests_total{outcome="duplicate",reason=""} 1.0' in text
    assert 'outcome="rejected",reason="invalid_event:too_short"} 1.0' in text
    assert "dnc_receiver_request_seconds_bucket" in text


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    operation = doc["paths"]["/v1/events"]["post"]
    assert set(operation["responses"]) == {
        *("202", "400", "401", "405", "408", "409", "413", "415", "422", "431", "503")
    }
    schema = doc["components"]["schemas"]["EventBody"]
    assert set(schema["required"]) == {"phoneNumber", "eventName", "timestamp"}


async def test_every_answer_on_a_documented_path_is_in_the_document(
    app: ReceiverApp, fake_server: fakeredis.FakeServer
) -> None:
    # The HTTP API reference page is this document: an answer it does not list (405 on the
    # event paths, /readyz's 503, /openapi.json itself: issue 16's newcomer pass) misleads.
    async with make_client(app) as signed, make_client(app, auth=False) as anonymous:
        doc = (await signed.get("/openapi.json")).json()
        paths = {
            path.replace("{number}", "+12025550123"): ops for path, ops in doc["paths"].items()
        }
        assert {"/openapi.json", "/readyz", "/v1/events", "/webhook"} <= set(paths)
        unlisted = []
        for connected in (True, False):
            fake_server.connected = connected
            for path, operations in paths.items():
                listed = {code for op in operations.values() for code in op["responses"]}
                for http in (signed, anonymous):
                    for method in ("GET", "POST", "PUT", "DELETE"):
                        answer = await http.request(method, path, json=body())
                        if str(answer.status_code) not in listed:
                            unlisted.append((connected, path, method, answer.status_code))
    assert unlisted == []


async def test_response_bodies_stay_small(client: httpx.AsyncClient) -> None:
    junk = {f"f{i}": "x" for i in range(50)} | {
        "phoneNumber": "x" * 100,
        "eventName": "y" * 500,
        "timestamp": "z" * 500,
        "region": "q" * 500,
    }
    response = await client.post("/v1/events", json=junk)
    assert response.status_code == 422
    assert len(response.content) < 32_000


async def test_one_log_line_per_outcome_at_its_level(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="dnc.receiver"):
        await client.post("/v1/events", json=body())
        await client.post("/v1/events", json=body(phoneNumber="+1 202 555 01"))
        fake_server.connected = False
        await client.post("/v1/events", json=body())
    lines = [
        (r.levelname, r.fields["status"], r.fields.get("number"))
        for r in caplog.records
        if r.getMessage() == "event request"
    ]
    assert lines == [
        ("INFO", 202, "***0123"),
        ("WARNING", 422, "***5501"),
        ("ERROR", 503, "***0123"),
    ]
    assert "2025550123" not in caplog.text


async def test_503_on_other_redis_errors(
    client: httpx.AsyncClient, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dnc.errors import StoreError

    async def broken(events: object) -> None:
        raise StoreError("redis error: ResponseError")

    monkeypatch.setattr(store, "record_group", broken)
    response = await client.post("/v1/events", json=body())
    assert (response.status_code, response.json()["error"]) == (503, "redis_error")
    assert response.headers["retry-after"] == "5"
    metrics = (await client.get("/metrics")).text
    assert 'dnc_receiver_redis_errors_total{kind="error"} 1.0' in metrics


async def test_internal_error_is_500_and_logged_without_the_message(
    client: httpx.AsyncClient,
    store: EventStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from receiver.logs import JsonFormatter

    async def bug(events: object) -> None:
        raise RuntimeError("+12025550123 secret detail")

    monkeypatch.setattr(store, "record_group", bug)
    with caplog.at_level(logging.INFO, logger="dnc.receiver"):
        response = await client.post("/v1/events", json=body())
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal error"}
    record = next(r for r in caplog.records if r.getMessage() == "internal error")
    line = json.loads(JsonFormatter().format(record))
    assert line["error"] == "RuntimeError"
    assert any("test_receiver_http.py" in where for where in line["where"])
    assert "secret detail" not in json.dumps(line)


async def test_websocket_is_refused(app: ReceiverApp) -> None:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/v1/events", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


# -- bugs found by a newcomer's break-it pass ------------------------------------------------


async def latest_e164s(store: EventStore) -> set[str]:
    return await numbers_with_state(store._client, store.keys)


@pytest.mark.parametrize(
    ("raw_number", "e164"),
    [
        ("+3612345678", "+3612345678"),
        ("+36+1+234+5678", "+3612345678"),
        ("+442079460123", "+442079460123"),
        ("+1+202+555+0123", "+12025550123"),
    ],
)
async def test_form_leading_raw_plus_is_a_plus_sign(
    client: httpx.AsyncClient, store: EventStore, raw_number: str, e164: str
) -> None:
    # A template that pastes "+36..." unencoded must not opt out the US number +1 361...
    content = f"phoneNumber={raw_number}&eventName=optOut&timestamp={now_ms() - 9_000}"
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 202, response.text
    assert await latest_e164s(store) == {e164}
    assert response.json()["warnings"] == [
        "phoneNumber started with a raw '+', read as a plus sign (form encoding reads '+' as "
        "a space; send %2B)"
    ]


async def test_form_encoded_plus_has_no_warning(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post("/v1/events", data=body(phoneNumber="+36 1 234 5678"))
    assert (response.status_code, response.json()["warnings"]) == (202, [])
    assert await latest_e164s(store) == {"+3612345678"}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (
            "phoneNumber=(202) 555-0142&eventName=optOut&timestamp=1790000000000"
            "&phoneNumber=%2B442079460123",
            "application/x-www-form-urlencoded",
        ),
        (
            '{"phoneNumber": "(202) 555-0142", "eventName": "optOut", "timestamp": 1790000000000,'
            ' "phoneNumber": "+442079460123"}',
            "application/json",
        ),
    ],
)
async def test_field_given_twice_is_refused(
    client: httpx.AsyncClient, store: EventStore, content: str, content_type: str
) -> None:
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {
            "field": "phoneNumber",
            "reason": "duplicate",
            "message": "phoneNumber is given more than once",
        }
    ]
    assert await latest_e164s(store) == set()


async def test_field_name_inside_metadata_is_not_a_duplicate(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json=body(metadata={"phoneNumber": "old"}))
    assert response.status_code == 202


@pytest.mark.parametrize("field", ["eventId", "region", "metadata"])
async def test_empty_optional_json_field_is_absent(client: httpx.AsyncClient, field: str) -> None:
    response = await client.post("/v1/events", json=body(**{field: ""}))
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("order", ["right-first", "wrong-first"])
async def test_two_authorization_headers_are_refused(app: ReceiverApp, order: str) -> None:
    from tests.conftest import BEARER

    values = [f"Bearer {BEARER}", "Bearer wrong-secret-0123456789"]
    if order == "wrong-first":
        values.reverse()
    headers = [("Authorization", v) for v in values] + [("Content-Type", "application/json")]
    async with make_client(app, auth=False) as anonymous:
        response = await anonymous.post("/v1/events", content=json.dumps(body()), headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
async def test_content_encoding_is_415(client: httpx.AsyncClient, encoding: str) -> None:
    response = await client.post(
        "/v1/events",
        content=json.dumps(body()),
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status_code == 415
    assert response.json()["message"] == "Content-Encoding is not supported; send the body as is"


async def test_identity_content_encoding_is_fine(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events",
        content=json.dumps(body()),
        headers={"Content-Type": "application/json", "Content-Encoding": "identity"},
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("raw_number", "e164"),
    [
        ("tel:+3612345674", "+3612345674"),
        ("(+36)1234+5675", "+3612345675"),
        ("%20+3612345676", "+3612345676"),
        ("%28%2B36%29+1234+5677", "+3612345677"),
    ],
)
async def test_form_raw_plus_before_the_first_digit_is_a_plus_sign(
    client: httpx.AsyncClient, store: EventStore, raw_number: str, e164: str
) -> None:
    content = f"phoneNumber={raw_number}&eventName=optOut&timestamp={now_ms() - 9_000}"
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 202, response.text
    assert await latest_e164s(store) == {e164}
    expect_warning = raw_number != "%28%2B36%29+1234+5677"
    assert bool(response.json()["warnings"]) is expect_warning


async def test_form_raw_plus_after_a_digit_is_a_space(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    content = f"phoneNumber=1+202+555+0123&eventName=optOut&timestamp={now_ms()}"
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (response.status_code, response.json()["warnings"]) == (202, [])
    assert await latest_e164s(store) == {"+12025550123"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=base64",
        "application/json; charset=hex",
        "application/x-www-form-urlencoded; charset=rot13",
        "application/json; charset=idna",  # lookup works, decoding raises UnicodeError: was a 500
        "application/x-www-form-urlencoded; charset=undefined",
    ],
)
async def test_non_text_charsets_are_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/v1/events", content=b"eyJ9", headers={"Content-Type": content_type}
    )
    assert (response.status_code, response.json()["message"]) == (415, "unknown charset")


@pytest.mark.parametrize(
    "metadata",
    ["[" * 20_000, '{"a":' * 5_000, '{"a":"\\ud800"}'],
)
async def test_hostile_form_metadata_is_never_a_500(
    client: httpx.AsyncClient, metadata: str
) -> None:
    response = await client.post("/v1/events", data=body(eventName="optIn", metadata=metadata))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "metadata"
    # An opt-out is kept without it.
    response = await client.post("/v1/events", data=body(metadata=metadata))
    assert response.status_code == 202
    assert response.json()["dropped"][0] | {"message": ""} == {
        "field": "metadata",
        "reason": "wrong_type",
        "message": "",
    }


async def test_escaped_duplicate_key_is_refused(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    content = (
        '{"phoneNumber": "+3612345672", "phone\\u004eumber": "+3612345673", '
        '"eventName": "optOut", "timestamp": 1790000000000}'
    )
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["reason"] == "duplicate"
    assert await latest_e164s(store) == set()


@pytest.mark.parametrize("space", [" ", "\t", "\n ", "\r\n"])
async def test_duplicate_key_with_white_space_before_its_colon_is_refused(
    client: httpx.AsyncClient, store: EventStore, space: str
) -> None:
    # '"phoneNumber" :' escaped the cheap screen and the last value won (a break-it pass).
    content = (
        '{"phoneNumber":"+12025550303","phoneNumber"' + space + ':"+12025550304",'
        '"eventName":"optOut","timestamp":1790000000000}'
    )
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["reason"] == "duplicate"
    assert await latest_e164s(store) == set()


async def test_a_415_keeps_the_authenticated_body_and_is_503_when_it_cannot(
    client: httpx.AsyncClient, store: EventStore, fake_server: fakeredis.FakeServer
) -> None:
    sent = b'{"phoneNumber": "+12025550123", "eventName": "optOut"}'
    plain = {"Content-Type": "text/plain"}
    response = await client.post("/v1/events", content=sent, headers=plain)
    assert response.status_code == 415
    entries = await store._client.xrange(store.keys.rejected)
    assert entries[-1][1][b"body"] == sent
    fake_server.connected = False  # the opt-out could not be kept: the sender must retry
    response = await client.post("/v1/events", content=sent, headers=plain)
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")


async def test_duplicate_key_inside_metadata_is_fine(client: httpx.AsyncClient) -> None:
    content = json.dumps(body())[:-1] + ', "metadata": {"eventId": 1, "eventId": 2}}'
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


async def test_event_id_is_logged_with_numbers_masked(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="dnc.receiver"):
        await client.post("/v1/events", json=body(eventId="optin-+3612345678"))
    [record] = [r for r in caplog.records if r.getMessage() == "event request"]
    assert record.fields["eventId"] == "optin-***5678"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        # '":' inside a string: the screen cannot tell, the exact check accepts it
        (
            '{"phoneNumber": "2025550123", "eventName": "optOut", "timestamp": 1790000000000,'
            ' "metadata": {"note": "he said \\": stop"}}',
            202,
        ),
        # spaces before the colon: the screen undercounts, the exact check finds the duplicate
        (
            '{"phoneNumber" : "2025550123", "eventName" : "optOut", "timestamp" : 1790000000000,'
            ' "phoneNumber" : "2025550124"}',
            422,
        ),
    ],
)
async def test_duplicate_screen_falls_back_to_the_exact_check(
    client: httpx.AsyncClient, content: str, status: int
) -> None:
    response = await client.post(
        "/v1/events", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text


async def test_expiry_is_stored_for_an_opt_out_and_refused_for_an_opt_in(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert "expiresAt" in doc["components"]["schemas"]["EventBody"]["properties"]
    expires_ms = now_ms() + 86_400_000
    response = await client.post("/v1/events", json=body(expiresAt=expires_ms))
    assert (response.status_code, response.json()["status"]) == (202, "queued")
    latest = await latest_event(store._client, store.keys, "+12025550123")
    assert latest.expiresMs == expires_ms
    refused = await client.post("/v1/events", json=body(eventName="optIn", expiresAt=expires_ms))
    assert refused.status_code == 422
    assert refused.json()["problems"] == [
        {
            "field": "expiresAt",
            "reason": "not_for_opt_in",
            "message": "expiresAt is for opt-outs only: an opt-in does not lapse",
        }
    ]
    [entry] = await rejected(store)
    assert b"not_for_opt_in" in entry[b"detail"]
    twice = f"phoneNumber=2025550123&eventName=optOut&timestamp={expires_ms - 86_400_000}"
    twice += f"&expiresAt={expires_ms}&expiresAt={expires_ms + 1}"
    response = await client.post(
        "/v1/events", content=twice, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0] | {"message": ""} == {
        "field": "expiresAt",
        "reason": "duplicate",
        "message": "",
    }


async def test_callers_without_the_secret_cannot_evict_the_authenticated_record(
    fake_redis: aioredis.Redis,
) -> None:
    # Both streams are capped; a flood of unauthenticated refusals used to share one with
    # (and push out) the refusals of real senders (a break-it pass).
    store = EventStore(fake_redis, RedisKeys("evict"), StoreLimits(unauthenticated_max_len=10))
    app = make_app(store)
    async with make_client(app) as sender, make_client(app, auth=False) as stranger:
        assert (await sender.post("/v1/events", json=body(eventName="maybe"))).status_code == 422
        for _ in range(50):
            assert (await stranger.post("/v1/events", json=body())).status_code == 401
    kept = await rejected(store)
    assert [entry[b"status"] for entry in kept] == [b"422"]
    assert len(await refused_unauthenticated(store)) <= 50
