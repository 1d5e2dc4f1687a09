"""One temporary Prefect server for the flow tests of this package, and only while they run:
its background threads use the ``random`` module, which Hypothesis tests elsewhere must not
see change under them (a session-wide harness made one of them fail as flaky)."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from dnc.intake import IntakePolicy
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.settings import ReceiverSettings, RedisSettings
from dnc.store import EventStore, StoreLimits
from receiver.app import ReceiverApp
from tests.conftest import BEARER


@pytest.fixture(scope="package")
def prefect_harness() -> Iterator[None]:
    """A ``prefect_test_harness`` for this package's modules (each costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def harness(prefect_harness: None) -> Iterator[None]:
    yield
    gc.collect()  # let Prefect's leftover sockets be reported while this module's filters hold


@pytest.fixture
async def world(
    harness: None, sandbox_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    namespace = "flow" + uuid.uuid4().hex[:10]
    env = {
        "DNC_REDIS_URL": redis_url,
        "DNC_REDIS_NAMESPACE": namespace,
        "DNC_CXONE_ADAPTER": "dnc-groups",
        "DNC_CXONE_ISSUER_URL": sandbox_url,
        "DNC_CXONE_DNC_GROUP_ID": "1001",
        "DNC_CXONE_CLIENT_ID": "sandbox-cxone-client-id",
        "DNC_CXONE_CLIENT_SECRET": "sandbox-cxone-client-secret-0123456789",
        "DNC_CXONE_ACCESS_KEY_ID": "SANDBOXACCESSKEYID000001",
        "DNC_CXONE_ACCESS_KEY_SECRET": "sandbox-access-key-secret-0123456789",
        "DNC_CXONE_RATE_LIMIT_RPS": "0",
        "DNC_CXONE_BATCH_SIZE": "5",
        "DNC_CXONE_BACKOFF_BASE_S": "0.05",
        "DNC_CXONE_BACKOFF_CAP_S": "0.2",
        "DNC_SYNC_PUSH_RETRY_DELAY_S": "0",
        "DNC_SYNC_TIME_BUDGET_S": "20",
        "DNC_SYNC_RETRY_BACKOFF_BASE_S": "0",  # a failed number may be retried at once
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = aioredis.Redis.from_url(redis_url)
    keys = RedisKeys(namespace)
    store = EventStore(client, keys, StoreLimits())
    app = ReceiverApp(
        ReceiverSettings(bearer_secrets=[BEARER]), IntakePolicy(), RedisSettings(), store=store
    )
    async with (
        httpx.AsyncClient(base_url=sandbox_url) as control,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://receiver",
            headers={"Authorization": f"Bearer {BEARER}"},
        ) as receiver,
    ):
        await control.post("/_sandbox/reset", json={"config": True})
        yield {
            "receiver": receiver,
            "control": control,
            "queue": PendingQueue(client, keys),
            "redis": client,
            "keys": keys,
            "base_ms": int(time.time() * 1000),  # this test's clock, not import time
        }
    leftovers = [k async for k in client.scan_iter(match=keys.tag + ":*")]
    if leftovers:
        await client.delete(*leftovers)
    await client.aclose()
