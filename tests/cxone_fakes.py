"""Shared helpers for the CXone client tests: settings, JWTs, a sleep recorder."""

from __future__ import annotations

import base64
import json

from dnc.settings import CxoneSettings

ISSUER = "https://cxone.example.test"
API = "https://api-na1.example.test"
TOKEN_URL = f"{ISSUER}/auth/token"
RECORDS_URL = f"{API}/inContactAPI/services/v33.0/dnc-groups/1001/records"
CONTACTS_BASE = "https://contacts.example.test"
CLIENT_SECRET = "client-secret=with&odd+chars/0123"
ACCESS_KEY_SECRET = "key-secret==ends&with=="
CONTACTS_SECRET = "contacts-secret-0123456789"


def make_jwt(tenant: str = "tenant-1", suffix: str = "a") -> str:
    """A JWT-shaped access token whose payload carries ``tenantId``."""

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'tenantId': tenant, 'n': suffix})}.sig{suffix}"


def groups_settings(**overrides: object) -> CxoneSettings:
    values: dict[str, object] = {
        "adapter": "dnc-groups",
        "issuer_url": ISSUER,
        "dnc_group_id": "1001",
        "client_id": "client-1",
        "client_secret": CLIENT_SECRET,
        "access_key_id": "key-1",
        "access_key_secret": ACCESS_KEY_SECRET,
        "rate_limit_rps": 0,
        "max_attempts": 4,
    }
    values.update(overrides)
    return CxoneSettings(**values)  # type: ignore[arg-type]


def contacts_settings(**overrides: object) -> CxoneSettings:
    values: dict[str, object] = {
        "adapter": "outbound-contacts",
        "contacts_base_url": CONTACTS_BASE,
        "client_id": "contacts-client",
        "client_secret": CONTACTS_SECRET,
        "custom_list_ids": ["list-1"],
        "rate_limit_rps": 0,
        "max_attempts": 3,
    }
    values.update(overrides)
    return CxoneSettings(**values)  # type: ignore[arg-type]


class Sleeps:
    """An injectable ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
