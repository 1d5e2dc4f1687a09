"""`GET /v1/numbers/{number}` in process through httpx.ASGITransport: who may read, how the
number is read, the history it answers, and the 503s."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis
from jsonschema import Draft202012Validator
from sqlalchemy import Engine

from dnc.audit.archive import Archiver
from dnc.audit.database import open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.streams import streams
from dnc.intake import IntakePolicy
from dnc.settings import AuditSettings, ReceiverSettings, RedisSettings
from dnc.store import EventStore
from receiver.app import ReceiverApp
from receiver.openapi import build_document
from tests.conftest import BEARER, HMAC_KEY, make_client, make_store

READER = "read-only-secret-0123456789"
PATH = "/v1/numbers/(202)%20555-0123"
FULL = "2025550123"


def number_app(
    store: EventStore,
    engine: Engine | None,
    audit: AuditSettings | None = None,
    **receiver: object,
) -> ReceiverApp:
    """``tests.conftest.make_app`` plus a read secret and the audit store ``engine``;
    ``receiver``: other ``ReceiverSettings`` values."""
    values: dict[str, object] = {"bearer_secrets": [BEARER], "hmac_secrets": [HMAC_KEY]}
    settings = ReceiverSettings(**{**values, **receiver})
    return ReceiverApp(
        settings,
        IntakePolicy(default_region="US"),
        RedisSettings(allow_eviction=True),
        store=store,
        audit=audit or AuditSettings(read_secrets=[READER]),
        audit_engine=engine,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path}/audit.sqlite3")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(fake_redis: aioredis.Redis) -> EventStore:
    return make_store(fake_redis)


@pytest.fixture
async def client(store: EventStore, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(number_app(store, engine)) as http:
        yield http


def event_body(**overrides: object) -> dict[str, Any]:
    sent = {
        "phoneNumber": "(202) 555-0123",
        "eventName": "optOut",
        "timestamp": int(time.time() * 1000) - 60_000,
    }
    return {**sent, **overrides}


async def test_the_state_and_timeline_after_archiving(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    store = make_store(real_redis, namespace)
    async with make_client(number_app(store, engine)) as client:
        assert (await client.post("/v1/events", json=event_body())).status_code == 202
        refused = await client.post("/v1/events", json=event_body(timestamp="soon"))
        assert refused.status_code == 422
        await Archiver(real_redis, engine, streams(store.keys, normaliser("US"))).run(budget_s=30)
        opt_in = event_body(eventName="optIn", timestamp=int(time.time() * 1000) - 1_000)
        assert (await client.post("/v1/events", json=opt_in)).status_code == 202  # unarchived
        response = await client.get(PATH)
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["number"] == "+12025550123"
    assert found["state"]["latest_event"]["action"] == "optIn"
    assert isinstance(found["state"]["pending_since_ms"], int)
    assert (found["state"]["dead_letter"], found["last_application"]) == (None, None)
    assert [e["kind"] for e in found["timeline"]] == ["event", "rejection"]
    assert found["timeline"][0]["summary"].startswith("optOut queued (event time ")
    assert found["timeline"][1]["summary"].startswith("refused 422 invalid_event: timestamp:")
    assert found["unarchived"]["events"] == 1 and found["truncated"] is False
    documented = build_document()["components"]["schemas"]["NumberHistory"]
    Draft202012Validator(documented).validate(found)  # the answer is what the document says


async def test_any_written_form_reads_the_same_number(client: httpx.AsyncClient) -> None:
    for path in ("/v1/numbers/%2B1%20202%20555%200123", "/v1/numbers/202.555.0123"):
        response = await client.get(path)
        assert (response.status_code, response.json()["number"]) == (200, "+12025550123"), path
    uk = await client.get("/v1/numbers/020%207946%200018?region=GB&limit=5")
    assert uk.json()["number"] == "+442079460018"


async def test_without_or_with_a_wrong_secret_401_kept_for_audit(
    store: EventStore, engine: Engine
) -> None:
    app = number_app(store, engine)
    async with make_client(app, auth=False) as anonymous:
        bare = await anonymous.get(PATH)
        wrong = await anonymous.get(PATH, headers={"Authorization": "Bearer not-the-secret-at-all"})
    for response in (bare, wrong):
        assert response.status_code == 401
        assert response.json() == {
            "error": "unauthorized",
            "message": "missing or wrong credentials",
        }
        assert response.headers["www-authenticate"] == "Bearer"
    entries = await store._client.xrange(store.keys.rejected_unauthenticated)
    reasons = [fields[b"authReason"] for _, fields in entries]
    assert reasons == [b"no_credentials", b"wrong_bearer_secret"]


async def test_a_doubled_authorization_header_is_refused(store: EventStore, engine: Engine) -> None:
    async with make_client(number_app(store, engine), auth=False) as anonymous:
        headers = [("Authorization", f"Bearer {READER}"), ("Authorization", "Bearer x")]
        response = await anonymous.get(PATH, headers=headers)
    assert response.status_code == 401


def senders(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.fields["status"], r.fields["sender"])
        for r in caplog.records
        if r.getMessage() == "number history request"
    ]


async def test_disabled_authentication_never_opens_history(
    store: EventStore, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = number_app(store, engine, auth_disabled=True)
    async with make_client(app, auth=False) as anyone:
        assert (await anyone.post("/v1/events", json=event_body())).status_code == 202
        with caplog.at_level(logging.INFO, logger="dnc.receiver"):
            bare = await anyone.get(PATH)
            wrong = await anyone.get(PATH, headers={"Authorization": "Bearer not-a-secret-at-all"})
            intake = await anyone.get(PATH, headers={"Authorization": f"Bearer {BEARER}"})
            reader = await anyone.get(PATH, headers={"Authorization": f"Bearer {READER}"})
            doubled = await anyone.get(
                PATH, headers=[("Authorization", f"Bearer {READER}"), ("Authorization", "x")]
            )
    assert (bare.status_code, wrong.status_code, doubled.status_code) == (401, 401, 401)
    assert bare.headers["www-authenticate"] == "Bearer"
    assert (intake.status_code, reader.status_code) == (200, 200)
    assert senders(caplog) == [(200, "bearer-1"), (200, "read-1")]  # never "unknown"
    entries = await store._client.xrange(store.keys.rejected_unauthenticated)
    reasons = [fields[b"authReason"] for _, fields in entries]
    assert reasons == [b"no_credentials", b"wrong_bearer_secret", b"repeated_authorization"]


async def test_disabled_authentication_without_secrets_refuses_every_read(
    store: EventStore, engine: Engine
) -> None:
    app = number_app(
        store, engine, AuditSettings(), auth_disabled=True, bearer_secrets=[], hmac_secrets=[]
    )
    async with make_client(app, auth=False) as anyone:
        assert (await anyone.post("/v1/events", json=event_body())).status_code == 202
        assert (await anyone.get(PATH)).status_code == 401
        for secret in (BEARER, READER, ""):
            headers = {"Authorization": f"Bearer {secret}"}
            assert (await anyone.get(PATH, headers=headers)).status_code == 401


async def test_the_read_secret_reads_but_cannot_write(store: EventStore, engine: Engine) -> None:
    async with make_client(number_app(store, engine), auth=False) as reader:
        reader.headers["Authorization"] = f"Bearer {READER}"
        assert (await reader.get(PATH)).status_code == 200
        assert (await reader.post("/v1/events", json=event_body())).status_code == 401


async def test_an_unreadable_number_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/numbers/12")
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {
            "field": "number",
            "reason": "too_short",
            "message": response.json()["problems"][0]["message"],
        }
    ]
    empty = await client.get("/v1/numbers/")
    assert empty.status_code == 422


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("region=ZZ", "region"),
        ("limit=0", "limit"),
        ("limit=²", "limit"),
        ("limit=abc&limit=5", "limit"),  # given twice: which one counts is ambiguous
        ("region=US&region=AR", "region"),
    ],
)
async def test_bad_options_are_422(client: httpx.AsyncClient, query: str, field: str) -> None:
    response = await client.get(f"{PATH}?{query}")
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["problems"]] == [field]


async def test_a_422_is_kept_as_an_authenticated_refusal_in_no_timeline(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    store = make_store(real_redis, namespace)
    async with make_client(number_app(store, engine), auth=False) as reader:
        reader.headers["Authorization"] = f"Bearer {READER}"
        refused = await reader.get("/v1/numbers/2025550?limit=0")
        assert refused.status_code == 422
        entries = await real_redis.xrange(store.keys.rejected)
        assert await real_redis.xlen(store.keys.rejected_unauthenticated) == 0
        assert len(entries) == 1
        kept = {k.decode(): v.decode() for k, v in entries[0][1].items()}
        assert kept["status"] == "422" and kept["error"] == "invalid_request"
        assert kept["sender"] == "read-1" and kept["method"] == "GET"
        assert kept["body"] == "" and "phoneNumber" not in kept
        assert json.loads(kept["detail"]) == refused.json()["problems"]
        # Archived, it belongs to no number: the number's own history stays empty.
        await Archiver(real_redis, engine, streams(store.keys, normaliser("US"))).run(budget_s=30)
        found = await reader.get("/v1/numbers/2025550123")
    assert found.status_code == 200 and found.json()["timeline"] == []


async def test_a_422_that_cannot_be_kept_is_503(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer
) -> None:
    fake_server.connected = False
    response = await client.get("/v1/numbers/12")
    assert (response.status_code, response.json()["error"]) == (503, "redis_unavailable")
    assert response.headers["retry-after"] == "5"


async def test_only_get(client: httpx.AsyncClient) -> None:
    response = await client.delete(PATH)
    assert (response.status_code, response.headers["allow"]) == (405, "GET")


async def test_a_store_not_migrated_is_503(store: EventStore, tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/new.sqlite3")
    async with make_client(number_app(store, engine)) as client:
        response = await client.get(PATH)
    engine.dispose()
    assert response.status_code == 503
    assert response.json()["error"] == "audit_store_not_ready"
    assert response.headers["retry-after"] == "5"


async def test_redis_down_is_503(
    client: httpx.AsyncClient, fake_server: fakeredis.FakeServer
) -> None:
    fake_server.connected = False
    response = await client.get(PATH)
    assert (response.status_code, response.json()["error"]) == (503, "redis_unavailable")
    assert response.headers["retry-after"] == "5"


async def test_a_store_that_is_not_there_is_503_and_not_created(
    store: EventStore, tmp_path: Path
) -> None:
    typo = tmp_path / "typo" / "audit.sqlite3"
    app = number_app(store, None, AuditSettings(database_url=f"sqlite:///{typo}"))
    async with make_client(app) as client:
        response = await client.get(PATH)
        assert (response.status_code, response.json()["error"]) == (503, "audit_store_not_ready")
        assert response.headers["retry-after"] == "5"
        assert not typo.parent.exists()  # a read creates nothing
        migrated = open_engine(f"sqlite:///{typo}")  # once it is there, the next read works
        upgrade(migrated)
        migrated.dispose()
        assert (await client.get(PATH)).status_code == 200
    await app.shutdown()


async def test_the_engine_is_opened_from_settings_once(
    store: EventStore, engine: Engine, tmp_path: Path
) -> None:
    audit = AuditSettings(database_url=f"sqlite:///{tmp_path}/audit.sqlite3")  # migrated above
    app = number_app(store, None, audit)
    async with make_client(app) as client:
        assert (await client.get(PATH)).status_code == 200
        opened = app._numbers._engine
        assert (await client.get(PATH)).status_code == 200
        assert opened is not None and app._numbers._engine is opened
    await app.shutdown()
    assert app._numbers._engine is None


async def test_the_number_is_masked_in_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, fake_server: fakeredis.FakeServer
) -> None:
    with caplog.at_level(logging.INFO, logger="dnc.receiver"):
        await client.get(PATH)
        await client.get(PATH, headers={"Authorization": "Bearer wrong-wrong-wrong-wrong"})
        fake_server.connected = False
        await client.get(PATH)
    lines = [
        (r.levelname, r.fields["status"], r.fields.get("number"))
        for r in caplog.records
        if r.getMessage() == "number history request"
    ]
    assert lines == [("INFO", 200, "***0123"), ("ERROR", 503, "***0123")]
    assert FULL not in caplog.text
    assert FULL not in json.dumps([getattr(r, "fields", None) for r in caplog.records])


def test_the_openapi_document_has_the_route() -> None:
    document = build_document()
    operation = document["paths"]["/v1/numbers/{number}"]["get"]
    assert set(operation["responses"]) == {"200", "401", "405", "422", "503"}
    assert set(operation["responses"]["405"]["headers"]) == {"Allow"}
    assert "NumberHistory" in document["components"]["schemas"]
