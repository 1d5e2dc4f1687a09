"""Per-number hashes kept in buckets (``dnc.number_hash``, ``dnc/lua/number_hash.lua``):
the scripts and Python agree on where a number lives, buckets stay compact listpacks, and
entries written before buckets (the legacy flat hashes) are still honoured, then moved."""

from __future__ import annotations

import random
import uuid

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.number_hash import later_state, ledger, states
from dnc.number_slots import number_from_slot, number_slot
from dnc.ownership import ADOPTED, OwnedRecord, OwnershipLedger, OwnershipUpdate
from dnc.pending import PendingQueue
from dnc.reconcile.state import StateReader
from dnc.state import read_latest
from dnc.store import EventStore, RecordStatus, StoreLimits, load_lua
from tests.stored import all_states, ledger_entries

NUMBER = "+12025550123"
T0 = 1_794_994_200_000


def event(
    ms: int,
    action: Action = Action.OPT_OUT,
    number: str = NUMBER,
    received: int = T0,
    *,
    caller_id: str | None = None,
    expires: int | None = None,
) -> StoredEvent:
    fingerprint = f"{number}|{action.value}|{ms}" + ("" if expires is None else f"|{expires}")
    return StoredEvent(
        eventId=caller_id or derive_event_id(fingerprint),
        eventIdDerived=caller_id is None,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=received,
        region="US",
        sender="bearer-0",
        expiresMs=expires,
    )


@pytest.fixture
def keys(namespace: str) -> RedisKeys:
    return RedisKeys(namespace)


@pytest.fixture
def store(any_redis: aioredis.Redis, keys: RedisKeys) -> EventStore:
    return EventStore(any_redis, keys, StoreLimits())


@given(st.from_regex(r"\+[1-9][0-9]{5,14}", fullmatch=True))
def test_a_slot_gives_the_number_back(number: str) -> None:
    suffix, field = number_slot(number)
    assert len(suffix) == 4 and suffix.isdigit() and field.isdigit()
    assert number_from_slot(suffix, field) == number


def test_the_bucket_is_the_last_four_digits() -> None:
    assert RedisKeys("dnc").state(NUMBER) == ("{dnc}:state:0123", "1202555")
    assert RedisKeys("dnc").owned_entry(NUMBER) == ("{dnc}:owned:0123", "1202555")


