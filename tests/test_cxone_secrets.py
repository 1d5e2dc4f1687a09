"""No secret or token in logs, exception messages, or pickled exceptions (Prefect pickles task
failures to disk), whatever goes wrong."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable

import httpx
import pytest
import respx

from dnc.cxone.contacts import OutboundContactsTarget
from dnc.cxone.dnc_groups import DncGroupsTarget
from dnc.cxone.errors import CxoneError
from dnc.events import Action
from dnc.target import DncChange
from tests.cxone_fakes import (
    ACCESS_KEY_SECRET,
    API,
    CLIENT_SECRET,
    CONTACTS_BASE,
    CONTACTS_SECRET,
    ISSUER,
    RECORDS_URL,
    TOKEN_URL,
    Sleeps,
    contacts_settings,
    groups_settings,
    make_jwt,
)

TOKEN = make_jwt(suffix="secret-token")
OPAQUE = "opaque-token-very-secret"
CHANGE = DncChange("+12025550123", Action.OPT_OUT, 1_790_000_000_000)
SECRETS = (CLIENT_SECRET, ACCESS_KEY_SECRET, CONTACTS_SECRET, TOKEN, OPAQUE, "2025550123")

FAILURES: list[Callable[[], object]] = [
    lambda: httpx.Response(401),
    lambda: httpx.Response(503, text=f"upstream error for {CHANGE.e164}"),
    lambda: httpx.Response(429, headers={"Retry-After": "1"}),
    lambda: httpx.Response(400, json={"error": f"bad number {CHANGE.e164}"}),
    lambda: httpx.ReadTimeout("timed out"),
    lambda: httpx.ConnectError("refused"),
]


def answer(failure: Callable[[], object]) -> Callable[[httpx.Request], httpx.Response]:
    def side_effect(request: httpx.Request) -> httpx.Response:
        result = failure()
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, httpx.Response)
        return result

    return side_effect


def assert_clean(exc: BaseException, logs: str) -> None:
    chained = [exc, exc.__cause__, exc.__context__]
    texts = [str(e) for e in chained if e] + [repr(e) for e in chained if e] + [logs]
    blob = pickle.dumps(exc)
    for secret in SECRETS:
        assert all(secret not in text for text in texts), secret
        assert secret.encode() not in blob, secret


@pytest.mark.parametrize("failure", FAILURES)
async def test_dnc_groups_failures_leak_nothing(
    failure: Callable[[], object], caplog: pytest.LogCaptureFixture
) -> None:
    with respx.mock() as router, caplog.at_level(logging.DEBUG):
        router.get(f"{ISSUER}/.well-known/openid-configuration").respond(
            json={"token_endpoint": TOKEN_URL}
        )
        router.get(f"{ISSUER}/.well-known/cxone-configuration").respond(json={"api_endpoint": API})
        router.post(TOKEN_URL).respond(json={"access_token": TOKEN, "expires_in": 3600})
        router.post(RECORDS_URL).mock(side_effect=answer(failure))
        async with httpx.AsyncClient() as http:
            target = DncGroupsTarget(http, groups_settings(), sleep=Sleeps())
            with pytest.raises(CxoneError) as info:
                await target.apply([CHANGE])
    assert_clean(info.value, caplog.text)


@pytest.mark.parametrize("failure", FAILURES)
async def test_contacts_failures_leak_nothing(
    failure: Callable[[], object], caplog: pytest.LogCaptureFixture
) -> None:
    with respx.mock() as router, caplog.at_level(logging.DEBUG):
        router.post(f"{CONTACTS_BASE}/oauth/token").respond(
            json={"access_token": OPAQUE, "expires_in": 3600}
        )
        router.post(f"{CONTACTS_BASE}/api/v2/outbound/contacts").mock(side_effect=answer(failure))
        async with httpx.AsyncClient() as http:
            target = OutboundContactsTarget(http, contacts_settings(), sleep=Sleeps())
            with pytest.raises(CxoneError) as info:
                await target.apply([CHANGE])
    assert_clean(info.value, caplog.text)


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_token_endpoint_failures_leak_nothing(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with respx.mock() as router, caplog.at_level(logging.DEBUG):
        router.post(f"{CONTACTS_BASE}/oauth/token").respond(
            status, json={"error": "invalid_client", "client_secret": CONTACTS_SECRET}
        )
        async with httpx.AsyncClient() as http:
            target = OutboundContactsTarget(http, contacts_settings(), sleep=Sleeps())
            with pytest.raises(CxoneError) as info:
                await target.apply([CHANGE])
    assert_clean(info.value, caplog.text)
