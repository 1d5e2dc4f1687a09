"""``dnc.reconcile.lease.SyncLeaseHolder``: the sync lease taken like a sync run takes it,
waited for, renewed, noticed lost, released; on fakeredis and the real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from dnc.handover import Handover
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.reconcile.lease import LeaseBusy, SyncLeaseHolder
from tests.test_reconcile_run import text

TOKEN = "reconcile-run-1"
LOST = "the sync lease was lost (Redis did not confirm a renewal)"


class Sleeps:
    """Records each sleep; runs ``then`` (if any) on the n-th call instead of waiting."""

    def __init__(self, then: dict[int, Callable[[], Awaitable[object]]] | None = None) -> None:
        self.delays: list[float] = []
        self.then = then or {}

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        action = self.then.get(len(self.delays))
        if action is not None:
            await action()
        await asyncio.sleep(0)


@pytest.fixture
def keys(namespace: str) -> RedisKeys:
    return RedisKeys(namespace)


@pytest.fixture
def queue(any_redis: aioredis.Redis, keys: RedisKeys) -> PendingQueue:
    return PendingQueue(any_redis, keys)


def holder(
    queue: PendingQueue,
    sleep: Sleeps | None = None,
    *,
    ttl_s: float = 5.0,
    grace_s: float = 0.0,
    wait_s: float = 5.0,
) -> SyncLeaseHolder:
    if sleep is None:
        return SyncLeaseHolder(queue, TOKEN, ttl_s=ttl_s, grace_s=grace_s, wait_s=wait_s)
    return SyncLeaseHolder(queue, TOKEN, ttl_s=ttl_s, grace_s=grace_s, wait_s=wait_s, sleep=sleep)


async def lease_holder(client: aioredis.Redis, keys: RedisKeys) -> str | None:
    value = await client.get(keys.sync_lease)
    return None if value is None else text(value)


async def test_waits_while_a_sync_run_holds_the_lease_then_takes_it(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    assert await queue.acquire_lease("sync-run", 10_000)

    async def sync_run_ends() -> None:
        await queue.release_lease("sync-run")

    sleeps = Sleeps({3: sync_run_ends})
    async with holder(queue, sleeps) as held:
        assert await lease_holder(any_redis, keys) == TOKEN
        assert held.lost == ""
    assert sleeps.delays == [0.25, 0.25, 0.25]  # retried until freed; no grace: it was released
    assert await lease_holder(any_redis, keys) is None  # released on exit
    assert await any_redis.hget(keys.sync_lease_history, "released") == b"1"
    assert await queue.acquire_lease("sync-run", 10_000)  # free for the next sync run


async def test_it_asks_a_draining_sync_run_to_hand_the_lease_over(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    # A sync run that keeps draining holds the lease for minutes and hands it over only to
    # a run that asks (dnc.handover): without asking, a reconciliation rarely gets it.
    handover = Handover(any_redis, keys)
    assert await queue.acquire_lease("flow-run-sync", 10_000)
    asked: list[str | None] = []

    async def the_sync_run_looks_between_two_claims() -> None:
        asked.append(await handover.successor("flow-run-sync"))
        if asked[-1] is not None:
            await queue.release_lease("flow-run-sync")

    sleeps = Sleeps({2: the_sync_run_looks_between_two_claims})
    held = SyncLeaseHolder(
        queue, TOKEN, ttl_s=5.0, grace_s=0.0, wait_s=5.0, handover=handover, sleep=sleeps
    )
    async with held:
        assert await lease_holder(any_redis, keys) == TOKEN
        assert await handover.successor("flow-run-sync") is None  # withdrawn once held
    assert asked == [TOKEN]


async def test_lease_busy_after_the_wait(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    assert await queue.acquire_lease("sync-run", 10_000)
    started = time.monotonic()
    with pytest.raises(LeaseBusy, match="a sync run or another reconciliation holds it"):
        async with holder(queue, wait_s=0.3):
            raise AssertionError("must not be entered")
    assert 0.3 <= time.monotonic() - started < 2.0
    assert await lease_holder(any_redis, keys) == "sync-run"


async def test_no_wait_tries_once(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    assert await queue.acquire_lease("sync-run", 10_000)
    sleeps = Sleeps()
    with pytest.raises(LeaseBusy):
        async with holder(queue, sleeps, wait_s=0):
            raise AssertionError("must not be entered")
    assert sleeps.delays == []
    assert await lease_holder(any_redis, keys) == "sync-run"


async def test_a_held_lease_is_renewed_past_its_ttl(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    async with holder(queue, ttl_s=0.3) as held:
        await asyncio.sleep(0.7)  # more than twice the TTL
        assert held.lost == ""
        assert await lease_holder(any_redis, keys) == TOKEN
        ttl = await any_redis.pttl(keys.sync_lease)
        assert 0 < ttl <= 300
    assert held.lost == ""
    assert await lease_holder(any_redis, keys) is None


async def test_a_lease_that_vanishes_is_noticed_within_a_renewal_period(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    async with holder(queue, ttl_s=0.3) as held:
        await any_redis.delete(keys.sync_lease)
        await asyncio.sleep(0.25)  # renewals every 0.1 s
        assert held.lost == LOST
    assert held.lost == LOST


async def test_a_lease_another_run_took_is_lost_and_left_to_it(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    async with holder(queue, ttl_s=0.3) as held:
        await any_redis.delete(keys.sync_lease)
        assert await queue.acquire_lease("sync-run", 10_000)
        await asyncio.sleep(0.25)
        assert held.lost == LOST
    assert await lease_holder(any_redis, keys) == "sync-run"  # not released by us
    assert await queue.renew_lease("sync-run", 10_000)


async def test_waits_out_the_grace_of_a_holder_that_never_released(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    assert await queue.acquire_lease("dead-sync-run", 10_000, grace_ms=2_000)
    await any_redis.delete(keys.sync_lease)  # it died: the lease ran out unreleased
    sleeps = Sleeps()
    async with holder(queue, sleeps, grace_s=1.0) as held:
        assert await lease_holder(any_redis, keys) == TOKEN
        assert held.lost == ""
    (waited,) = sleeps.delays  # its expiry (10 s) + the longer grace (2 s), less what passed
    assert 11.0 < waited <= 12.0


async def test_no_grace_wait_after_a_released_lease(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    assert await queue.acquire_lease("sync-run", 10_000, grace_ms=2_000)
    await queue.release_lease("sync-run")
    sleeps = Sleeps()
    async with holder(queue, sleeps, grace_s=1.0):
        assert await lease_holder(any_redis, keys) == TOKEN
    assert sleeps.delays == []


async def test_cancelled_during_the_grace_wait_leaves_no_renewed_lease(
    any_redis: aioredis.Redis, keys: RedisKeys, queue: PendingQueue
) -> None:
    assert await queue.acquire_lease("dead-sync-run", 10_000)
    await any_redis.delete(keys.sync_lease)  # expired unreleased: a ~10 s grace wait follows

    async def reconcile() -> None:
        async with holder(queue, ttl_s=0.3):
            raise AssertionError("cancelled before entering")

    run = asyncio.create_task(reconcile())
    try:
        await asyncio.sleep(0.05)
        assert await lease_holder(any_redis, keys) == TOKEN
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await asyncio.sleep(0.6)  # twice the TTL: a lease nobody renews is gone by now
        assert await lease_holder(any_redis, keys) is None
    finally:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
