"""The compact number state (``dnc.state``): what it keeps, how legacy states are still read
and settled, and idempotency through time-bucketed hashes across bucket boundaries."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from dnc.audit.history import current_state
from dnc.events import Action, StoredEvent
from dnc.intake import alias_event_id, derive_event_id
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.state import ID_BUCKETS_PER_TTL, IdBuckets, decode, state_tail, watermark
from dnc.store import EventStore, RecordStatus, StoreLimits

NUMBER = "+12025550123"
T0 = 1_794_994_200_000
TTL_MS = 4 * 86_400_000
WIDTH_MS = TTL_MS // ID_BUCKETS_PER_TTL


def event(
    ms: int = T0,
    action: Action = Action.OPT_OUT,
    *,
    event_id: str | None = None,
    received: int = T0 + 1_234,
    expires: int | None = None,
    number: str = NUMBER,
    metadata: dict[str, object] | None = None,
) -> StoredEvent:
    fingerprint = f"{number}|{action.value}|{ms}" + ("" if expires is None else f"|{expires}")
    return StoredEvent(
        eventId=event_id or derive_event_id(fingerprint),
        eventIdDerived=event_id is None,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=received,
        region="US",
        metadata=metadata,
        expiresMs=expires,
        sender="bearer-0",
    )


class Clock:
    """UTC seconds, moved by the test (``ms``), from ``start``: 1 s into an idempotency bucket,
    near real time (Redis expires the buckets by its own clock: PEXPIREAT)."""

    def __init__(self) -> None:
        self.start = int(time.time() * 1000) // WIDTH_MS * WIDTH_MS + 1_000
        self.ms = self.start

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(any_redis: aioredis.Redis, namespace: str, clock: Clock) -> EventStore:
    return EventStore(
        any_redis, RedisKeys(namespace), StoreLimits(idempotency_ttl_ms=TTL_MS), clock
    )


# -- the codec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "original",
    [
        event(),  # derived id: not stored, recomputed
        event(action=Action.OPT_IN, received=T0 + 86_400_000 * 400),  # an old backfill
        event(expires=T0 + 86_400_000),  # the derived id includes the expiry
        event(event_id="caller id with spaces?"),  # a caller's id, kept verbatim
        event(received=T0 - 5),  # received before its event time (a skewed sender)
        event(event_id=derive_event_id(f"{NUMBER}|optOut|{T0}")),  # a caller sent that id
    ],
)
def test_a_compact_state_gives_back_what_the_sync_needs(original: StoredEvent) -> None:
    value = f"{watermark(original)} {state_tail(original)}"
    decoded = decode(NUMBER, value)
    assert decoded is not None
    kept = ("eventId", "action", "eventMs", "receivedMs", "expiresMs", "e164")
    assert {k: getattr(decoded, k) for k in kept} == {k: getattr(original, k) for k in kept}


def test_a_derived_id_is_not_stored_and_others_are() -> None:
    assert state_tail(event()) == "ya"  # 1234 ms in base 36, no id
    assert state_tail(event(event_id="k-1")).endswith(" ck-1")
    copy = event(number="+541123456789").model_copy(
        update={"eventId": alias_event_id(event().eventId, "+541123456789")}
    )
    assert state_tail(copy) == f"ya d{copy.eventId}"  # not recomputable: kept, as derived
    assert decode("+541123456789", f"{watermark(copy)} {state_tail(copy)}") == copy.model_copy(
        update={"region": None, "sender": None}
    )


def test_a_legacy_or_unreadable_value_is_not_decoded() -> None:
    assert decode(NUMBER, f"{T0}:optOut") is None  # legacy: its event is in ``latest``
    assert decode(NUMBER, f"{T0}:sideways 1") is None


# -- recording and reading ------------------------------------------------------------------


async def test_the_state_is_one_compact_value_and_latest_is_not_written(
    store: EventStore, any_redis: aioredis.Redis
) -> None:
    recorded = event(metadata={"contactId": "42"})
    assert await store.record(recorded) is RecordStatus.QUEUED
    assert await any_redis.hget(*store.keys.state(NUMBER)) == f"{T0}:optOut ya".encode()
    assert await any_redis.exists(store.keys.watermark) == 0  # the legacy hash: not written
    assert await any_redis.hlen(store.keys.latest) == 0
    assert await any_redis.keys(f"{store.keys.tag}:event-id:*") == []
    assert await any_redis.keys(f"{store.keys.tag}:ids:*") == []  # a derived id: no key
    state = await current_state(any_redis, store.keys, NUMBER)
    assert state.latest_event is not None
    assert (state.latest_event["eventId"], state.latest_event["receivedMs"]) == (
        recorded.eventId,
        recorded.receivedMs,
    )


async def test_a_legacy_state_is_claimed_settled_and_rewritten(
    store: EventStore, any_redis: aioredis.Redis
) -> None:
    """A backlog written before states were compact: a bare watermark and the event JSON."""
    keys = store.keys
    legacy = event(expires=T0 + 60_000, metadata={"contactId": "7"})
    await any_redis.hset(keys.watermark, NUMBER, f"{T0}:optOut")  # expiry only in the JSON
    await any_redis.hset(keys.latest, NUMBER, legacy.model_dump_json(exclude_none=True))
    await any_redis.zadd(keys.pending, {NUMBER: legacy.receivedMs})
    queue = PendingQueue(any_redis, keys)
    assert await queue.acquire_lease("run", 60_000)
    [claim] = await queue.claim("run", 10)
    assert claim.event == legacy and claim.watermark == f"{T0}:optOut"
    assert claim.change().expires_at_ms == T0 + 60_000
    assert await queue.acknowledge([claim]) == [True]
    assert await any_redis.zcard(keys.pending) == 0
    # The same ms with a later expiry protects longer: it replaces the legacy state, compactly.
    longer = event(expires=T0 + 120_000)
    assert await store.record(event(expires=T0 + 30_000)) is RecordStatus.SUPERSEDED
    assert await store.record(longer) is RecordStatus.QUEUED
    assert await any_redis.hget(keys.latest, NUMBER) is None
    assert await any_redis.hget(keys.watermark, NUMBER) is None  # left the legacy hash...
    bucketed = await any_redis.hget(*keys.state(NUMBER))  # ...for its bucket
    assert bucketed is not None and bucketed.decode().startswith(f"{T0}:optOut:{T0 + 120_000} ")
    [claim] = await queue.claim("run", 10)
    assert claim.event.eventId == longer.eventId and claim.watermark.startswith(f"{T0}:optOut:")


async def test_a_reused_caller_id_on_a_legacy_state_is_a_new_event(
    store: EventStore, any_redis: aioredis.Redis
) -> None:
    """Found in review: a legacy state was 'the same event' when only its eventId matched, so
    a caller reusing a per-contact id once its key expired had a new opt-out dropped."""
    keys = store.keys
    opt_in = event(action=Action.OPT_IN, event_id="contact-7")
    await any_redis.hset(keys.watermark, NUMBER, f"{T0}:optIn")
    await any_redis.hset(keys.latest, NUMBER, opt_in.model_dump_json(exclude_none=True))
    later = event(T0 + 30 * 86_400_000, event_id="contact-7", received=T0 + 30 * 86_400_000)
    assert await store.record(later) is RecordStatus.QUEUED
    assert (
        (await any_redis.hget(*keys.state(NUMBER))).decode().startswith(f"{later.eventMs}:optOut ")
    )
    assert await any_redis.hget(keys.watermark, NUMBER) is None  # moved out of the legacy hash
    assert await any_redis.zscore(keys.pending, NUMBER) is not None


async def test_a_claim_settles_only_the_state_it_read(
    store: EventStore, any_redis: aioredis.Redis
) -> None:
    queue = PendingQueue(any_redis, store.keys)
    assert await queue.acquire_lease("run", 60_000)
    await store.record(event(event_id="k-1"))
    [claim] = await queue.claim("run", 10)
    assert claim.event.eventId == "k-1" and not claim.event.eventIdDerived
    await store.record(event(T0 + 1, Action.OPT_IN))  # arrives during the push
    assert await queue.acknowledge([claim]) == [False]
    [again] = await queue.claim("run", 10)
    assert again.event.action is Action.OPT_IN and again.event.eventIdDerived


# -- idempotency ------------------------------------------------------------------------------


async def test_a_derived_retry_is_a_duplicate_while_it_is_the_latest(store: EventStore) -> None:
    first = event()
    assert await store.record(first) is RecordStatus.QUEUED
    assert await store.record(first.model_copy(update={"receivedMs": T0 + 9})) is (
        RecordStatus.DUPLICATE  # another delivery: another receipt time, the same event
    )
    assert await store.record(event(T0 + 1, Action.OPT_IN)) is RecordStatus.QUEUED
    assert await store.record(first) is RecordStatus.SUPERSEDED  # replaced since: no key


@pytest.mark.parametrize("later_ms", [1, WIDTH_MS, 2 * WIDTH_MS + 5, TTL_MS - 1])
async def test_a_caller_id_holds_across_bucket_boundaries(
    store: EventStore, clock: Clock, later_ms: int
) -> None:
    assert await store.record(event(event_id="k-1")) is RecordStatus.QUEUED
    clock.ms = clock.start + later_ms
    assert await store.record(event(event_id="k-1")) is RecordStatus.DUPLICATE
    assert await store.record(event(T0 + 5, event_id="k-1")) is RecordStatus.ID_CONFLICT
    assert await store.record(event(T0 - 5, event_id="k-1")) is RecordStatus.ID_CONFLICT


async def test_a_receiver_whose_clock_is_behind_still_finds_the_id(
    store: EventStore, clock: Clock
) -> None:
    clock.ms = clock.start + WIDTH_MS + 10  # the next bucket
    assert await store.record(event(event_id="k-1")) is RecordStatus.QUEUED
    clock.ms = (
        clock.start + WIDTH_MS - 1_010
    )  # another receiver's clock behind, in the bucket before
    assert await store.record(event(T0 + 5, event_id="k-1")) is RecordStatus.ID_CONFLICT


async def test_a_caller_id_is_free_again_after_its_ttl(store: EventStore, clock: Clock) -> None:
    assert await store.record(event(event_id="k-1")) is RecordStatus.QUEUED
    clock.ms = clock.start + TTL_MS + 2 * WIDTH_MS  # past every bucket a lookup reads
    assert await store.record(event(T0 + 5, event_id="k-1")) is RecordStatus.QUEUED


async def test_a_changed_ttl_still_finds_the_ids_kept(
    store: EventStore, any_redis: aioredis.Redis, namespace: str, clock: Clock
) -> None:
    """Found in review: the bucket width came from each store's TTL, so a changed
    DNC_REDIS_IDEMPOTENCY_TTL_S (or a rolling deploy with two) read other keys and forgot
    every caller id: a reused id was queued instead of refused."""
    assert await store.record(event(event_id="k-1")) is RecordStatus.QUEUED
    for ttl_ms in (TTL_MS * 2, TTL_MS // 8):
        other = EventStore(
            any_redis, RedisKeys(namespace), StoreLimits(idempotency_ttl_ms=ttl_ms), clock
        )
        assert await other.record(event(T0 + 5, event_id="k-1")) is RecordStatus.ID_CONFLICT
        assert await other.record(event(event_id="k-1")) is RecordStatus.DUPLICATE
    assert await any_redis.get(store.keys.ids_width) == str(WIDTH_MS).encode()


async def test_a_legacy_id_key_is_still_honoured(
    store: EventStore, any_redis: aioredis.Redis
) -> None:
    taken = event(T0 - 100, event_id="k-old")
    await any_redis.set(store.keys.event_id("k-old"), taken.fingerprint, px=TTL_MS)
    assert await store.record(event(event_id="k-old")) is RecordStatus.ID_CONFLICT
    assert await store.record(taken) is RecordStatus.DUPLICATE


def test_buckets_cover_the_ttl_and_expire_after_it() -> None:
    buckets = IdBuckets.at(T0, TTL_MS)
    assert buckets.indexes[0] == T0 // WIDTH_MS  # written there
    assert min(buckets.indexes) == (T0 - TTL_MS) // WIDTH_MS
    assert max(buckets.indexes) == T0 // WIDTH_MS + 1
    assert T0 + TTL_MS <= buckets.expire_at_ms <= T0 + TTL_MS + 2 * WIDTH_MS
    keys = buckets.keys(RedisKeys("dnc"), "abcdef")
    assert all(k.startswith("{dnc}:ids:") and k.endswith(":abc") for k in keys)
