"""The Redis store and its Lua script, on fakeredis and on the real redis-server."""

from __future__ import annotations

import fakeredis
import pytest
import redis.asyncio as aioredis

from dnc.errors import StoreUnavailable
from dnc.events import Action, StoredEvent
from dnc.intake import alias_event_id, derive_event_id
from dnc.keys import RedisKeys
from dnc.state import watermark_of
from dnc.store import EventStore, RecordStatus, StoreLimits
from tests.conftest import free_port, make_store
from tests.stored import all_states, latest_event, recorded_event, state_value

NUMBER = "+12025550123"
T0 = 1_794_994_200_000


RECEIVED = T0 + 10_000


def event(
    ms: int,
    action: Action = Action.OPT_OUT,
    number: str = NUMBER,
    event_id: str | None = None,
    received: int = RECEIVED,
    expires: int | None = None,
) -> StoredEvent:
    fingerprint = f"{number}|{action.value}|{ms}"
    if expires is not None:  # as intake derives it: the expiry is part of the derived id
        fingerprint += f"|{expires}"
    return StoredEvent(
        eventId=event_id or derive_event_id(fingerprint),
        eventIdDerived=event_id is None,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=received,
        region="US",
        expiresMs=expires,
    )


@pytest.fixture
def store(any_redis: aioredis.Redis, namespace: str) -> EventStore:
    return make_store(any_redis, namespace)


async def pending(store: EventStore) -> dict[str, float]:
    client = store._client
    rows = await client.zrange(store.keys.pending, 0, -1, withscores=True)
    return {member.decode(): score for member, score in rows}


async def latest(store: EventStore, number: str = NUMBER) -> StoredEvent:
    return await latest_event(store._client, store.keys, number)


async def mark_of(store: EventStore, number: str = NUMBER) -> str:
    """The watermark part of the number's state (``dnc.state``)."""
    value = await state_value(store._client, store.keys, number)
    assert value is not None, f"no state for {number}"
    return watermark_of(value.decode())


async def test_first_event_is_queued_and_pending(store: EventStore) -> None:
    assert await store.record(event(T0)) is RecordStatus.QUEUED
    assert await pending(store) == {NUMBER: float(RECEIVED)}  # scored by receive time
    assert (await latest(store)).action is Action.OPT_OUT


async def test_newer_event_replaces_older(store: EventStore) -> None:
    await store.record(event(T0, Action.OPT_OUT))
    later = event(T0 + 1, Action.OPT_IN, received=RECEIVED + 7)
    assert await store.record(later) is RecordStatus.QUEUED
    # Still waiting since the first unapplied change arrived: the lag does not restart.
    assert await pending(store) == {NUMBER: float(RECEIVED)}
    assert (await latest(store)).action is Action.OPT_IN


async def test_older_event_is_superseded(store: EventStore) -> None:
    await store.record(event(T0 + 1, Action.OPT_IN))
    assert await store.record(event(T0, Action.OPT_OUT)) is RecordStatus.SUPERSEDED
    assert (await latest(store)).action is Action.OPT_IN
    assert await pending(store) == {NUMBER: float(RECEIVED)}


async def test_watermark_outlives_the_pending_entry(store: EventStore) -> None:
    await store.record(event(T0 + 1, Action.OPT_IN))
    await store._client.zrem(store.keys.pending, NUMBER)
    assert await store.record(event(T0, Action.OPT_OUT)) is RecordStatus.SUPERSEDED
    assert await pending(store) == {}


async def test_tie_goes_to_opt_out(store: EventStore) -> None:
    await store.record(event(T0, Action.OPT_IN))
    assert await store.record(event(T0, Action.OPT_OUT)) is RecordStatus.QUEUED
    assert await store.record(event(T0, Action.OPT_IN, event_id="late-in")) is (
        RecordStatus.SUPERSEDED
    )
    assert (await latest(store)).action is Action.OPT_OUT


