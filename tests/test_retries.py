"""Numbers that fail temporarily wait out a backoff, give way to others, and are dead-lettered
at the limits; requeue works in bounded chunks. On fakeredis and on the real redis-server."""

from __future__ import annotations

import random

import pytest
import redis.asyncio as aioredis

from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.pending import Claim, PendingQueue, Retry, RetryLimits
from dnc.store import EventStore, StoreLimits

T0 = 1_794_994_200_000
TOKEN = "run-1"
LIMITS = RetryLimits(max_attempts=3, max_age_ms=3_600_000, base_ms=10_000, cap_ms=40_000)


def event(number: str, ms: int, action: Action = Action.OPT_OUT) -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|{action.value}|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=ms,
    )


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+1202555{n:04d}" for n in range(start, start + count)]


@pytest.fixture
def stores(any_redis: aioredis.Redis, namespace: str) -> tuple[EventStore, PendingQueue]:
    keys = RedisKeys(namespace)
    return EventStore(any_redis, keys, StoreLimits()), PendingQueue(any_redis, keys, LIMITS)


async def fill(store: EventStore, *items: StoredEvent) -> None:
    await store.record_many(list(items))


async def claim(queue: PendingQueue, limit: int, now_ms: int) -> list[Claim]:
    await queue.acquire_lease(TOKEN, 60_000)
    return await queue.claim(TOKEN, limit, now_ms=now_ms)


def retries(claims: list[Claim], **kwargs: object) -> list[Retry]:
    return [Retry(c, "temporary failure", **kwargs) for c in claims]  # type: ignore[arg-type]


async def test_stuck_numbers_give_way_to_newer_ones(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    stuck, newer = numbers(5), numbers(1, start=100)
    await fill(store, *(event(n, T0 + i) for i, n in enumerate(stuck)))
    await fill(store, event(newer[0], T0 + 1_000))
    first = await claim(queue, 5, T0 + 2_000)
    assert [c.e164 for c in first] == stuck  # the oldest come first
    deferral = await queue.defer(retries(first), now_ms=T0 + 2_000)
    assert deferral.deferred == 5
    second = await claim(queue, 5, T0 + 2_001)
    assert [c.e164 for c in second] == newer  # not the stuck ones again: the newer opt-out


async def test_a_deferred_number_comes_back_first_when_its_backoff_ends(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    early, late = numbers(2)
    await fill(store, event(early, T0), event(late, T0 + 1))
    [first, _] = await claim(queue, 2, T0 + 10)
    await queue.defer(retries([first]), now_ms=T0 + 10, rng=random.Random(1))
    assert [c.e164 for c in await claim(queue, 2, T0 + 10 + 4_999)] == [late]  # >= 5 s
    back = await claim(queue, 2, T0 + 10 + 10_000)  # the backoff (5-10 s) is over
    assert [c.e164 for c in back] == [early, late]  # under its original wait: first again
    assert back[0].score_ms == T0


async def test_retry_after_is_honoured(stores: tuple[EventStore, PendingQueue]) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0))
    claims = await claim(queue, 1, T0)
    await queue.defer(retries(claims, retry_after_s=120), now_ms=T0)
    assert await claim(queue, 1, T0 + 60_000) == []  # the backoff alone would be over
    assert [c.e164 for c in await claim(queue, 1, T0 + 120_000)] == [number]


async def test_a_retry_after_waits_no_longer_than_its_cap(
    any_redis: aioredis.Redis, namespace: str
) -> None:
    # a 429 saying "Retry-After: 60" kept a failed batch out for 60 s although the client
    # caps what it sleeps at DNC_CXONE_RETRY_AFTER_CAP_S (found by the leak scan's slowdown)
    keys = RedisKeys(namespace)
    limits = RetryLimits(base_ms=1_000, cap_ms=1_000, retry_after_cap_ms=200)
    store, queue = EventStore(any_redis, keys, StoreLimits()), PendingQueue(any_redis, keys, limits)
    [number] = numbers(1)
    await fill(store, event(number, T0))
    claims = await claim(queue, 1, T0)
    await queue.defer(retries(claims, retry_after_s=60, counts=False), now_ms=T0)
    assert [c.e164 for c in await claim(queue, 1, T0 + 1_000)] == [number]


async def test_a_number_is_dead_lettered_after_the_attempt_limit(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0))
    now = T0
    results = []
    for _ in range(3):
        claims = await claim(queue, 1, now)
        assert [c.e164 for c in claims] == [number]
        results.append(await queue.defer(retries(claims), now_ms=now))
        now += 60_000  # past any backoff (cap 40 s)
    assert [r.deferred for r in results] == [1, 1, 0]
    assert results[-1].dead_lettered == 1
    dead = (await queue.dead_letters())[number]
    assert dead.reason == "gave up after 3 temporary failures: temporary failure"
    assert dead.event.action is Action.OPT_OUT
    assert await queue.backlog() == (0, None)


