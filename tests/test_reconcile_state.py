"""What Redis holds for many numbers (``dnc.reconcile.state.StateReader``), the numbers a
listing showed (``dnc.reconcile.seen.SeenNumbers``) and the repair's requeue
(``resync.lua`` through ``PendingQueue.resync``); on fakeredis and the real redis-server."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.reconcile.drift import NumberState
from dnc.reconcile.seen import SeenNumbers
from dnc.reconcile.state import SCAN_COUNT, StateReader
from dnc.state import watermark_of
from dnc.store import EventStore, StoreLimits
from tests.stored import all_states
from tests.test_reconcile_run import scored

T0 = 1_794_994_200_000
DAY = 86_400_000


@pytest.fixture
def keys(namespace: str) -> RedisKeys:
    return RedisKeys(namespace)


@pytest.fixture
def reader(any_redis: aioredis.Redis, keys: RedisKeys) -> StateReader:
    return StateReader(any_redis, keys)


def stored(number: str, action: Action, expires_ms: int | None = None) -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|{action.value}|{T0}"),
        eventIdDerived=True,
        e164=number,
        action=action,
        eventMs=T0,
        receivedMs=T0,
        expiresMs=expires_ms,
    )


async def test_states_of_every_kind(
    any_redis: aioredis.Redis, keys: RedisKeys, reader: StateReader
) -> None:
    r = any_redis
    await r.hset(
        keys.watermark,
        mapping={
            "+12025550101": f"{T0}:optOut:{T0 + DAY}",  # expiry in the watermark
            "+12025550102": f"{T0}:optOut",  # permanent (its event has no expiry)
            "+12025550103": f"{T0}:optOut",  # two-part, written before expiries in watermarks
            "+12025550104": f"{T0}:optIn",
            "+12025550105": f"{T0}:optOut:{T0 + 2 * DAY}",  # pending
            "+12025550106": f"{T0}:optIn",  # waiting out a retry backoff
            "+12025550107": f"{T0}:optOut",  # dead-lettered
            "+12025550108": f"{T0}:optOut",  # owned
            "+12025550109": f"{T0}:optIn",  # an add of ours in flight
            "+12025550110": "garbage",
            "+12025550111": f"{T0}:sideways",
        },
    )
    await r.hset(
        keys.latest,
        mapping={
            "+12025550102": stored("+12025550102", Action.OPT_OUT).model_dump_json(),
            "+12025550103": stored("+12025550103", Action.OPT_OUT, T0 + 3 * DAY).model_dump_json(),
            "+12025550107": "not json",
            "+12025550108": json.dumps({"expiresMs": "soon"}),
        },
    )
    await r.zadd(keys.pending, {"+12025550105": T0})
    await r.zadd(keys.deferred, {"+12025550106": T0 + 60_000})
    await r.hset(keys.dead_letters, "+12025550107", "{}")
    await r.hset(keys.owned, "+12025550108", "{}")
    await r.hset(keys.adds_in_flight, "+12025550109", T0)
    numbers = [f"+120255501{n:02d}" for n in range(1, 12)]
    numbers.append("+19995550000")  # nothing known
    assert await reader.states(numbers) == [
        NumberState(Action.OPT_OUT, T0 + DAY),
        NumberState(Action.OPT_OUT, None),
        NumberState(Action.OPT_OUT, T0 + 3 * DAY),
        NumberState(Action.OPT_IN, None),
        NumberState(Action.OPT_OUT, T0 + 2 * DAY, in_flight=True),
        NumberState(Action.OPT_IN, None, in_flight=True),
        NumberState(Action.OPT_OUT, None, dead_lettered=True),
        NumberState(Action.OPT_OUT, None, owned=True),
        NumberState(Action.OPT_IN, None, owned=True),
        NumberState(None),
        NumberState(None),
        NumberState(None),
    ]


async def test_states_of_no_numbers_and_repeated_numbers(
    any_redis: aioredis.Redis, keys: RedisKeys, reader: StateReader
) -> None:
    assert await reader.states([]) == []
    await any_redis.hset(keys.watermark, "+12025550101", f"{T0}:optIn")
    assert await reader.states(["+12025550101", "+12025550101"]) == [
        NumberState(Action.OPT_IN),
        NumberState(Action.OPT_IN),
    ]


async def test_states_read_what_the_receiver_wrote(
    any_redis: aioredis.Redis, keys: RedisKeys, reader: StateReader
) -> None:
    store = EventStore(any_redis, keys, StoreLimits())
    await store.record(stored("+12025550101", Action.OPT_OUT, T0 + DAY))
    await store.record(stored("+12025550102", Action.OPT_OUT))
    await store.record(stored("+12025550103", Action.OPT_IN))
    marks = await all_states(any_redis, keys)
    assert watermark_of(marks["+12025550101"].decode()) == f"{T0}:optOut:{T0 + DAY}"
    assert await reader.states(["+12025550101", "+12025550102", "+12025550103"]) == [
        NumberState(Action.OPT_OUT, T0 + DAY, in_flight=True),
        NumberState(Action.OPT_OUT, None, in_flight=True),
        NumberState(Action.OPT_IN, None, in_flight=True),
    ]


async def test_known_numbers_lists_each_number_once_over_several_scans(
    any_redis: aioredis.Redis, keys: RedisKeys, reader: StateReader
) -> None:
    count = 2 * SCAN_COUNT + 500
    numbers = {f"+1202{n:07d}" for n in range(count)}
    await any_redis.hset(keys.watermark, mapping=dict.fromkeys(numbers, f"{T0}:optIn"))
    chunks = [chunk async for chunk in reader.known_numbers()]
    listed = [number for chunk in chunks for number in chunk]
    assert len(chunks) > 1
    assert len(listed) == count  # the hash is not resized mid-scan: no repeats
    assert set(listed) == numbers
    assert all(isinstance(n, str) for n in listed)


async def test_known_numbers_of_an_empty_namespace(reader: StateReader) -> None:
    assert [chunk async for chunk in reader.known_numbers()] == []


def test_seen_numbers_says_which_are_new() -> None:
    with SeenNumbers() as seen:
        assert seen.add(["+3", "+1", "+2"]) == ["+3", "+1", "+2"]
        assert seen.add(["+2", "+4", "+4", "+1", "+5", "+4"]) == ["+4", "+5"]
        assert seen.add([]) == []
        assert seen.contains(["+1", "+9", "+5"]) == {"+1", "+5"}
        assert seen.contains([]) == set()
        assert seen.count == 5


def test_seen_numbers_chunks_large_calls() -> None:
    first = [f"+1202{n:07d}" for n in range(2_500)]  # > 900 parameters: several queries
    with SeenNumbers() as seen:
        assert seen.add(first[:1_000]) == first[:1_000]
        assert seen.add(first + first) == first[1_000:]
        assert seen.contains(first) == set(first)
        assert seen.count == 2_500


def test_seen_numbers_have_no_file_anyone_could_find() -> None:
    """SQLite's private temporary database: no path, removed once opened, so a killed run
    leaves no file of numbers behind."""
    with SeenNumbers() as seen:
        seen.add(["+12025550101"])
        rows = seen._db.execute("PRAGMA database_list").fetchall()
        assert [(name, path) for _, name, path in rows] == [("main", "")]


async def test_resync_requeues_only_settled_numbers(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    r = any_redis
    queue = PendingQueue(r, keys)
    await r.hset(
        keys.watermark,
        mapping={
            "+12025550101": f"{T0}:optOut",  # settled: goes back
            "+12025550102": f"{T0}:optIn",  # settled: goes back
            "+12025550103": f"{T0}:optOut",  # already pending: keeps its score
            "+12025550104": f"{T0}:optOut",  # dead-lettered
            "+12025550105": f"{T0}:optOut",  # waiting out a backoff
        },
    )
    await r.zadd(keys.pending, {"+12025550103": T0 - 5})
    await r.hset(keys.dead_letters, "+12025550104", "{}")
    await r.zadd(keys.deferred, {"+12025550105": T0 + 60_000})
    numbers = [f"+120255501{n:02d}" for n in range(1, 7)]  # ...106: no watermark
    assert await queue.resync(numbers, now_ms=T0 + 1_000) == 2
    assert await scored(r, keys.pending) == [
        ("+12025550103", T0 - 5),
        ("+12025550101", T0 + 1_000),
        ("+12025550102", T0 + 1_000),
    ]
    assert await r.zscore(keys.deferred, "+12025550105") == T0 + 60_000
    assert await r.hexists(keys.dead_letters, "+12025550104")
    # a second call changes nothing
    assert await queue.resync(numbers, now_ms=T0 + 2_000) == 0
    assert await r.zscore(keys.pending, "+12025550101") == T0 + 1_000
    assert await queue.resync([]) == 0


async def test_resync_of_many_numbers_runs_in_chunks(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    numbers = [f"+1202{n:07d}" for n in range(1_203)]
    await any_redis.hset(keys.watermark, mapping=dict.fromkeys(numbers, f"{T0}:optOut"))
    assert await PendingQueue(any_redis, keys).resync(numbers, now_ms=T0) == 1_203
    assert await any_redis.zcard(keys.pending) == 1_203