async def test_the_script_writes_where_python_reads(
    store: EventStore, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    numbers = ["+12025550123", "+442079460123", "+8613800138000", "+2901234"]
    for n in numbers:
        assert await store.record(event(T0, number=n)) is RecordStatus.QUEUED
    for n in numbers:
        key, field = keys.state(n)
        assert (await any_redis.hget(key, field) or b"").startswith(f"{T0}:optOut ".encode())
    assert await any_redis.exists(keys.watermark) == 0
    assert sorted(await all_states(any_redis, keys)) == sorted(numbers)


async def test_buckets_stay_listpacks(real_redis: aioredis.Redis, keys: RedisKeys) -> None:
    """2,000 numbers spread over the buckets, a third with a caller's UUID id and an expiry
    (a state over 64 bytes): every bucket is a listpack (the compact encoding the memory
    figures rest on), the ledger's too; the long states are in the long hash."""
    store = EventStore(real_redis, keys, StoreLimits())
    rng = random.Random(5)
    numbers = [f"+1212{rng.randrange(2_000_000, 9_999_999)}" for _ in range(2_000)]
    events = [
        event(T0, number=n)
        if i % 3
        else event(T0, number=n, caller_id=f"contact-{uuid.UUID(int=i)}", expires=T0 + 10**10)
        for i, n in enumerate(numbers)
    ]
    await store.record_many(events)
    assert await real_redis.hlen(keys.state_long) == len({e.e164 for e in events[::3]})
    owned = {n: OwnedRecord(n, T0, "run") for n in numbers}
    await OwnershipLedger(real_redis, keys).apply(OwnershipUpdate(grant=owned))
    for prefix in (keys.state_prefix, keys.owned_prefix):
        buckets = [k async for k in real_redis.scan_iter(match=prefix + "*", count=1_000)]
        assert len(buckets) > 1_000
        encodings = {await real_redis.object("encoding", k) for k in buckets}
        assert encodings == {b"listpack"}
    assert len(await ledger_entries(real_redis, keys)) == len(set(numbers))


async def test_a_legacy_state_still_orders_events_and_moves_on_the_next_change(
    store: EventStore, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await any_redis.hset(keys.watermark, NUMBER, f"{T0}:optOut 0")  # written before buckets
    assert await store.record(event(T0 - 1, Action.OPT_IN)) is RecordStatus.SUPERSEDED
    assert await any_redis.hget(keys.watermark, NUMBER) == f"{T0}:optOut 0".encode()
    assert await any_redis.exists(keys.state(NUMBER)[0]) == 0
    assert await store.record(event(T0 + 1, Action.OPT_IN)) is RecordStatus.QUEUED
    assert await any_redis.hexists(keys.watermark, NUMBER) == 0
    key, field = keys.state(NUMBER)
    assert (await any_redis.hget(key, field) or b"").startswith(f"{T0 + 1}:optIn ".encode())


async def test_a_legacy_state_is_claimed_and_settled(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    """A number pending with its state in the legacy hash (recorded before an upgrade) is
    claimed with that state and settled by comparing it."""
    await any_redis.hset(keys.watermark, NUMBER, f"{T0}:optOut 0")
    await any_redis.zadd(keys.pending, {NUMBER: T0})
    queue = PendingQueue(any_redis, keys)
    assert await queue.acquire_lease("run", 60_000)
    [claim] = await queue.claim("run", 10)
    assert claim.watermark == f"{T0}:optOut 0"
    assert claim.event.action is Action.OPT_OUT
    assert await queue.acknowledge([claim]) == [True]
    assert await any_redis.zcard(keys.pending) == 0


async def test_requeue_and_resync_see_legacy_states(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await any_redis.hset(keys.watermark, NUMBER, f"{T0}:optOut 0")
    queue = PendingQueue(any_redis, keys)
    assert await queue.resync([NUMBER, "+12025550199"], T0) == 1  # the unknown one is not put back
    assert await any_redis.zrange(keys.pending, 0, -1) == [NUMBER.encode()]


async def test_known_numbers_lists_legacy_and_bucketed_ones(
    store: EventStore, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await any_redis.hset(keys.watermark, "+12025550100", f"{T0}:optIn 0")
    await store.record(event(T0, number="+12025550101"))
    reader = StateReader(any_redis, keys)
    found = [n async for page in reader.known_numbers() for n in page]
    assert sorted(found) == ["+12025550100", "+12025550101"]
    [old, new] = await reader.states(["+12025550100", "+12025550101"])
    assert (old.action, new.action) == (Action.OPT_IN, Action.OPT_OUT)


async def test_a_legacy_ledger_entry_is_honoured_kept_by_adoption_and_moved_on_write(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    ours = OwnedRecord(NUMBER, T0, "old-run")
    await any_redis.hset(keys.owned, NUMBER, ours.encode(NUMBER))  # written before buckets
    book = OwnershipLedger(any_redis, keys)
    assert await book.removable([NUMBER], now_ms=T0) == {NUMBER}
    assert await book.count() == 1
    adopted = OwnedRecord(NUMBER, T0 + 5, "adoption", how=ADOPTED)
    assert await book.adopt([(NUMBER, adopted), ("+12025550100", adopted)]) == 1
    assert (await book.entries([NUMBER]))[NUMBER] == ours  # kept as it was
    newer = OwnedRecord(NUMBER, T0 + 9, "new-run")
    await book.apply(OwnershipUpdate(grant={NUMBER: newer}))
    assert await any_redis.exists(keys.owned) == 0
    assert await any_redis.hget(*keys.owned_entry(NUMBER)) == newer.encode(NUMBER).encode()
    assert await book.count() == 2
    assert await book.release([NUMBER, "+12025550100"]) == 2
    assert await ledger_entries(any_redis, keys) == {}


def test_the_python_and_script_helpers_name_the_same_buckets() -> None:
    k = RedisKeys("ns")
    assert states(k).slot(NUMBER) == k.state(NUMBER)
    assert ledger(k).slot(NUMBER) == k.owned_entry(NUMBER)
    assert states(k).bucket_keys()[123] == "{ns}:state:0123"
    assert states(k).number("{ns}:state:0123", b"1202555") == NUMBER


async def test_a_later_state_in_the_flat_hash_wins_over_the_bucket(
    store: EventStore, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    """A rolling deploy: our receiver wrote an opt-in to the bucket, then a receiver of the
    version before buckets recorded a later opt-out in the flat hash. Every reader takes the
    opt-out; the sync claims and settles it; an event between the two is superseded."""
    assert await store.record(event(T0, Action.OPT_IN)) is RecordStatus.QUEUED
    await any_redis.hset(keys.watermark, NUMBER, f"{T0 + 60_000}:optOut 0")  # the old writer
    assert await store.record(event(T0 + 30_000, Action.OPT_OUT)) is RecordStatus.SUPERSEDED
    [latest] = await read_latest(any_redis, keys, [NUMBER])
    assert latest is not None and (latest.action, latest.eventMs) == (Action.OPT_OUT, T0 + 60_000)
    [state] = await StateReader(any_redis, keys).states([NUMBER])
    assert state.action is Action.OPT_OUT
    queue = PendingQueue(any_redis, keys)
    assert await queue.acquire_lease("run", 60_000)
    [claim] = await queue.claim("run", 10)
    assert claim.event.action is Action.OPT_OUT and claim.watermark == f"{T0 + 60_000}:optOut 0"
    assert await queue.acknowledge([claim]) == [True]
    assert await store.record(event(T0 + 90_000, Action.OPT_IN)) is RecordStatus.QUEUED
    assert await any_redis.hexists(keys.watermark, NUMBER) == 0  # moved on the next change


@pytest.mark.parametrize(
    ("a", "b", "later"),
    [
        (f"{T0 + 1}:optIn 0", f"{T0}:optOut 0", True),
        (f"{T0}:optOut 0", f"{T0}:optIn 0", True),
        (f"{T0}:optIn 0", f"{T0}:optOut 0", False),
        (f"{T0}:optOut", f"{T0}:optOut:{T0 + 5} 0", True),  # for ever beats a lapse
        (f"{T0}:optOut:{T0 + 5} 0", f"{T0}:optOut 0", False),
        (f"{T0}:optOut:{T0 + 9} 0", f"{T0}:optOut:{T0 + 5} 0", True),
        (f"{T0}:optOut 0", f"{T0}:optOut 1", False),  # the same watermark: the bucket stays
        ("garbage", f"{T0}:optIn 0", False),
        (f"{T0}:optIn 0", "garbage", True),
    ],
)
async def test_python_and_lua_agree_on_the_later_state(
    any_redis: aioredis.Redis, keys: RedisKeys, a: str, b: str, later: bool
) -> None:
    """``later_state`` in Python and in ``number_hash.lua`` (run through the claim script's
    read of a number held in both places)."""
    assert later_state(a, b) is later
    await any_redis.hset(keys.watermark, NUMBER, a)
    await any_redis.hset(*keys.state(NUMBER), b)
    await any_redis.zadd(keys.pending, {NUMBER: T0})
    await any_redis.set(keys.sync_lease, "run")
    claim = any_redis.register_script(load_lua("claim.lua", "number_hash.lua"))
    names = [keys.sync_lease, keys.pending, keys.watermark, keys.latest]
    rows = await claim(keys=[*names, keys.deferred, keys.retry_state], args=["run", 10, T0])
    async with any_redis.pipeline(transaction=True) as pipe:
        read = states(keys).queue_get(pipe, [NUMBER])
        [value] = read(iter(await pipe.execute()))
    assert rows[2] == value == (a if later else b).encode()


async def test_a_long_state_is_kept_out_of_its_bucket_and_moves_back(
    store: EventStore, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    """A state over 64 bytes (a caller's long id) is in the long hash, not its bucket; it is
    read, claimed and settled from there, and the number's next short state moves back."""
    long_id = "crm-" + "x" * 100
    assert await store.record(event(T0, caller_id=long_id)) is RecordStatus.QUEUED
    key, field = keys.state(NUMBER)
    assert await any_redis.hexists(key, field) == 0
    value = await any_redis.hget(keys.state_long, NUMBER)
    assert value is not None and len(value) > 64
    [latest] = await read_latest(any_redis, keys, [NUMBER])
    assert latest is not None and latest.eventId == long_id
    found = [n async for page in StateReader(any_redis, keys).known_numbers() for n in page]
    assert NUMBER in found
    queue = PendingQueue(any_redis, keys)
    assert await queue.acquire_lease("run", 60_000)
    [claim] = await queue.claim("run", 10)
    assert claim.event.eventId == long_id
    assert await queue.acknowledge([claim]) == [True]
    assert await store.record(event(T0 + 1, Action.OPT_IN)) is RecordStatus.QUEUED
    assert await any_redis.hexists(keys.state_long, NUMBER) == 0
    assert (await any_redis.hget(key, field) or b"").startswith(f"{T0 + 1}:optIn ".encode())
    assert await store.record(event(T0 + 2, caller_id=long_id + "y")) is RecordStatus.QUEUED
    assert await any_redis.hexists(key, field) == 0  # and out again
    assert await all_states(any_redis, keys) == {
        NUMBER: await any_redis.hget(keys.state_long, NUMBER)
    }


async def test_a_long_ledger_entry_is_kept_out_of_its_bucket(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    book = OwnershipLedger(any_redis, keys)
    long_record = OwnedRecord("contact-" + "9" * 80, T0, "run")
    short_record = OwnedRecord(NUMBER, T0, "run")
    other = "+12025550100"
    await book.apply(OwnershipUpdate(grant={NUMBER: long_record, other: short_record}))
    assert await any_redis.hexists(keys.owned_long, NUMBER) == 1
    assert await any_redis.hexists(*keys.owned_entry(NUMBER)) == 0
    assert await book.entries([NUMBER, other]) == {NUMBER: long_record, other: short_record}
    assert await book.count() == 2
    await book.apply(OwnershipUpdate(grant={NUMBER: short_record}))
    assert await any_redis.exists(keys.owned_long) == 0
    assert (await book.entries([NUMBER]))[NUMBER] == short_record
    assert await book.release([NUMBER, other]) == 2
    assert await ledger_entries(any_redis, keys) == {}
