"""The pending set as the sync sees it: lease, claim, settle (compare-and-delete), dead
letters; on fakeredis and on the real redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from dnc.applications import Application
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.pending import Claim, LeaseLost, PendingQueue, Retry, chunk
from dnc.store import EventStore, StoreLimits
from dnc.target import ChangeOutcome, OutcomeKind

T0 = 1_794_994_200_000
TOKEN = "run-1"


def event(number: str, ms: int, action: Action = Action.OPT_OUT) -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|{action.value}|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=ms,
    )


@pytest.fixture
def stores(any_redis: aioredis.Redis, namespace: str) -> tuple[EventStore, PendingQueue]:
    keys = RedisKeys(namespace)
    return EventStore(any_redis, keys, StoreLimits()), PendingQueue(any_redis, keys)


async def fill(store: EventStore, *events: StoredEvent) -> None:
    for item in events:
        await store.record(item)


async def test_lease_is_exclusive_renewable_and_released(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    _, queue = stores
    assert await queue.acquire_lease(TOKEN, 10_000)
    assert await queue.acquire_lease(TOKEN, 10_000)  # re-entrant for its holder
    assert not await queue.acquire_lease("run-2", 10_000)
    assert await queue.renew_lease(TOKEN, 10_000)
    assert not await queue.renew_lease("run-2", 10_000)
    await queue.release_lease("run-2")  # not theirs: no effect
    assert not await queue.acquire_lease("run-2", 10_000)
    await queue.release_lease(TOKEN)
    assert await queue.acquire_lease("run-2", 10_000)


async def test_a_dead_holders_lease_expires(real_redis: aioredis.Redis, namespace: str) -> None:
    queue = PendingQueue(real_redis, RedisKeys(namespace))
    assert await queue.acquire_lease(TOKEN, 100)
    await asyncio.sleep(0.2)
    assert await queue.acquire_lease("run-2", 10_000)
    with pytest.raises(LeaseLost):
        await queue.claim(TOKEN, 10)


async def test_claim_needs_the_lease(stores: tuple[EventStore, PendingQueue]) -> None:
    store, queue = stores
    await fill(store, event("+12025550101", T0))
    with pytest.raises(LeaseLost):
        await queue.claim(TOKEN, 10)


async def test_claim_takes_the_oldest_without_removing(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    await fill(
        store,
        event("+12025550103", T0 + 3),
        event("+12025550101", T0 + 1),
        event("+12025550102", T0 + 2, Action.OPT_IN),
    )
    await queue.acquire_lease(TOKEN, 10_000)
    claims = await queue.claim(TOKEN, 2)
    assert [(c.e164, c.score_ms, c.event.action) for c in claims] == [
        ("+12025550101", T0 + 1, Action.OPT_OUT),
        ("+12025550102", T0 + 2, Action.OPT_IN),
    ]
    assert claims[1].change().action is Action.OPT_IN
    assert (await queue.backlog()) == (3, T0 + 1)


async def test_acknowledge_removes_only_unchanged_numbers(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    await fill(
        store,
        event("+12025550101", T0),
        event("+12025550102", T0),
        event("+12025550103", T0, Action.OPT_IN),
    )
    await queue.acquire_lease(TOKEN, 10_000)
    claims = await queue.claim(TOKEN, 10)
    # During the push: a newer event for one number, a same-time opt-out for another.
    await fill(
        store,
        event("+12025550102", T0 + 5, Action.OPT_IN),
        event("+12025550103", T0, Action.OPT_OUT),
    )
    assert await queue.acknowledge(claims) == [True, False, False]
    assert (await queue.backlog())[0] == 2
    again = await queue.claim(TOKEN, 10)
    assert {(c.e164, c.event.action) for c in again} == {
        ("+12025550102", Action.OPT_IN),
        ("+12025550103", Action.OPT_OUT),
    }
    assert await queue.acknowledge(again) == [True, True]
    assert await queue.backlog() == (0, None)


async def test_dead_letters_and_requeue(stores: tuple[EventStore, PendingQueue]) -> None:
    store, queue = stores
    await fill(store, event("+12025550101", T0), event("+12025550102", T0 + 1))
    await queue.acquire_lease(TOKEN, 10_000)
    first, second = await queue.claim(TOKEN, 10)
    assert await queue.dead_letter(
        [(first, "Invalid phone number."), (second, "Invalid phone number.")], now_ms=T0 + 9
    ) == [True, True]
    letters = await queue.dead_letters()
    assert set(letters) == {"+12025550101", "+12025550102"}
    assert (letters["+12025550101"].reason, letters["+12025550101"].deadAtMs) == (
        "Invalid phone number.",
        T0 + 9,
    )
    assert await queue.backlog() == (0, None)
    assert await queue.requeue(["+12025550101", "+19999999999"], now_ms=T0 + 50) == 1
    assert await queue.backlog() == (1, T0 + 50)  # its wait restarts at the requeue
    assert await queue.requeue(now_ms=T0 + 70) == 1
    assert await queue.backlog() == (2, T0 + 50)
    assert await queue.dead_letters() == {}


async def test_a_changed_number_is_not_dead_lettered(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    await fill(store, event("+12025550101", T0))
    await queue.acquire_lease(TOKEN, 10_000)
    [claim] = await queue.claim(TOKEN, 10)
    await fill(store, event("+12025550101", T0 + 1, Action.OPT_IN))
    assert await queue.dead_letter([(claim, "refused")]) == [False]
    assert await queue.dead_letters() == {}
    assert (await queue.backlog())[0] == 1


def test_chunk_splits_by_action_then_size() -> None:
    def claim(n: int, action: Action) -> Claim:
        number = f"+1202555{n:04d}"
        return Claim(number, T0 + n, f"{T0 + n}:{action.value}", event(number, T0 + n, action))

    claims = [
        claim(1, Action.OPT_IN),
        claim(2, Action.OPT_OUT),
        claim(3, Action.OPT_OUT),
        claim(4, Action.OPT_OUT),
        claim(5, Action.OPT_IN),
    ]
    batches = chunk(claims, 2)
    assert [[c.e164[-1] for c in batch] for batch in batches] == [["2", "3"], ["4"], ["1", "5"]]
    assert chunk([], 2) == []


async def test_an_acknowledged_number_leaves_the_dead_letters(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    await fill(store, event("+12025550101", T0))
    await queue.acquire_lease(TOKEN, 10_000)
    [claim] = await queue.claim(TOKEN, 10)
    await queue.dead_letter([(claim, "refused")])
    await fill(store, event("+12025550101", T0 + 1))  # a newer event, applied this time
    [again] = await queue.claim(TOKEN, 10)
    assert await queue.acknowledge([again]) == [True]
    assert await queue.dead_letters() == {}


async def test_a_claimed_opt_out_carries_its_expiry(
    stores: tuple[EventStore, PendingQueue],
) -> None:
    store, queue = stores
    expiring = event("+12025550101", T0).model_copy(update={"expiresMs": T0 + 86_400_000})
    # An opt-in never carries an expiry, even one stored by mistake.
    opt_in = event("+12025550102", T0 + 1, Action.OPT_IN).model_copy(
        update={"expiresMs": T0 + 86_400_000}
    )
    await fill(store, expiring, opt_in, event("+12025550103", T0 + 2))
    await queue.acquire_lease(TOKEN, 10_000)
    changes = [claim.change() for claim in await queue.claim(TOKEN, 10)]
    assert [(c.e164, c.expires_at_ms) for c in changes] == [
        ("+12025550101", T0 + 86_400_000),
        ("+12025550102", None),
        ("+12025550103", None),
    ]


@pytest.mark.parametrize(
    ("first_expiry", "second_expiry"),
    [(T0 + 86_400_000, None), (T0 + 86_400_000, T0 + 2 * 86_400_000)],
    ids=["expiring-then-permanent", "soon-then-later"],
)
async def test_a_same_ms_longer_opt_out_during_the_push_stays_pending(
    stores: tuple[EventStore, PendingQueue], first_expiry: int, second_expiry: int | None
) -> None:
    """The claimed opt-out was pushed with its expiry; a same-ms opt-out asking for longer
    protection arrives during the push: acknowledging the first must not drop the second."""
    store, queue = stores
    first = event("+12025550101", T0).model_copy(
        update={"eventId": "first", "expiresMs": first_expiry}
    )
    second = event("+12025550101", T0).model_copy(
        update={"eventId": "second", "expiresMs": second_expiry}
    )
    await fill(store, first)
    await queue.acquire_lease(TOKEN, 10_000)
    [claim] = await queue.claim(TOKEN, 10)
    assert claim.change().expires_at_ms == first_expiry
    await fill(store, second)
    assert await queue.acknowledge([claim]) == [False]
    assert (await queue.backlog())[0] == 1
    [again] = await queue.claim(TOKEN, 10)
    assert (again.event.eventId, again.change().expires_at_ms) == ("second", second_expiry)
    assert await queue.acknowledge([again]) == [True]
    assert await queue.backlog() == (0, None)


# -- the applications record: appended with the settling, in the same call ---------------------


async def applications(queue: PendingQueue, client: aioredis.Redis) -> list[dict[str, object]]:
    rows = await client.xrange(queue._keys.applications)
    return [
        {
            "outcome": row[b"outcome"].decode(),
            **json.loads(row[b"application"]),
        }
        for _, row in rows
    ]


def answered(*claims: Claim, kind: OutcomeKind = OutcomeKind.APPLIED) -> dict[str, Application]:
    return {
        c.e164: Application(
            T0 + 5, "dnc-groups", "run-abc", ChangeOutcome(c.e164, kind, "", None, 200, "x")
        )
        for c in claims
    }


async def test_each_settled_number_records_what_cxone_answered(
    stores: tuple[EventStore, PendingQueue], any_redis: aioredis.Redis
) -> None:
    store, queue = stores
    await fill(
        store, event("+12025550101", T0), event("+12025550102", T0), event("+12025550103", T0)
    )
    await queue.acquire_lease(TOKEN, 10_000)
    first, second, third = await queue.claim(TOKEN, 10)
    await store.record(event(second.e164, T0 + 1))  # a newer event: the ack must not take it
    await queue.acknowledge([first, second], answered(first, second))
    await queue.dead_letter(
        [(third, "refused")], applications=answered(third, kind=OutcomeKind.REJECTED)
    )
    records = await applications(queue, any_redis)
    assert [(r["number"], r["outcome"], r["result"]) for r in records] == [
        (first.e164, "acknowledged", "applied"),
        (second.e164, "changed", "applied"),
        (third.e164, "dead_lettered", "rejected"),
    ]
    assert records[0] | {"reason": ""} == records[0] and records[0]["httpStatus"] == 200
    assert (records[0]["eventId"], records[0]["flowRunId"]) == (first.event.eventId, "run-abc")
    assert records[0]["requestedAtMs"] == T0 + 5 and records[0]["recordId"] == "x"


async def test_a_deferred_number_records_its_failure(
    stores: tuple[EventStore, PendingQueue], any_redis: aioredis.Redis
) -> None:
    store, queue = stores
    await fill(store, event("+12025550101", T0))
    await queue.acquire_lease(TOKEN, 10_000)
    (claim,) = await queue.claim(TOKEN, 10)
    failure = Application(T0, "dnc-groups", "run-abc", failure="batch failed: CxoneTransientError")
    await queue.defer([Retry(claim, "down", counts=False)], applications={claim.e164: failure})
    (record,) = await applications(queue, any_redis)
    assert (record["outcome"], record["result"], record["httpStatus"]) == (
        "deferred",
        "batch_failed",
        None,
    )
    assert record["reason"] == "batch failed: CxoneTransientError"


async def test_settling_without_applications_records_nothing(
    stores: tuple[EventStore, PendingQueue], any_redis: aioredis.Redis
) -> None:
    store, queue = stores
    await fill(store, event("+12025550101", T0))
    await queue.acquire_lease(TOKEN, 10_000)
    assert await queue.acknowledge(await queue.claim(TOKEN, 10)) == [True]
    assert await any_redis.xlen(queue._keys.applications) == 0


async def test_abandoned_requests_are_recorded_without_settling(
    stores: tuple[EventStore, PendingQueue], any_redis: aioredis.Redis
) -> None:
    # The lease was lost while a request was under way: CXone may have applied it, so it is
    # on record, but the number is not settled (another run may hold it now).
    store, queue = stores
    await fill(store, event("+12025550101", T0))
    await queue.acquire_lease(TOKEN, 10_000)
    (claim,) = await queue.claim(TOKEN, 10)
    sent = Application(T0, "dnc-groups", "run-abc", failure="batch failed: LeaseLost")
    await queue.record_abandoned([claim], {claim.e164: sent})
    (record,) = await applications(queue, any_redis)
    assert (record["outcome"], record["result"], record["number"]) == (
        "abandoned",
        "batch_failed",
        claim.e164,
    )
    assert (await queue.backlog())[0] == 1  # still pending
