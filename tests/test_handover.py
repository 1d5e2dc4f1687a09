"""``dnc.handover``: intake wakes the draining run in the same Lua call that queues a change,
a waiting run wakes at once and not on a poll, and the successor announcement (fakeredis and
a real redis-server)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from dnc.events import Action
from dnc.handover import SUCCESSOR_TTL_MS, Handover, keeps_draining, lease_token, run_of
from dnc.keys import RedisKeys
from dnc.store import EventStore, RecordStatus
from tests.conftest import make_store
from tests.test_store import NUMBER, T0, event


@pytest.fixture
def store(any_redis: aioredis.Redis, namespace: str) -> EventStore:
    return make_store(any_redis, namespace)


@pytest.fixture
def handover(any_redis: aioredis.Redis, namespace: str) -> Handover:
    return Handover(any_redis, RedisKeys(namespace), idle_cap_s=0.5)


async def _tokens(store: EventStore) -> int:
    return int(await store._client.llen(store.keys.sync_wake))


async def test_queueing_a_change_leaves_one_wake_token(store: EventStore) -> None:
    assert await _tokens(store) == 0
    assert await store.record(event(T0)) is RecordStatus.QUEUED
    assert await _tokens(store) == 1
    assert await store.record(event(T0 + 1, number="+12025550199")) is RecordStatus.QUEUED
    assert await _tokens(store) == 1  # one token however many changes: the list never grows


async def test_a_change_that_queues_nothing_wakes_nobody(store: EventStore) -> None:
    assert await store.record(event(T0 + 10)) is RecordStatus.QUEUED
    await store._client.delete(store.keys.sync_wake)
    assert await store.record(event(T0)) is RecordStatus.SUPERSEDED  # older: nothing to push
    assert await store.record(event(T0 + 10)) is RecordStatus.DUPLICATE
    assert await _tokens(store) == 0


async def test_a_waiting_run_is_woken_by_intake_not_by_its_timeout(
    store: EventStore, namespace: str
) -> None:
    handover = Handover(store._client, RedisKeys(namespace), idle_cap_s=30.0)
    waiter = asyncio.create_task(handover.wait_for_changes(30.0))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await store.record(event(T0, action=Action.OPT_OUT))
    assert await asyncio.wait_for(waiter, timeout=10.0) is True  # long before 30 s


async def test_waiting_times_out_without_a_change(handover: Handover) -> None:
    assert await handover.wait_for_changes(0.1) is False


async def test_a_due_retry_ends_the_wait_at_once(handover: Handover, namespace: str) -> None:
    keys = RedisKeys(namespace)
    now_ms = int(time.time() * 1000)
    await handover._client.zadd(keys.deferred, {NUMBER: now_ms - 1})
    assert await handover.has_work()
    assert await handover.wait_for_changes(0.5) is False
    await handover._client.zadd(keys.deferred, {NUMBER: now_ms + 600_000})
    assert not await handover.has_work()


async def test_a_pending_number_is_work(handover: Handover, store: EventStore) -> None:
    assert not await handover.has_work()
    await store.record(event(T0))
    assert await handover.has_work()


async def test_the_holder_sees_a_successor_but_not_itself(handover: Handover) -> None:
    assert await handover.successor("flow-run-a") is None
    await handover.announce("flow-run-b")
    assert await handover.successor("flow-run-a") == "flow-run-b"
    assert await handover.successor("flow-run-b") is None
    assert await handover.wait_for_changes(5.0) is True  # the announcement woke the holder
    await handover.withdraw("flow-run-c")  # someone else's: stays
    assert await handover.successor("flow-run-a") == "flow-run-b"
    await handover.withdraw("flow-run-b")
    assert await handover.successor("flow-run-a") is None


async def test_an_announcement_lapses_unless_renewed(handover: Handover, namespace: str) -> None:
    await handover.announce("flow-run-b")
    ttl = await handover._client.pttl(RedisKeys(namespace).sync_successor)
    assert 0 < ttl <= SUCCESSOR_TTL_MS


async def test_the_holder_is_named(handover: Handover, namespace: str) -> None:
    assert await handover.holder() is None
    await handover._client.set(RedisKeys(namespace).sync_lease, "flow-run-x")
    assert await handover.holder() == "flow-run-x"


def test_every_execution_of_a_flow_run_gets_its_own_lease_token() -> None:
    # Prefect runs the same flow run again on "Retry": the token must differ, or the retry
    # takes the crashed execution's lease as its own and skips the takeover grace.
    first, again = lease_token("run-1", keep=True), lease_token("run-1", keep=True)
    assert first != again
    assert run_of(first) == run_of(again) == "run-1"
    assert keeps_draining(first) and not keeps_draining(lease_token("run-1", keep=False))
    assert not keeps_draining("reconcile-run-2") and run_of(lease_token(None, False)) != ""


async def test_a_retried_flow_run_waits_out_the_grace_of_its_crashed_execution(
    any_redis: aioredis.Redis, namespace: str
) -> None:
    from dnc.pending import PendingQueue

    queue = PendingQueue(any_redis, RedisKeys(namespace))
    crashed, retried = lease_token("run-1", keep=True), lease_token("run-1", keep=True)
    assert await queue.acquire_lease(crashed, 50, 5_000)  # then killed: never released
    await asyncio.sleep(0.1)
    grant = await queue.acquire_lease(retried, 10_000, 5_000)
    assert grant and grant.wait_ms > 4_000  # its request may still land: wait before writing


async def test_below_a_blocking_wait_worth_asking_redis_for_it_polls(
    store: EventStore, namespace: str
) -> None:
    handover = Handover(store._client, RedisKeys(namespace), idle_cap_s=-0.05)
    assert await handover.wait_for_changes(5.0) is False  # one short poll, no BLPOP
    await store.record(event(T0))
    assert await handover.wait_for_changes(5.0) is True