async def test_a_number_is_dead_lettered_after_the_age_limit(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0))
    claims = await claim(queue, 1, T0)
    assert (await queue.defer(retries(claims), now_ms=T0)).deferred == 1
    claims = await claim(queue, 1, T0 + 3_600_000)
    assert (await queue.defer(retries(claims), now_ms=T0 + 3_600_000)).dead_lettered == 1


async def test_batch_failures_back_off_but_never_dead_letter(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0))
    now = T0
    for _ in range(6):  # twice the attempt limit
        claims = await claim(queue, 1, now)
        assert (await queue.defer(retries(claims, counts=False), now_ms=now)).deferred == 1
        now += 60_000
    assert await queue.dead_letters() == {}


async def test_a_newer_event_during_the_push_stays_pending(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0, Action.OPT_IN))
    claims = await claim(queue, 1, T0)
    await fill(store, event(number, T0 + 5))  # an opt-out arrives while the opt-in is pushed
    deferral = await queue.defer(retries(claims), now_ms=T0 + 10)
    assert (deferral.deferred, deferral.changed) == (0, 1)
    [again] = await claim(queue, 1, T0 + 11)
    assert again.event.action is Action.OPT_OUT


async def test_backlog_counts_deferred_numbers_and_their_wait(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    early, late = numbers(2)
    await fill(store, event(early, T0), event(late, T0 + 500))
    [first, _] = await claim(queue, 2, T0 + 1_000)
    await queue.defer(retries([first]), now_ms=T0 + 1_000)
    assert await queue.backlog() == (2, T0)  # the deferred one still waits since T0
    assert await queue.deferred_count() == 1
    await queue.acknowledge(await claim(queue, 2, T0 + 2_000))  # late only
    assert await queue.backlog() == (1, T0)


async def test_applied_after_a_retry_forgets_the_attempts(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0))
    await queue.defer(retries(await claim(queue, 1, T0)), now_ms=T0)
    assert await queue.acknowledge(await claim(queue, 1, T0 + 60_000)) == [True]
    assert await queue.backlog() == (0, None)
    assert await queue.deferred_count() == 0


async def dead_letter_all(store: EventStore, queue: PendingQueue, count: int) -> list[str]:
    names = numbers(count)
    await fill(store, *(event(n, T0) for n in names))
    claims = await claim(queue, count, T0)
    assert all(await queue.dead_letter([(c, "refused") for c in claims], now_ms=T0))
    return names


async def test_requeue_names_thousands_of_numbers(
    real_redis: aioredis.Redis, namespace: str
) -> None:
    keys = RedisKeys(namespace)
    store, queue = EventStore(real_redis, keys, StoreLimits()), PendingQueue(real_redis, keys)
    names = await dead_letter_all(store, queue, 9_000)  # one script call failed at ~8,000
    assert await queue.requeue(names, now_ms=T0 + 1) == 9_000
    assert await queue.dead_letters() == {}
    assert (await queue.backlog())[0] == 9_000


async def test_requeue_all_pages_through_the_dead_letters(
    real_redis: aioredis.Redis, namespace: str
) -> None:
    keys = RedisKeys(namespace)
    store, queue = EventStore(real_redis, keys, StoreLimits()), PendingQueue(real_redis, keys)
    await dead_letter_all(store, queue, 2_345)
    scripts: list[int] = []
    original = queue._requeue_chunk

    async def spy(now_ms: int, chunk: list[str]) -> int:
        scripts.append(len(chunk))
        return await original(now_ms, chunk)

    queue._requeue_chunk = spy  # type: ignore[method-assign]
    assert await queue.requeue(now_ms=T0 + 1) == 2_345
    assert len(scripts) > 1 and max(scripts) <= 1_000  # bounded calls, not one unbounded
    assert await queue.dead_letters() == {}


async def test_a_failed_batch_waits_the_base_alone_however_often_it_failed(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    [number] = numbers(1)
    await fill(store, event(number, T0))
    now = T0
    for _ in range(5):  # an outage: the wait does not double (it would reach the 40 s cap)
        claims = await claim(queue, 1, now)
        assert [c.e164 for c in claims] == [number]
        await queue.defer(retries(claims, counts=False), now_ms=now)
        now += 10_000  # the base: the longest a failed batch waits
