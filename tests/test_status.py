"""``dnc-sync status``: the queue's figures from Redis, exit codes for probes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from rich.console import Console
from sqlalchemy import Engine
from typer.testing import CliRunner

from dnc.audit import schema
from dnc.audit.database import open_engine, upgrade
from dnc.keys import RedisKeys
from dnc.rejection_reasons import count_rejections
from dnc.settings import RedisSettings
from dnc.store import EventStore, StoreLimits
from dnc.timestamps import iso_utc
from dnc_sync.cli import app
from dnc_sync.status import GapCounts, Status, read_gaps, read_queue
from dnc_sync.status_cli import audit_gaps, redis_address, render

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
    # each under its own heading: a caller's bad fields are not an attacker's wrong secret
    assert queue.rejected_by_reason == {"phoneNumber:too_short": 2, "unauthorized": 1}
    assert queue.rejected_unauthenticated_by_reason == {"unauthorized": 1}
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
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    waited_ms: int,
    dead: int,
    code: int,
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
    store = f"sqlite:///{tmp_path}/audit.sqlite3"
    upgrade(open_engine(store))
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", store)
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


# -- entries lost before archiving (the audit store's gaps) ----------------------------------


def gap(stream: str, missing: int | None, found_ms: int) -> dict[str, object]:
    return {
        "stream": stream,
        "after_id": f"{found_ms - 100}-0",
        "through_id": f"{found_ms - 10}-0",
        "missing": missing,
        "found_ms": found_ms,
    }


def add_gaps(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            schema.gaps.insert(),
            [
                gap("unauthenticated", 40, NOW_MS - 3_000),
                gap("unauthenticated", None, NOW_MS - 1_000),
                gap("events", 2_000_000_000_000, NOW_MS - 2_000),  # more than a 32-bit sum
            ],
        )


def test_read_gaps_counts_per_stream(engine: Engine) -> None:
    assert read_gaps(engine).total == GapCounts(0, 0, 0, None)
    add_gaps(engine)
    gaps = read_gaps(engine)
    assert gaps.total == GapCounts(3, 2_000_000_000_040, 1, iso_utc(NOW_MS - 1_000))
    assert gaps.by_stream == {
        "events": GapCounts(1, 2_000_000_000_000, 0, iso_utc(NOW_MS - 2_000)),
        "unauthenticated": GapCounts(2, 40, 1, iso_utc(NOW_MS - 1_000)),
    }


async def test_an_unreadable_store_is_unknown_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "secret-place" / "audit.sqlite3"
    gaps, why = await audit_gaps(f"sqlite:///{missing}")
    assert gaps is None and why is not None and "not migrated" in why
    assert "secret-place" not in why and "\n" not in why
    assert not missing.exists()  # read-only: nothing created
    from tests.conftest import free_port

    url = f"postgresql+psycopg://who:pa55word@127.0.0.1:{free_port()}/db?connect_timeout=2"
    gaps, why = await audit_gaps(url)
    assert gaps is None and why is not None and why.startswith("cannot read the audit store")
    assert "pa55word" not in why and "127.0.0.1" not in why and "\n" not in why
    empty = tmp_path / "empty.sqlite3"
    open_engine(f"sqlite:///{empty}").dispose()  # there, but not migrated
    gaps, why = await audit_gaps(f"sqlite:///{empty}")
    assert gaps is None and why is not None and "migrate" in why


async def test_gaps_render_red_and_unknown_renders_the_reason(
    fake_redis: aioredis.Redis, engine: Engine
) -> None:
    queue = await read_queue(fake_redis, RedisKeys("st"), NOW_MS)
    add_gaps(engine)
    report = Status(queue, 3_600, None, None, 200_000, 900, read_gaps(engine), None)
    assert report.has_gaps and report.as_json()["has_gaps"] is True
    console = Console(record=True, force_terminal=True, color_system="standard", width=250)
    render(report, console)
    text = console.export_text(styles=True)
    line = next(row for row in text.splitlines() if "lost before archiving" in row)
    assert "\x1b[31m" in line and "2,000,000,000,040 entries in 3 gap(s), 1 of unknown size" in (
        line
    )
    unknown = Status(queue, 3_600, None, None, audit_error="cannot read the audit store: X")
    assert not unknown.has_gaps
    console = Console(record=True, width=250)
    render(unknown, console)
    line = next(row for row in console.export_text().splitlines() if "lost before" in row)
    assert "unknown (cannot read the audit store: X)" in line


@pytest.mark.redis
@pytest.mark.parametrize(("dead", "code"), [(0, 5), (1, 4)])
def test_gaps_exit_5_after_the_other_codes(
    redis_url: str,
    audit_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    dead: int,
    code: int,
) -> None:
    engine = open_engine(audit_database_url)
    upgrade(engine)
    add_gaps(engine)
    engine.dispose()
    namespace = "st" + uuid.uuid4().hex[:8]

    async def setup() -> None:
        client = aioredis.Redis.from_url(redis_url)
        for i in range(dead):
            await client.hset(RedisKeys(namespace).dead_letters, f"+1202555090{i}", "{}")
        await client.aclose()

    asyncio.run(setup())
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", audit_database_url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == code, result.output
    report = json.loads(result.output)
    assert report["has_gaps"] is True and report["audit_error"] is None
    assert report["archive_gaps"]["total"] == {
        "gaps": 3,
        "missing": 2_000_000_000_040,
        "unknown_size": 1,
        "latest_found": iso_utc(NOW_MS - 1_000),
    }
    assert set(report["archive_gaps"]["by_stream"]) == {"events", "unauthenticated"}
    text = CliRunner().invoke(app, ["status"])
    assert text.exit_code == code and "lost before archiving" in text.output


@pytest.mark.redis
def test_an_unreadable_store_is_reported_in_one_line(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", "st" + uuid.uuid4().hex[:8])
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/nowhere.sqlite3")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 6, result.output
    report = json.loads(result.output)
    assert report["archive_gaps"] is None and report["has_gaps"] is False
    assert "not migrated" in report["audit_error"] and str(tmp_path) not in result.output
    text = CliRunner().invoke(app, ["status"])
    assert text.exit_code == 6 and "unknown (the audit store is not there" in text.output


def test_an_unreadable_audit_store_is_exit_6_unless_skipped(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Fourth break-it pass: a stopped store read as "no gaps" (exit 0) to monitoring.
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", "st" + uuid.uuid4().hex[:8])
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/none.sqlite3")
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 6, result.output
    assert json.loads(result.output)["audit_error"]
    skipped = CliRunner().invoke(app, ["status", "--json", "--no-audit"])
    assert skipped.exit_code == 0, skipped.output