DAY = 86_400_000
SOON, LATER = T0 + DAY, T0 + 30 * DAY


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        (SOON, None, RecordStatus.QUEUED),  # permanent beats expiring
        (None, SOON, RecordStatus.SUPERSEDED),
        (SOON, LATER, RecordStatus.QUEUED),  # the later expiry wins
        (LATER, SOON, RecordStatus.SUPERSEDED),
        (SOON, SOON, RecordStatus.SUPERSEDED),  # equal protection: the first stands
        (None, None, RecordStatus.SUPERSEDED),
    ],
    ids=[
        "expiring-then-permanent",
        "permanent-then-expiring",
        "soon-then-later",
        "later-then-soon",
        "equal-expiry",
        "both-permanent",
    ],
)
async def test_same_ms_opt_outs_keep_the_longest_protection(
    store: EventStore, first: int | None, second: int | None, status: RecordStatus
) -> None:
    assert await store.record(event(T0, expires=first, event_id="first")) is RecordStatus.QUEUED
    assert await store.record(event(T0, expires=second, event_id="second")) is status
    winner = "second" if status is RecordStatus.QUEUED else "first"
    held = await latest(store)
    assert (held.eventId, held.expiresMs) == (winner, second if winner == "second" else first)
    mark = await mark_of(store)
    expected_expiry = held.expiresMs
    assert mark == (f"{T0}:optOut" if expected_expiry is None else f"{T0}:optOut:{expected_expiry}")
    assert await pending(store) == {NUMBER: float(RECEIVED)}


async def test_watermarks_of_same_ms_opt_outs_differ(store: EventStore) -> None:
    """The sync compares whole watermark strings: two same-ms opt-outs of different protection
    must leave different watermarks, or acknowledging the first would drop the second."""
    marks = []
    for expires in (SOON, LATER, None):
        assert await store.record(event(T0, expires=expires)) is RecordStatus.QUEUED
        marks.append(await mark_of(store))
    assert marks == [f"{T0}:optOut:{SOON}", f"{T0}:optOut:{LATER}", f"{T0}:optOut"]


async def test_ties_with_expiring_opt_outs_keep_the_other_rules(store: EventStore) -> None:
    assert await store.record(event(T0, Action.OPT_IN)) is RecordStatus.QUEUED
    assert await store.record(event(T0, expires=SOON)) is RecordStatus.QUEUED  # out beats in
    assert await store.record(event(T0, Action.OPT_IN, event_id="in-2")) is (
        RecordStatus.SUPERSEDED
    )
    assert await store.record(event(T0 - 1)) is RecordStatus.SUPERSEDED  # older, permanent
    assert await store.record(event(T0 + 1, Action.OPT_IN)) is RecordStatus.QUEUED  # newer
    assert (await latest(store)).action is Action.OPT_IN


async def test_legacy_two_part_watermark_of_an_expiring_opt_out(store: EventStore) -> None:
    """Data written before expiries were part of the watermark: ``"<ms>:optOut"`` beside a
    latest event that has an expiry. The tie is judged on that event's real expiry."""
    legacy = event(T0, expires=SOON, event_id="legacy")
    await store._client.hset(store.keys.watermark, NUMBER, f"{T0}:optOut")
    await store._client.hset(store.keys.latest, NUMBER, legacy.model_dump_json(exclude_none=True))
    assert await store.record(event(T0, expires=SOON, event_id="same")) is (RecordStatus.SUPERSEDED)
    assert await store.record(event(T0, expires=LATER)) is RecordStatus.QUEUED
    # the queued write moved the number's state out of the legacy hash, into its bucket
    assert not await store._client.hexists(store.keys.watermark, NUMBER)
    assert await store._client.hget(*store.keys.state(NUMBER)) is not None
    assert await mark_of(store) == f"{T0}:optOut:{LATER}"
    # legacy data again (the bucket's entry removed: written before buckets existed)
    await store._client.hdel(*store.keys.state(NUMBER))
    await store._client.hset(store.keys.watermark, NUMBER, f"{T0}:optOut")  # a permanent one
    await store._client.hset(
        store.keys.latest, NUMBER, event(T0, event_id="old").model_dump_json(exclude_none=True)
    )
    assert await store.record(event(T0, expires=LATER * 2)) is RecordStatus.SUPERSEDED


