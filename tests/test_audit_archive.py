"""The archive: stream entries reach the audit store once each, streams are trimmed only
after a commit, losses before archiving are recorded as gaps; on SQLite and PostgreSQL, with
the real redis-server."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine, func, select

from dnc.applications import Application
from dnc.audit import schema
from dnc.audit.archive import Archiver
from dnc.audit.entries import normaliser
from dnc.audit.lag import backlog
from dnc.audit.streams import streams
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.store import EventStore, StoreLimits
from dnc.target import ChangeOutcome, OutcomeKind

T0 = 1_794_994_200_000


def event(number: str, ms: int, action: Action = Action.OPT_OUT) -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|{action.value}|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=ms,
    )


def archiver(client: aioredis.Redis, keys: RedisKeys, engine: Engine, batch: int = 7) -> Archiver:
    return Archiver(client, engine, streams(keys, normaliser("US")), batch=batch)


def count(engine: Engine, table: schema.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


async def test_every_entry_is_archived_once_and_then_trimmed(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(30):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await store.record(event("+12025550000", T0))  # a duplicate delivery
    await store.record_rejection(
        {"status": "422", "error": "invalid_event", "phoneNumber": "(202) 555-0199"}
    )
    await store.record_rejection({"status": "401", "error": "unauthorized"}, authenticated=False)
    report = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert report.archived == {"events": 31, "rejected": 1, "unauthenticated": 1, "applications": 0}
    assert report.drained and report.gaps == dict.fromkeys(report.gaps, 0)
    assert count(engine, schema.events) == 31
    assert await real_redis.xlen(keys.audit) == 0  # trimmed, once committed
    with engine.connect() as connection:
        statuses = connection.execute(
            select(schema.events.c.status, func.count()).group_by(schema.events.c.status)
        ).all()
        refused = connection.execute(select(schema.rejections.c.number)).scalars().all()
    assert dict(statuses) == {"queued": 30, "duplicate": 1}
    assert sorted(refused, key=str) == ["+12025550199", None]  # read like intake, full number


async def test_a_batch_archived_twice_is_written_once(
    real_redis: aioredis.Redis, namespace: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run dies after its commit, before its trim: the next run reads the same entries.
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(10):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    first = archiver(real_redis, keys, engine, batch=4)

    async def no_trim(*args: object, **kwargs: object) -> object:
        if args and args[0] == "xtrim":
            raise RuntimeError("killed before the trim")
        return await original(*args, **kwargs)

    original = first._redis
    monkeypatch.setattr(first, "_redis", no_trim)
    with pytest.raises(RuntimeError):
        await first.run(budget_s=30)
    assert count(engine, schema.events) == 4 and await real_redis.xlen(keys.audit) == 10
    report = await archiver(real_redis, keys, engine, batch=4).run(budget_s=30)
    assert report.archived["events"] == 6  # all read again; the first 4 skipped by key
    assert count(engine, schema.events) == 10 and await real_redis.xlen(keys.audit) == 0


async def test_a_failed_commit_trims_nothing(
    real_redis: aioredis.Redis, namespace: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(5):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    broken = archiver(real_redis, keys, engine)

    def database_down(*_args: object) -> None:
        raise ConnectionError("database restarting")

    monkeypatch.setattr(broken, "_write", database_down)
    with pytest.raises(ConnectionError):
        await broken.run(budget_s=30)
    assert await real_redis.xlen(keys.audit) == 5 and count(engine, schema.events) == 0


async def test_entries_lost_before_archiving_are_recorded_as_a_gap(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits(unauthenticated_max_len=1_000))
    for i in range(3_000):  # a flood of strangers: the capped stream drops the oldest
        await store.record_rejection({"status": "401", "n": str(i)}, authenticated=False)
    report = await archiver(real_redis, keys, engine, batch=1_000).run(budget_s=30)
    assert report.gaps["unauthenticated"] > 0  # entries found lost
    with engine.connect() as connection:
        (gap,) = connection.execute(select(schema.gaps)).mappings().all()
    assert (gap["stream"], gap["after_id"]) == ("unauthenticated", "0-0")
    assert gap["missing"] == report.gaps["unauthenticated"]
    assert gap["missing"] + count(engine, schema.rejections) == 3_000  # every entry accounted for
    archived = count(engine, schema.rejections)
    assert 0 < archived < 3_000 and await real_redis.xlen(keys.rejected_unauthenticated) == 0
    # Archived entries trimmed by the archive itself are no gap: a second run records none.
    await store.record_rejection({"status": "401"}, authenticated=False)
    again = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert again.gaps["unauthenticated"] == 0 and again.archived["unauthenticated"] == 1


async def test_applications_are_archived_with_cxone_answer(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    keys = RedisKeys(namespace)
    store, queue = EventStore(real_redis, keys, StoreLimits()), PendingQueue(real_redis, keys)
    await store.record(event("+12025550101", T0))
    await queue.acquire_lease("run", 10_000)
    (claim,) = await queue.claim("run", 10)
    outcome = ChangeOutcome(claim.e164, OutcomeKind.APPLIED, "", None, 200, "2025550101")
    await queue.acknowledge(
        [claim], {claim.e164: Application(T0 + 9, "dnc-groups", "r-1", outcome)}
    )
    await archiver(real_redis, keys, engine).run(budget_s=30)
    with engine.connect() as connection:
        (row,) = connection.execute(select(schema.applications)).mappings().all()
    assert (row["number"], row["outcome"], row["result"], row["http_status"]) == (
        "+12025550101",
        "acknowledged",
        "applied",
        200,
    )
    assert (row["record_id"], row["flow_run_id"], row["requested_ms"]) == (
        "2025550101",
        "r-1",
        T0 + 9,
    )
    assert row["event_id"] == claim.event.eventId


async def test_backlog_counts_what_is_not_archived(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    await store.record(event("+12025550101", T0))
    found = await backlog(real_redis, keys)
    assert found["events"][0] == 1 and found["events"][1] is not None
    assert found["applications"] == (0, None)
    await archiver(real_redis, keys, engine).run(budget_s=30)
    assert (await backlog(real_redis, keys))["events"] == (0, None)


def test_an_unreadable_entry_is_kept_not_skipped() -> None:
    from dnc.audit.entries import event_row

    row = event_row("5-1", {"status": "queued", "event": "{not json"})
    assert (row["stream_ms"], row["stream_seq"], row["event"]) == (5, 1, "{not json")
    assert json.dumps(row)  # every column has a value a database takes


async def test_metrics_tell_a_lagging_archive(fake_redis: aioredis.Redis) -> None:
    from dnc.intake import IntakePolicy
    from dnc.settings import AuditSettings, ReceiverSettings, RedisSettings
    from receiver.app import ReceiverApp
    from tests.conftest import BEARER, make_client

    store = EventStore(fake_redis, RedisKeys("lag"), StoreLimits())
    app = ReceiverApp(
        ReceiverSettings(bearer_secrets=[BEARER]),
        IntakePolicy(),
        RedisSettings(allow_eviction=True),
        store=store,
        audit=AuditSettings(archive_lag_max_entries=1),
    )
    async with make_client(app) as client:
        text = (await client.get("/metrics")).text
        assert 'dnc_audit_unarchived_entries{stream="events"} 0.0' in text
        assert "dnc_audit_archive_lagging 0.0" in text
        await store.record(event("+12025550101", T0))
        await store.record(event("+12025550102", T0))
        text = (await client.get("/metrics")).text
    assert 'dnc_audit_unarchived_entries{stream="events"} 2.0' in text
    assert "dnc_audit_archive_lagging 1.0" in text
    assert "dnc_audit_oldest_unarchived_seconds" in text


async def test_the_record_says_who_sent_each_event_and_refusal(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    from tests.conftest import make_app, make_client

    keys = RedisKeys(namespace)
    app = make_app(EventStore(real_redis, keys, StoreLimits()))
    async with make_client(app) as client:
        body = {"phoneNumber": "(202) 555-0101", "eventName": "optOut", "timestamp": T0}
        assert (await client.post("/v1/events", json=body)).status_code == 202
        assert (await client.post("/v1/events", json=body)).status_code == 202  # duplicate
        bad = {"phoneNumber": "(202) 555-0101", "eventName": "maybe", "timestamp": T0}
        assert (await client.post("/v1/events", json=bad)).status_code == 422
    await archiver(real_redis, keys, engine).run(budget_s=30)
    with engine.connect() as connection:
        senders = connection.execute(select(schema.events.c.status, schema.events.c.sender)).all()
        refused = connection.execute(
            select(schema.rejections.c.source, schema.rejections.c.number)
        ).all()
    assert sorted(senders) == [("duplicate", "bearer-1"), ("queued", "bearer-1")]
    assert refused == [("bearer-1", "+12025550101")]


async def test_only_one_archive_run_at_a_time(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # Two runs at once would count each other's trims as losses (a break-it pass saw 1,200
    # entries "lost" that were all archived): the second one does nothing.
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(3):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await real_redis.set(keys.archive_lease, "another-run", px=10_000)
    skipped = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert skipped.skipped and skipped.archived == {} and await real_redis.xlen(keys.audit) == 3
    await real_redis.delete(keys.archive_lease)
    done = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert done.archived["events"] == 3 and not await real_redis.exists(keys.archive_lease)


async def test_a_run_that_loses_its_lease_stops(
    real_redis: aioredis.Redis, namespace: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(20):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    run = archiver(real_redis, keys, engine, batch=5)
    original, calls = run._holds_lease, [0]

    async def lose_it_after_one_batch() -> bool:
        calls[0] += 1
        if calls[0] == 3:  # before the second batch, another run took over
            await real_redis.set(keys.archive_lease, "someone-else")
        return await original()

    monkeypatch.setattr(run, "_holds_lease", lose_it_after_one_batch)
    report = await run.run(budget_s=30)
    assert report.archived["events"] == 5 and not report.drained
    assert await real_redis.get(keys.archive_lease) == b"someone-else"  # not freed by us


async def test_a_stream_that_restarts_its_count_is_recorded_as_a_gap_of_unknown_size(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # Redis restarted without its data (or the stream was deleted) after accepting events
    # that were never archived: they are gone, and the record must say so (a break-it pass
    # found the archive silently "rebasing" its count instead).
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    await store.record(event("+12025550100", T0))
    await archiver(real_redis, keys, engine).run(budget_s=30)
    for i in range(1, 6):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await real_redis.delete(keys.audit)  # as a restart without persistence leaves it
    await store.record(event("+12025550099", T0 + 99))
    report = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert report.reset == ["events"] and report.archived["events"] == 1
    assert await gap_sizes(engine) == [None]
    # Counted anew: an ordinary run records nothing more, a later loss is counted again.
    await store.record(event("+12025550098", T0 + 98))
    again = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert again.reset == [] and again.gaps["events"] == 0 and again.archived["events"] == 1
    for i in range(10, 14):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await real_redis.xtrim(keys.audit, maxlen=1, approximate=False)
    trimmed = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert trimmed.gaps["events"] == 3 and await gap_sizes(engine) == [None, 3]


async def gap_sizes(engine: Engine) -> list[int | None]:
    with engine.connect() as connection:
        return list(
            connection.execute(select(schema.gaps.c.missing).order_by(schema.gaps.c.id)).scalars()
        )


async def test_a_reset_stream_then_trimmed_is_counted_not_cancelled_out(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # Second break-it pass: 5 archived, the stream deleted, 10 new opt-outs of which 5 are
    # trimmed before the next run: the old count of 5 archived used to cancel the 5 lost.
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(5):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await archiver(real_redis, keys, engine).run(budget_s=30)
    await real_redis.delete(keys.audit)
    for i in range(5, 15):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await real_redis.xtrim(keys.audit, maxlen=5, approximate=False)
    report = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert report.reset == ["events"] and report.gaps["events"] == 5
    assert await gap_sizes(engine) == [None, 5]


async def test_a_flushed_stream_is_reported_at_the_next_run_even_if_quiet(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # Redis came back empty and nothing new arrived: the loss is reported now, not when the
    # stream is next written to.
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    await store.record(event("+12025550100", T0))
    await archiver(real_redis, keys, engine).run(budget_s=30)
    await store.record(event("+12025550101", T0 + 1))  # never archived
    await real_redis.delete(keys.audit)
    report = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert report.reset == ["events"] and await gap_sizes(engine) == [None]
    assert (await archiver(real_redis, keys, engine).run(budget_s=30)).reset == []


async def test_a_failed_write_never_quotes_the_rows(
    real_redis: aioredis.Redis, namespace: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A locked or failing store: the error Prefect logs and the CLI prints named the rows'
    # full numbers (second break-it pass). Now the driver's type and code only.
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from dnc.audit.archive_writes import AuditWriteError

    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    await store.record(event("+12025550101", T0))
    run = archiver(real_redis, keys, engine)

    def locked(*_args: object, **_kwargs: object) -> int:
        raise OperationalError(
            "INSERT ...",
            {"number": "+12025550101"},
            sqlite3.OperationalError("locked +12025550101"),
        )

    monkeypatch.setattr(
        "dnc.audit.archive_writes.advance", locked
    )  # inside the write's transaction
    with pytest.raises(AuditWriteError) as raised:
        await run.run(budget_s=30)
    assert "2025550101" not in str(raised.value) and raised.value.__cause__ is None
    assert "OperationalError" in str(raised.value)
    assert await real_redis.xlen(keys.audit) == 1  # nothing trimmed


def test_the_engine_hides_statement_parameters(engine: Engine) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE n = :n"), {"n": "+12025550101"})
    assert "2025550101" not in str(raised.value)


async def test_a_stream_restored_from_a_snapshot_taken_before_the_archive_ran(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # Third break-it pass: Redis restored from an RDB saved before the first archive run
    # holds entries the store has already; they must not be counted as lost afterwards.
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    for i in range(3):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    snapshot = await real_redis.dump(keys.audit)
    await archiver(real_redis, keys, engine).run(budget_s=30)
    await real_redis.restore(keys.audit, 0, snapshot, replace=True)  # as a restart from it
    restored = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert restored.reset == ["events"] and restored.archived["events"] == 0  # known rows
    after = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert after.gaps["events"] == 0 and await gap_sizes(engine) == [None]
    assert count(engine, schema.events) == 3


async def test_a_stream_restored_from_an_older_snapshot_is_a_reset(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # A snapshot taken after the archive's first run holds its consumer group: the stream
    # is recognised as reset because it has added fewer entries than the archive last saw.
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    await store.record(event("+12025550100", T0))
    await archiver(real_redis, keys, engine).run(budget_s=30)
    snapshot = await real_redis.dump(keys.audit)
    for i in range(1, 4):
        await store.record(event(f"+1202555{i:04d}", T0 + i))
    await archiver(real_redis, keys, engine).run(budget_s=30)
    await store.record(event("+12025550009", T0 + 9))  # never archived: lost with the restore
    await real_redis.restore(keys.audit, 0, snapshot, replace=True)
    report = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert report.reset == ["events"] and await gap_sizes(engine) == [None]


async def test_an_entry_the_database_would_refuse_does_not_stop_its_stream(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    # Fourth break-it pass: a NUL in CXone's reason (PostgreSQL's text refuses it) failed
    # every batch of the applications stream for good, and Redis grew.
    keys = RedisKeys(namespace)
    application = {
        "number": "+12025550123",
        "action": "optOut",
        "eventId": "x",
        "eventMs": 1,
        "receivedMs": 1,
        "requestedAtMs": 1,
        "result": "rejected",
        "reason": "bad\x00reason",
        "httpStatus": 2**40,  # out of an INTEGER's range
        "recordId": "r\x00",
        "adapter": "dnc-groups",
        "flowRunId": "f",
    }
    await real_redis.xadd(
        keys.applications,
        {"outcome": "dead_lettered", "settledMs": str(T0), "application": json.dumps(application)},
    )
    report = await archiver(real_redis, keys, engine).run(budget_s=30)
    assert report.archived["applications"] == 1 and report.drained
    with engine.connect() as connection:
        (row,) = connection.execute(select(schema.applications)).mappings().all()
    assert (row["reason"], row["record_id"], row["http_status"]) == (
        "bad\\x00reason",
        "r\\x00",
        None,
    )
    with engine.connect() as connection:
        (added,) = connection.execute(select(schema.cursors.c.added)).scalars().all()
    assert added == 1  # kept from the stream's first run on (it was 0 until the second)
