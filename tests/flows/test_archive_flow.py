"""The archive-audit flow under the package's Prefect test harness: it migrates the store,
archives every stream, purges past retention (and records the purge), and fails as lagging
when more entries wait than the limit."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from dnc.audit import schema
from dnc.audit.database import open_engine
from dnc.audit.retention import DAY_MS
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.store import EventStore, StoreLimits
from flows.archive import ArchiveLagging, archive_audit

pytestmark = [
    pytest.mark.redis,
    pytest.mark.socket,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def harness(prefect_harness: None) -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def database(
    harness: None, redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    return url


def event(number: str, ms: int) -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|optOut|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=Action.OPT_OUT,
        eventMs=ms,
        receivedMs=ms,
    )


def rows(url: str, table: schema.Table) -> int:
    engine = open_engine(url)
    with engine.connect() as connection:
        found = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
    engine.dispose()
    return found


async def test_a_run_archives_and_purges_past_retention(
    database: str, real_redis: aioredis.Redis, namespace: str
) -> None:
    store = EventStore(real_redis, RedisKeys(namespace), StoreLimits())
    now_ms = int(time.time() * 1000)
    await store.record(event("+12025550101", now_ms - 3 * DAY_MS))  # past retention: purged
    await store.record(event("+12025550101", now_ms - 3 * DAY_MS + 1))  # its current state: kept
    await store.record(event("+12025550102", now_ms))
    first = await archive_audit()
    assert first["archived"] == {
        "events": 3,
        "rejected": 0,
        "unauthenticated": 0,
        "applications": 0,
    }
    assert first["purged"] == 0 and rows(database, schema.events) == 3
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DNC_AUDIT_RETENTION_DAYS", "2")
        second = await archive_audit()
    assert second["purged"] == 1 and rows(database, schema.events) == 2
    assert rows(database, schema.purges) == 1  # the purge is itself on record


async def test_a_lagging_archive_fails_the_run_and_drops_nothing(
    database: str, real_redis: aioredis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(real_redis, RedisKeys(namespace), StoreLimits())
    for i in range(5):
        await store.record(event(f"+1202555{i:04d}", 1_794_994_200_000 + i))
    monkeypatch.setenv("DNC_AUDIT_ARCHIVE_LAG_MAX_ENTRIES", "2")
    monkeypatch.setenv("DNC_AUDIT_ARCHIVE_BATCH", "1")
    with pytest.raises(ArchiveLagging):
        await archive_audit(time_budget_s=0.000_1)  # copies one batch at most
    assert await real_redis.xlen(RedisKeys(namespace).audit) >= 3  # kept, not dropped
    await archive_audit()
    assert rows(database, schema.events) == 5