async def test_with_replica_confirmation_a_call_that_wrote_nothing_writes_the_touch_key(
    any_redis: aioredis.Redis, namespace: str
) -> None:
    """``WAIT`` (Redis >= 7.2, Valkey) waits only for the connection's own last write: a call
    of only duplicates must still write, so that the confirmation covers the original write
    (``tests/test_store_replicas.py`` runs this against real replicas)."""
    confirming = EventStore(any_redis, RedisKeys(namespace), StoreLimits(wait_replicas=1))
    touch = confirming.keys.replication_touch

    async def run(store: EventStore, *events: StoredEvent) -> list[bytes]:
        keys, args = store._script_input(events)  # the script alone: fakeredis has no WAIT
        result: list[bytes] = await store._record_script(keys=keys, args=args)
        return result

    first = event(T0)
    assert await run(confirming, first) == [b"queued"]
    assert await any_redis.get(touch) is None  # the event itself is the write to wait for
    assert await run(confirming, first) == [b"duplicate"]
    assert await any_redis.get(touch) == b"1"
    assert await run(confirming, first, event(T0 - 1)) == [b"duplicate", b"superseded"]
    assert await any_redis.get(touch) == b"1"  # the audit entry is a write
    assert await run(confirming, event(T0, event_id=first.eventId), first) == [
        b"duplicate",
        b"duplicate",
    ]
    assert await any_redis.get(touch) == b"2"
    assert await run(make_store(any_redis, namespace), first) == [b"duplicate"]
    assert await any_redis.get(touch) == b"2"  # no WAIT follows: nothing to write


async def test_same_event_id_is_duplicate_and_changes_nothing(store: EventStore) -> None:
    first = event(T0)
    await store.record(first)
    assert await store.record(first) is RecordStatus.DUPLICATE
    assert await store.record(first) is RecordStatus.DUPLICATE
    rows = await store._client.xrange(store.keys.audit)  # each delivery is in the audit record
    assert [row[1][b"status"] for row in rows] == [b"queued", b"duplicate", b"duplicate"]
    assert len(await all_states(store._client, store.keys)) == 1


async def test_reused_event_id_for_another_event_is_a_conflict(store: EventStore) -> None:
    await store.record(event(T0, event_id="k1"))
    assert await store.record(event(T0 + 5, Action.OPT_IN, event_id="k1")) is (
        RecordStatus.ID_CONFLICT
    )
    assert (await latest(store)).eventMs == T0


async def test_audit_stream_keeps_queued_and_superseded(store: EventStore) -> None:
    await store.record(event(T0 + 1))
    await store.record(event(T0))
    rows = await store._client.xrange(store.keys.audit)
    assert [row[1][b"status"] for row in rows] == [b"queued", b"superseded"]
    assert StoredEvent.model_validate_json(rows[1][1][b"event"]).eventMs == T0


async def test_record_many_keeps_order_and_rules(store: EventStore) -> None:
    batch = [
        event(T0),
        event(T0 + 2, Action.OPT_IN),
        event(T0 + 1),
        event(T0),
        event(T0, number="+442079460123"),
    ]
    statuses = await store.record_many(batch)
    assert statuses == [
        RecordStatus.QUEUED,
        RecordStatus.QUEUED,
        RecordStatus.SUPERSEDED,
        # A derived id has no key (dnc.state): its retry after a newer event replaced it is
        # judged by the watermark, superseded (it was 'duplicate' when each id had a key).
        RecordStatus.SUPERSEDED,
        RecordStatus.QUEUED,
    ]
    assert await pending(store) == {NUMBER: float(RECEIVED), "+442079460123": float(RECEIVED)}
    assert await store.record_many([]) == []


