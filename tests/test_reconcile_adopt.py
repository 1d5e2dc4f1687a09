"""Adoption (``dnc.reconcile.adopt``): only settled opt-outs in force whose record lapses when
they do are claimed, once; ``force`` runs it again without overwriting an entry."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.ownership import OwnedRecord, OwnershipLedger
from dnc.reconcile.adopt import AdoptionReport, AlreadyAdopted, adopt, matches
from dnc.reconcile.drift import NumberState
from tests.stored import ledger_entries, ledger_entry
from tests.test_reconcile_run import DAY, NOW, FakeReader, held

EXP = NOW + 30 * DAY
A, B, C, D, E, F, G, H, M, J, K = (f"+120255502{n:02d}" for n in range(1, 12))
U = "+12025550999"
KEPT = OwnedRecord("kept-id", NOW - DAY, "flow-run-0", None, "created")


@pytest.fixture
def keys(namespace: str) -> RedisKeys:
    return RedisKeys(namespace)


async def scene(client: aioredis.Redis, keys: RedisKeys) -> FakeReader:
    at = NOW - DAY
    await client.hset(
        keys.watermark,
        mapping={
            A: f"{at}:optOut",  # permanent, record permanent: adopted
            B: f"{at}:optOut:{EXP}",  # record 999 ms later, same second: adopted
            C: f"{at}:optOut:{EXP}",  # record a second later: not matching
            D: f"{at}:optOut",  # pending: not matching
            E: f"{at}:optOut",  # dead-lettered: not matching
            F: f"{at}:optIn",  # an opt-in: not matching
            G: f"{at}:optOut:{NOW - 1}",  # lapsed, record with its expiry: not matching
            H: f"{at}:optOut",  # in the ledger already
            M: f"{at}:optOut",  # waiting out a retry backoff: not matching
            J: f"{at}:optOut",  # an add of ours in flight: counts as owned
            K: f"{at}:optOut:{EXP}",  # permanent record for an opt-out with an expiry
        },
    )
    await client.zadd(keys.pending, {D: NOW - 1})
    await client.hset(keys.dead_letters, E, "{}")
    await client.zadd(keys.deferred, {M: NOW + 60_000})
    await client.hset(keys.owned, H, KEPT.to_json())
    await client.hset(keys.adds_in_flight, J, NOW - 5)
    return FakeReader(
        [
            [held(A), held(B, EXP + 999), held(C, EXP + 1_000), held(D)],
            [held(E), held(F), held(G, NOW - 1), held(H)],
            [held(M), held(J), held(K), held(U)],
        ]
    )


async def entry(client: aioredis.Redis, keys: RedisKeys, number: str) -> dict[str, object]:
    raw = await ledger_entry(client, keys, number)
    assert raw is not None
    loaded: dict[str, object] = json.loads(OwnedRecord.decode(number, raw).to_json())
    return loaded


async def marker(client: aioredis.Redis, keys: RedisKeys) -> dict[str, object]:
    raw = await client.get(keys.ownership_adopted)
    assert raw is not None
    loaded: dict[str, object] = json.loads(raw)
    return loaded


async def test_adopts_only_settled_opt_outs_in_force_with_the_same_expiry(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    reader = await scene(any_redis, keys)
    report = await adopt(any_redis, keys, reader, now_ms=NOW)
    assert report == AdoptionReport(
        records=12, adopted=2, already_owned=2, not_matching=8, api_calls=3
    )
    assert sorted(await ledger_entries(any_redis, keys)) == [A, B, H]
    assert await entry(any_redis, keys, A) == {
        "recordId": "2025550201",
        "createdMs": NOW,
        "flowRunId": "adopt",
        "expiresMs": None,
        "how": "adopted",
    }
    assert await entry(any_redis, keys, B) == {
        "recordId": "2025550202",
        "createdMs": NOW,
        "flowRunId": "adopt",
        "expiresMs": EXP + 999,  # the record's expiry
        "how": "adopted",
    }
    assert OwnedRecord.from_json(json.dumps(await entry(any_redis, keys, H))) == KEPT
    assert await marker(any_redis, keys) == {"atMs": NOW, "adopted": 2}
    ledger = OwnershipLedger(any_redis, keys)
    assert await ledger.removable([A, B, C, J]) == {A, B, J}


async def test_a_second_adoption_needs_force(any_redis: aioredis.Redis, keys: RedisKeys) -> None:
    reader = await scene(any_redis, keys)
    await adopt(any_redis, keys, reader, now_ms=NOW)
    again = FakeReader(reader.listing)
    with pytest.raises(AlreadyAdopted, match="--force"):
        await adopt(any_redis, keys, again, now_ms=NOW + 1_000)
    assert again.pages_read == 0  # nothing read
    assert await marker(any_redis, keys) == {"atMs": NOW, "adopted": 2}


async def test_force_adopts_again_without_overwriting(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    reader = await scene(any_redis, keys)
    await adopt(any_redis, keys, reader, now_ms=NOW)
    first_a = await entry(any_redis, keys, A)
    # C's record was fixed in CXone meanwhile: it matches now
    listing = [*reader.listing[:-1], [*reader.listing[-1], held(C, EXP)]]
    report = await adopt(any_redis, keys, FakeReader(listing), force=True, now_ms=NOW + 5_000)
    assert report == AdoptionReport(
        records=13, adopted=1, already_owned=4, not_matching=8, api_calls=3
    )
    assert await entry(any_redis, keys, A) == first_a  # createdMs still NOW
    assert (await entry(any_redis, keys, C))["createdMs"] == NOW + 5_000
    assert OwnedRecord.from_json(json.dumps(await entry(any_redis, keys, H))) == KEPT
    assert await marker(any_redis, keys) == {"atMs": NOW + 5_000, "adopted": 1}


async def test_an_empty_group_adopts_nothing_but_is_remembered(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    report = await adopt(any_redis, keys, FakeReader([[]]), now_ms=NOW)
    assert report == AdoptionReport(api_calls=1)
    assert await marker(any_redis, keys) == {"atMs": NOW, "adopted": 0}
    with pytest.raises(AlreadyAdopted):
        await adopt(any_redis, keys, FakeReader([[]]), now_ms=NOW)


@pytest.mark.parametrize(
    ("state", "expires_ms", "expected"),
    [
        (NumberState(Action.OPT_OUT, EXP), EXP, True),
        (NumberState(Action.OPT_OUT, EXP), EXP + 999, True),
        (NumberState(Action.OPT_OUT, EXP + 999), EXP, True),
        (NumberState(Action.OPT_OUT, EXP), EXP + 1_000, False),
        (NumberState(Action.OPT_OUT, EXP), EXP - 1, False),
        (NumberState(Action.OPT_OUT, None), None, True),
        (NumberState(Action.OPT_OUT, None), EXP, False),
        (NumberState(Action.OPT_OUT, EXP), None, False),
        (NumberState(Action.OPT_OUT, NOW), NOW, False),  # lapsed at now
        (NumberState(Action.OPT_OUT, None, in_flight=True), None, False),
        (NumberState(Action.OPT_OUT, None, dead_lettered=True), None, False),
        (NumberState(Action.OPT_IN), None, False),
        (NumberState(None), None, False),
    ],
)
def test_matches(state: NumberState, expires_ms: int | None, expected: bool) -> None:
    assert matches(state, held(A, expires_ms), NOW) is expected


async def test_a_number_listed_twice_keeps_its_first_entry(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await any_redis.hset(keys.watermark, B, f"{NOW - DAY}:optOut:{EXP}")
    listing = [[held(B, EXP), held(B, EXP + 500)]]  # both match (same second)
    report = await adopt(any_redis, keys, FakeReader(listing), now_ms=NOW)
    assert (report.records, report.adopted, report.not_matching) == (2, 1, 0)
    assert (await entry(any_redis, keys, B))["expiresMs"] == EXP


async def test_the_ledger_never_overwrites_an_entry_on_adoption(
    any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    ledger = OwnershipLedger(any_redis, keys)
    await any_redis.hset(keys.owned, H, KEPT.to_json())
    adopted = OwnedRecord("2025550208", NOW, "adopt", None, "adopted")
    assert await ledger.adopt([(H, adopted), (A, adopted)]) == 1
    assert await ledger.adopt([]) == 0
    assert (await ledger.entries([H, A])) == {H: KEPT, A: adopted}
    assert await any_redis.hget(keys.owned, H) == KEPT.to_json().encode()  # left as it was
    assert await any_redis.hget(*keys.owned_entry(A)) == adopted.encode(A).encode()


async def test_only_opt_outs_received_before_the_ledger_started_are_adopted(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    """An opt-out synced with the ledger and not recorded as ours found the record already
    there (someone else's): adoption must not claim it (the deployment had the ledger)."""
    since = NOW - DAY
    old, new = "+12025550301", "+12025550302"
    await fake_redis.set(keys.ownership_since, since)
    for number, received in ((old, since - 1_000), (new, since + 1_000)):
        await fake_redis.hset(keys.watermark, number, f"{received}:optOut")
        event = {"e164": number, "action": "optOut", "eventMs": received, "receivedMs": received}
        await fake_redis.hset(keys.latest, number, json.dumps(event))
    reader = FakeReader([[held(old), held(new)]])
    report = await adopt(fake_redis, keys, reader, now_ms=NOW)
    assert (report.adopted, report.not_matching) == (1, 1)
    assert list(await ledger_entries(fake_redis, keys)) == [old]
