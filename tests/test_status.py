"""``dnc-sync status``: the queue's figures from Redis, exit codes for probes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from dnc.keys import RedisKeys
from dnc.rejection_reasons import count_rejections
from dnc.settings import RedisSettings
from dnc.store import EventStore, StoreLimits
from dnc_sync.cli import app
from dnc_sync.status import read_queue
from dnc_sync.status_cli import redis_address

NOW_MS = 1_800_000_000_000


async def fill(client: aioredis.Redis, keys: RedisKeys, *, waited_ms: int, dead: int) -> None:
    await client.zadd(keys.pending, {"+12025550101": NOW_MS - waited_ms, "+12025550102": NOW_MS})
    for i in range(dead):
        await client.hset(keys.dead_letters, f"+1202555090{i}", "{}")
    problems = [{"field": "phoneNumber", "reason": "too_short", "message": "m"}]
    store = EventStore(client, keys, StoreLimits())
    for _ in range(2):
        await store.record_rejection({"status": "422", "detail": json.dumps(problems)})
    await store.record_rejection({"status": "401", "error": "unauthorized", "detail": '"m"'})
    await store.record_rejection({"status": "401", "error": "unauthorized"}, authenticated=False)


async def test_read_queue_counts_everything(fake_redis: aioredis.Redis) -> None:
    keys = RedisKeys("st")
    await fill(fake_redis, keys, waited_ms=90_000, dead=2)
    queue = await read_queue(fake_redis, keys, NOW_MS)
    assert (queue.backlog, queue.oldest_pending_age_s, queue.dead_letters) == (2, 90.0, 2)
    assert (queue.rejected, queue.rejected_unauthenticated) == (3, 1)
    assert queue.rejected_by_reason == {"phoneNumber:too_short": 2, "unauthorized": 2}
    assert queue.unarchived["rejected"] == 3 and queue.oldest_unarchived_age_s > 0


async def test_rejection_counts_outlive_the_archived_stream(fake_redis: aioredis.Redis) -> None:
    # The archive trims the rejected streams once copied; the counts must not go with them.
    keys = RedisKeys("st")
    await fill(fake_redis, keys, waited_ms=0, dead=0)
    await fake_redis.xtrim(keys.rejected, maxlen=0, approximate=False)
    await fake_redis.xtrim(keys.rejected_unauthenticated, maxlen=0, approximate=False)
    queue = await read_queue(fake_redis, keys, NOW_MS)
    assert (queue.rejected, queue.rejected_unauthenticated) == (3, 1)
    assert queue.unarchived["rejected"] == 0


def test_rejections_without_detail_count_by_error() -> None:
    counts = count_rejections(
        [
            {b"error": b"payload_too_large"},
            {"status": "400"},
            {b"error": b"unauthorized", b"authReason": b"signature_outside_window"},
        ]
    )
    assert counts == {
        "payload_too_large": 1,
        "unknown": 1,
        "unauthorized:signature_outside_window": 1,
    }


def test_redis_address_never_shows_credentials() -> None:
    shown = redis_address(RedisSettings(url="redis://user:s3cret@db.internal:6390/3"))
    assert shown == "db.internal:6390/3"
    assert redis_address(RedisSettings(sentinels="a:1")) == "sentinel mymaster via a:1"


@pytest.mark.redis
@pytest.mark.parametrize(
    ("waited_ms", "dead", "code"),
    [(1_000, 0, 0), (7_200_000, 0, 1), (1_000, 1, 4), (7_200_000, 1, 1)],
)
def test_exit_codes_for_probes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, waited_ms: int, dead: int, code: int
) -> None:
    namespace = "st" + uuid.uuid4().hex[:8]
    keys = RedisKeys(namespace)

    async def setup() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await fill(client, keys, waited_ms=waited_ms, dead=dead)
        # fill() scores relative to NOW_MS; the command measures from the real clock
        real_now = int(time.time() * 1000)
        await client.zadd(keys.pending, {"+12025550101": real_now - waited_ms})
        await client.zadd(keys.pending, {"+12025550102": real_now})
        await client.aclose()

    asyncio.run(setup())
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == code, result.output
    report = json.loads(result.output)
    assert report["lagging"] is (code == 1)
    assert report["prefect_error"] == "PREFECT_API_URL is not set"


def test_redis_down_is_exit_3_with_a_json_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("DNC_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("DNC_REDIS_CONNECT_TIMEOUT_S", "0.2")
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 3
    assert json.loads(result.output)["error"] == "redis_unavailable"


async def test_a_number_retrying_after_a_failure_still_counts_and_lags(
    fake_redis: aioredis.Redis,
) -> None:
    keys = RedisKeys("st")
    await fill(fake_redis, keys, waited_ms=90_000, dead=0)
    oldest = (await fake_redis.zrange(keys.pending, 0, 0))[0].decode()
    # the oldest failed temporarily: out of the pending set, waiting out its backoff
    await fake_redis.zrem(keys.pending, oldest)
    await fake_redis.zadd(keys.deferred, {oldest: NOW_MS + 60_000})
    await fake_redis.hset(keys.retry_state, oldest, f"1:{NOW_MS - 90_000}:{NOW_MS - 1_000}")
    queue = await read_queue(fake_redis, keys, NOW_MS)
    assert (queue.backlog, queue.retrying, queue.oldest_pending_age_s) == (2, 1, 90.0)


async def test_a_stopped_archive_is_lagging_even_on_a_quiet_system(
    fake_redis: aioredis.Redis,
) -> None:
    # One entry that waited three years is a stopped archive, however few entries wait (a
    # break-it pass found status exit 0 for it).
    from dnc_sync.status import Status

    keys = RedisKeys("st")
    await fake_redis.xadd(keys.audit, {"status": "queued", "event": "{}"}, id="1700000000000-0")
    queue = await read_queue(fake_redis, keys, NOW_MS)
    report = Status(
        queue, 3_600, None, None, archive_lag_max_entries=200_000, archive_lag_max_s=900
    )
    assert report.archive_lagging and "has waited" in (report.archive_lag or "")
    fresh = await read_queue(fake_redis, keys, 1_700_000_000_000 + 60_000)
    assert not Status(fresh, 3_600, None, None, 200_000, 900).archive_lagging