async def test_rejection_stream(store: EventStore) -> None:
    await store.record_rejection({"status": "422", "error": "invalid_event"})
    rows = await store._client.xrange(store.keys.rejected)
    assert rows[0][1] == {b"status": b"422", b"error": b"invalid_event"}


async def test_only_the_unauthenticated_stream_is_capped(
    any_redis: aioredis.Redis, namespace: str
) -> None:
    # The audit and rejected streams are the record until archived: only the archive trims
    # them (it used to be a MAXLEN cap, which dropped the oldest entries of a large import).
    store = EventStore(any_redis, RedisKeys(namespace), StoreLimits(unauthenticated_max_len=10))
    for i in range(300):
        await store.record(event(T0 + i))
        await store.record_rejection({"n": str(i)})
        await store.record_rejection({"n": str(i)}, authenticated=False)
    assert await any_redis.xlen(store.keys.audit) == 300
    assert await any_redis.xlen(store.keys.rejected) == 300
    assert await any_redis.xlen(store.keys.rejected_unauthenticated) < 300


async def test_idempotency_key_expires(any_redis: aioredis.Redis, namespace: str) -> None:
    """A caller's id is kept in a bucket that lives at least the TTL and at most 1.5 TTL
    (plus a width of clock margin); a derived id has no key at all."""
    store = EventStore(any_redis, RedisKeys(namespace), StoreLimits(idempotency_ttl_ms=60_000))
    await store.record(event(T0))
    assert await any_redis.keys(f"{store.keys.tag}:ids:*") == []
    await store.record(event(T0 + 1, event_id="caller-1"))
    [bucket] = await any_redis.keys(f"{store.keys.tag}:ids:*")
    assert 60_000 - 5_000 < await any_redis.pttl(bucket) <= 60_000 + 2 * 15_000


async def test_outage_raises_store_unavailable(
    fake_server: fakeredis.FakeServer, fake_redis: aioredis.Redis
) -> None:
    store = make_store(fake_redis)
    fake_server.connected = False
    with pytest.raises(StoreUnavailable):
        await store.record(event(T0))
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_real_redis_down_raises_store_unavailable() -> None:
    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5
    )
    store = make_store(client)
    with pytest.raises(StoreUnavailable):
        await store.record(event(T0))
    await client.aclose()


def test_keys_share_one_hash_tag() -> None:
    keys = RedisKeys("dnc")
    names = [
        keys.pending,
        keys.latest,
        keys.watermark,
        keys.state(NUMBER)[0],
        keys.owned,
        keys.owned_entry(NUMBER)[0],
        keys.audit,
        keys.rejected,
        keys.event_id("x"),
    ]
    assert all(name.startswith("{dnc}:") for name in names)


async def test_concurrent_records_share_script_calls(
    any_redis: aioredis.Redis, namespace: str
) -> None:
    import asyncio

    store = EventStore(any_redis, RedisKeys(namespace), StoreLimits(max_batch=4))
    events = [event(T0 + i, number=f"+1202555{i:04d}") for i in range(10)]
    events.append(events[0])
    statuses = await asyncio.gather(*(store.record(e) for e in events))
    # Concurrent calls have no order among them: one of the two copies is the duplicate.
    assert sorted(statuses) == sorted([RecordStatus.QUEUED] * 10 + [RecordStatus.DUPLICATE])
    assert {statuses[0], statuses[10]} == {RecordStatus.QUEUED, RecordStatus.DUPLICATE}
    assert await any_redis.zcard(store.keys.pending) == 10


