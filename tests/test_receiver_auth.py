"""Authentication: bearer rotation, HMAC signatures with a replay window, auth-off mode."""

from __future__ import annotations

import json
import logging
import time

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from dnc.intake import IntakePolicy
from dnc.settings import ReceiverSettings, RedisSettings
from dnc.store import EventStore
from receiver.app import ConfigurationError, ReceiverApp
from receiver.auth import Authenticator, sign
from tests.conftest import HMAC_KEY, make_app, make_client, make_store

OLD = "old-rotation-secret-000000"
NEW = "new-rotation-secret-111111"


def event_bytes() -> bytes:
    return json.dumps(
        {
            "phoneNumber": "+1 202 555 0123",
            "eventName": "optOut",
            "timestamp": int(time.time() * 1000) - 1_000,
        }
    ).encode()


@pytest.fixture
def store(fake_redis: aioredis.Redis) -> EventStore:
    return make_store(fake_redis)


@pytest.mark.parametrize("secret", [OLD, NEW])
async def test_both_secrets_valid_during_rotation(store: EventStore, secret: str) -> None:
    app = make_app(store, bearer_secrets=[OLD, NEW])
    async with make_client(app, auth=False) as http:
        response = await http.post(
            "/v1/events",
            content=event_bytes(),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
    assert response.status_code == 202


def signed_headers(raw: bytes, timestamp_s: int, key: str = HMAC_KEY) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": str(timestamp_s),
        "X-Signature": sign(key.encode(), timestamp_s, raw).decode(),
    }


async def test_valid_signature_is_accepted(store: EventStore) -> None:
    raw = event_bytes()
    async with make_client(make_app(store), auth=False) as http:
        response = await http.post(
            "/v1/events", content=raw, headers=signed_headers(raw, int(time.time()))
        )
    assert response.status_code == 202


@pytest.mark.parametrize("age_s", [301, -301, 10_000])
async def test_replay_outside_window_is_refused(store: EventStore, age_s: int) -> None:
    raw = event_bytes()
    async with make_client(make_app(store), auth=False) as http:
        response = await http.post(
            "/v1/events", content=raw, headers=signed_headers(raw, int(time.time()) - age_s)
        )
    assert response.status_code == 401


async def test_signature_over_another_body_is_refused(store: EventStore) -> None:
    raw = event_bytes()
    headers = signed_headers(raw, int(time.time()))
    tampered = raw.replace(b"optOut", b"optIn")
    async with make_client(make_app(store), auth=False) as http:
        response = await http.post("/v1/events", content=tampered, headers=headers)
    assert response.status_code == 401


async def test_signature_with_wrong_key_is_refused(store: EventStore) -> None:
    raw = event_bytes()
    headers = signed_headers(raw, int(time.time()), key="another-key-0123456789abcdef")
    async with make_client(make_app(store), auth=False) as http:
        response = await http.post("/v1/events", content=raw, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [(b"sha256=zz", b"1"), (b"md5=00", None), (b"sha256=\xff\xfe", b"\xff"), (b"", b"")],
)
def test_malformed_signatures_are_false_not_errors(
    signature: bytes, timestamp: bytes | None
) -> None:
    auth = Authenticator([], [HMAC_KEY.encode()], 300)
    assert auth.signature_ok(signature, timestamp, b"{}", time.time()) is False


def test_no_secrets_configured_fails_closed(store: EventStore) -> None:
    with pytest.raises(ConfigurationError, match="DNC_RECEIVER_AUTH_DISABLED"):
        ReceiverApp(ReceiverSettings(), IntakePolicy(), RedisSettings(), store=store)


async def test_auth_disabled_lets_requests_in_and_warns(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    app = ReceiverApp(
        ReceiverSettings(auth_disabled=True), IntakePolicy(), RedisSettings(), store=store
    )
    with caplog.at_level(logging.WARNING, logger="dnc.receiver"):
        await app.startup()
    assert "authentication is disabled" in caplog.text
    async with make_client(app, auth=False) as http:
        response = await http.post(
            "/v1/events", content=event_bytes(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 202


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValidationError):
        ReceiverSettings(bearer_secrets=["short"])


def test_secrets_from_environment_comma_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNC_RECEIVER_BEARER_SECRETS", f"{OLD}, {NEW}")
    monkeypatch.setenv("DNC_RECEIVER_HMAC_SECRETS", json.dumps([HMAC_KEY]))
    settings = ReceiverSettings()
    assert [s.get_secret_value() for s in settings.bearer_secrets] == [OLD, NEW]
    assert [s.get_secret_value() for s in settings.hmac_secrets] == [HMAC_KEY]
    assert OLD not in repr(settings)


def test_settings_errors_never_echo_secrets() -> None:
    good = "GOODSECRETgoodsecret123"
    with pytest.raises(ValidationError) as info:
        ReceiverSettings(bearer_secrets=f"short,{good}")  # type: ignore[arg-type]
    assert good not in str(info.value) and "short" not in str(info.value)
    assert "at least 16 characters" in str(info.value)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no_credentials"),
        ({"Authorization": "Bearer not-the-secret-000000"}, "wrong_bearer_secret"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not_bearer_scheme"),
        ({"X-Signature": "sha256=00", "X-Signature-Timestamp": "12"}, "signature_outside_window"),
        (
            {"X-Signature": "sha256=00", "X-Signature-Timestamp": "soon"},
            "signature_timestamp_invalid",
        ),
        ({"X-Signature": "sha256=00", "X-Signature-Timestamp": "NOW"}, "wrong_signature"),
    ],
)
async def test_the_audit_trail_says_which_check_failed(
    store: EventStore, headers: dict[str, str], why: str
) -> None:
    headers = {k: v.replace("NOW", str(int(time.time()))) for k, v in headers.items()}
    async with make_client(make_app(store), auth=False) as http:
        response = await http.post(
            "/v1/events",
            content=event_bytes(),
            headers={"Content-Type": "application/json", **headers},
        )
    assert response.status_code == 401
    assert why not in response.text  # the caller learns nothing more
    entries = await store._client.xrange(store.keys.rejected_unauthenticated)
    assert entries[-1][1][b"authReason"] == why.encode()


async def test_two_authorization_headers_are_recorded_as_such(store: EventStore) -> None:
    from tests.conftest import BEARER

    async with make_client(make_app(store), auth=False) as http:
        response = await http.post(
            "/v1/events",
            content=event_bytes(),
            headers=[
                ("Content-Type", "application/json"),
                ("Authorization", f"Bearer {BEARER}"),
                ("Authorization", f"Bearer {BEARER}"),
            ],
        )
    assert response.status_code == 401
    entries = await store._client.xrange(store.keys.rejected_unauthenticated)
    assert entries[-1][1][b"authReason"] == b"repeated_authorization"
