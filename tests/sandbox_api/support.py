"""What the sandbox's in-process API tests share: credentials, paths, a fake clock and
request helpers (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

BASE = "http://sandbox.test"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "cl=ient&secret+with%reserved-0123"
KEY_ID = "TESTACCESSKEYID"
KEY_SECRET = "key=se&cret+ with spaces-0123456789"
OUT_ID = "test-outbound-id"
OUT_SECRET = "out=bound&secret+0123456789"
TENANT = "tenant-0001"
START_S = 1_780_000_000.0  # 2026-05-28, before the expiredDate used below
RECORDS = "/inContactAPI/services/v33.0/dnc-groups/1001/records"
CONTACTS = "/api/v2/outbound/contacts"


class FakeClock:
    """Wall clock for the sandbox under test; ``advance`` instead of sleeping."""

    def __init__(self) -> None:
        self.now_s = START_S

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def password_form(username: str = KEY_ID, password: str = KEY_SECRET) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def cxone_token(client: httpx.AsyncClient) -> dict[str, str]:
    """Authorization header with a fresh adapter-1 token."""
    response = await client.post(
        "/auth/token", data=password_form(), auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def outbound_token(client: httpx.AsyncClient) -> dict[str, str]:
    """Authorization header with a fresh adapter-2 token."""
    body = {"grant_type": "client_credentials", "client_id": OUT_ID, "client_secret": OUT_SECRET}
    response = await client.post("/oauth/token", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def records(*numbers: object, **extra: object) -> dict[str, Any]:
    return {"dncGroupRecords": [{"phoneNumber": n, **extra} for n in numbers]}


def result(sent: object, formatted: str, problem: str | None = None) -> dict[str, Any]:
    return {
        "phoneNumber": sent,
        "formattedPhone": formatted,
        "success": problem is None,
        "error": problem,
    }


def contact(number: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "phone": {"phoneNumber": number},
        "dnc": {"doNotCall": True, "optOutDate": "2026-05-01T12:00:00Z"},
        "customListIds": ["list-1"],
    }
    item.update(extra)
    return item


async def set_faults(client: httpx.AsyncClient, **changes: object) -> None:
    response = await client.post("/_sandbox/faults", json=changes)
    assert response.status_code == 200, response.text


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/_sandbox/state")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


# -- discovery -------------------------------------------------------------------------------