async def test_record_many_splits_into_batches(any_redis: aioredis.Redis, namespace: str) -> None:
    store = EventStore(any_redis, RedisKeys(namespace), StoreLimits(max_batch=3))
    events = [event(T0 + i, number=f"+1202555{i:04d}") for i in range(7)]
    assert await store.record_many(events) == [RecordStatus.QUEUED] * 7


# -- groups: one request's events (an opt-out and its alias copies), all or none -------------

MOBILE, SMS = "+5491123456789", "+541123456789"  # one Argentine subscriber's two forms


def opt_out_group(ms: int, event_id: str | None = None) -> list[StoredEvent]:
    """An opt-out for ``MOBILE`` and its copy under ``SMS``, as intake makes them."""
    first = event(ms, number=MOBILE, event_id=event_id)
    copy = first.model_copy(
        update={"eventId": alias_event_id(first.eventId, SMS), "e164": SMS, "aliasOf": MOBILE}
    )
    return [first, copy]


async def test_a_group_is_recorded_whole(store: EventStore) -> None:
    group = opt_out_group(T0)
    assert await store.record_group(group) == [RecordStatus.QUEUED, RecordStatus.QUEUED]
    assert set(await pending(store)) == {MOBILE, SMS}
    assert (await recorded_event(store._client, store.keys, SMS) or {})["aliasOf"] == MOBILE
    assert await store.record_group(group) == [RecordStatus.DUPLICATE] * 2
    # Each form has its own watermark: a newer opt-in of one form leaves the other's alone.
    assert await store.record(event(T0 + 5, Action.OPT_IN, number=MOBILE)) is RecordStatus.QUEUED
    assert (await latest(store, SMS)).action is Action.OPT_OUT


async def test_a_key_used_for_another_event_refuses_the_whole_group(store: EventStore) -> None:
    await store.record(event(T0, number=NUMBER, event_id="k-1"))
    statuses = await store.record_group(opt_out_group(T0 + 1, event_id="k-1"))
    assert statuses == [RecordStatus.ID_CONFLICT] * 2
    assert await state_value(store._client, store.keys, SMS) is None  # nothing written
    assert await store._client.xlen(store.keys.audit) == 1
    assert await store.record(event(T0 + 1, number=SMS, event_id=f"k-1~{SMS}")) is (
        RecordStatus.QUEUED  # its key was not taken either
    )
    # The same when the copy's key is the one taken: the opt-out itself is not written either.
    taken = opt_out_group(T0 + 2, event_id="k-2")
    await store.record(event(T0, number=NUMBER, event_id=taken[1].eventId))
    assert await store.record_group(taken) == [RecordStatus.ID_CONFLICT] * 2
    assert await state_value(store._client, store.keys, MOBILE) is None


async def test_groups_are_never_split_across_script_calls(
    any_redis: aioredis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    store = EventStore(any_redis, RedisKeys(namespace), StoreLimits(max_batch=3))
    calls: list[int] = []
    real = store._script_input

    def spy(events, group_sizes=None):  # type: ignore[no-untyped-def]
        calls.append(len(events))
        return real(events, group_sizes)

    monkeypatch.setattr(store, "_script_input", spy)
    singles = [[event(T0 + i, number=f"+1202555{i:04d}")] for i in range(2)]
    groups = [*singles, opt_out_group(T0), [event(T0, number="+12025559999")]]
    statuses = await store.record_groups(groups)
    queued = RecordStatus.QUEUED
    assert statuses == [[queued], [queued], [queued, queued], [queued]]
    assert calls == [2, 3]  # 2 singles, then the group with the last single: never 3 + 1
    calls.clear()
    # Concurrent record_group calls share coalesced calls of at most 3 events, groups whole.
    more = [opt_out_group(T0 + 10 + i) for i in range(3)]
    await asyncio.gather(*(store.record_group(g) for g in more))
    assert calls == [2, 2, 2]


def test_group_sizes_must_add_up(store: EventStore) -> None:
    with pytest.raises(ValueError, match="add up"):
        store._script_input(opt_out_group(T0), [1])
