"""The sandbox under test, in process through ``httpx.ASGITransport``, on a fake clock:
``clock``, ``app``, ``client`` and ``headers`` (a fresh adapter-1 token)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.app import SandboxApp
from sandbox.context import Sandbox
from sandbox.settings import SandboxSettings
from tests.sandbox_api.support import (
    BASE,
    CLIENT_ID,
    CLIENT_SECRET,
    KEY_ID,
    KEY_SECRET,
    OUT_ID,
    OUT_SECRET,
    TENANT,
    FakeClock,
    cxone_token,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> SandboxApp:
    settings = SandboxSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        access_key_id=KEY_ID,
        access_key_secret=KEY_SECRET,
        outbound_client_id=OUT_ID,
        outbound_client_secret=OUT_SECRET,
        tenant_id=TENANT,
        dnc_group_ids=["1001", "1002"],
    )
    return SandboxApp(Sandbox.start(settings, clock=clock))


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


@pytest.fixture
async def headers(client: httpx.AsyncClient) -> dict[str, str]:
    return await cxone_token(client)
