"""Property: whatever the delivery order and duplicates, Redis ends at the oracle's state.

Oracle: the latest state of a number is its event with the greatest (event time, opt-out over
opt-in, longest protection: a permanent opt-out over an expiring one, a later expiry over an
earlier one); on an equal key the first one stands. A number is pending exactly when its latest
state changed after its last acknowledgement. An opt-out for one of two E.164 forms of one
subscriber (Argentina's mobile and SMS forms, issue 11 rule 3) is also an event of the other
form, recorded in the same group (``EventStore.record_group``); an opt-in is not. Runs on the
real redis-server, with derived ids (no idempotency key: the state answers) or a caller's ids
(the idempotency buckets), and optionally with the first delivery already in Redis in the
legacy layout (a bare two-part watermark and the event JSON in ``latest``, as written before
states were compact, ``dnc.state``): the rule holds across both encodings.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dnc.events import Action, StoredEvent
from dnc.intake import alias_event_id, derive_event_id
from dnc.keys import RedisKeys
from dnc.number_hash import states
from dnc.state import read_latest
from dnc.store import EventStore, StoreLimits

NUMBERS = ("+12025550123", "+442079460123", "+4930123456", "+5491123456789", "+541123456789")
ALIAS = {3: 4, 4: 3}  # the two forms of one Argentine subscriber
T0 = 1_794_994_200_000

# (number index, ms offset, action, expiry: None or an offset in s; opt-outs only)
Event = tuple[int, int, Action, int | None]
events_st = st.tuples(
    st.integers(0, 4),
    st.integers(0, 2),
    st.sampled_from(list(Action)),
    st.sampled_from([None, 1, 2]),
)
Rank = tuple[int, int, int]
PERMANENT = 2**63  # ranks above every expiry
# An operation: deliver event i of the generated list, or acknowledge number n.
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, 40)),
        st.tuples(st.just("ack"), st.integers(0, 4)),
    ),
    min_size=1,
    max_size=60,
)


def rank(ms: int, action: Action, expires_ms: int | None) -> Rank:
    if action is Action.OPT_IN:
        return (ms, 0, 0)
    return (ms, 1, PERMANENT if expires_ms is None else expires_ms)


def expiry(spec: Event) -> int | None:
    _, _, action, expires_s = spec
    if action is Action.OPT_IN or expires_s is None:
        return None
    return T0 + 60_000 + 1000 * expires_s


def to_events(spec: Event, client_ids: bool = False) -> list[StoredEvent]:
    """The group intake makes of ``spec``: the event, and for an opt-out of a number with
    another form, its copy under that form."""
    event = to_event(spec, client_ids)
    index, _, action, _ = spec
    if action is Action.OPT_IN or index not in ALIAS:
        return [event]
    alias = NUMBERS[ALIAS[index]]
    copy = event.model_copy(
        update={
            "eventId": alias_event_id(event.eventId, alias),
            "e164": alias,
            "aliasOf": event.e164,
        }
    )
    return [event, copy]


def to_event(spec: Event, client_ids: bool = False) -> StoredEvent:
    index, offset, action, _ = spec
    ms = T0 + offset
    number = NUMBERS[index]
    expires_ms = expiry(spec)
    fingerprint = f"{number}|{action.value}|{ms}"  # derived as intake derives it
    if expires_ms is not None:
        fingerprint += f"|{expires_ms}"
    caller_id = f"c-{index}-{offset}-{action.value}-{expires_ms}" if client_ids else None
    return StoredEvent(
        eventId=caller_id or derive_event_id(fingerprint),
        eventIdDerived=caller_id is None,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=T0,
        expiresMs=expires_ms,
    )


def oracle(specs: list[Event], ops: list[tuple[str, int]]) -> tuple[dict[str, Rank], set[str]]:
    latest: dict[str, Rank] = {}
    pending: set[str] = set()
    for op, arg in ops:
        if op == "ack":
            pending.discard(NUMBERS[arg])
            continue
        spec = specs[arg % len(specs)]
        index, offset, action, _ = spec
        key = rank(T0 + offset, action, expiry(spec))
        forms = [index] + ([ALIAS[index]] if action is Action.OPT_OUT and index in ALIAS else [])
        for form in forms:
            if NUMBERS[form] not in latest or key > latest[NUMBERS[form]]:
                latest[NUMBERS[form]] = key
                pending.add(NUMBERS[form])
    return latest, pending


async def write_legacy(client: aioredis.Redis, keys: RedisKeys, group: list[StoredEvent]) -> None:
    """``group`` on an empty store as the script wrote it before states were compact: a
    two-part watermark (expiry only in the JSON, the oldest layout) and the event JSON."""
    for event in group:
        await client.hset(keys.watermark, event.e164, f"{event.eventMs}:{event.action.value}")
        await client.hset(keys.latest, event.e164, event.model_dump_json(exclude_none=True))
        await client.zadd(keys.pending, {event.e164: event.receivedMs}, nx=True)


async def numbers_with_state(client: aioredis.Redis, keys: RedisKeys) -> set[str]:
    """Every number with a state, in its bucket, the long-state hash or the legacy flat hash,
    as ``tests.stored.numbers_with_state`` finds them, but reading only the buckets that exist
    (``SCAN``): reading all 10,000 of them for every example would dominate the run."""
    hashed = states(keys)
    found = {k.decode() for k in await client.hkeys(hashed.legacy)}
    found.update(k.decode() for k in await client.hkeys(hashed.long))
    async for key in client.scan_iter(match=hashed.prefix + "*"):
        bucket = key.decode()
        found.update(hashed.number(bucket, field) for field in await client.hkeys(bucket))
    return found


async def replay(
    url: str,
    specs: list[Event],
    ops: list[tuple[str, int]],
    client_ids: bool = False,
    legacy_first: bool = False,
) -> tuple[dict[str, Rank], set[str]]:
    client = aioredis.Redis.from_url(url)
    keys = RedisKeys("p" + uuid.uuid4().hex[:12])
    store = EventStore(client, keys, StoreLimits(max_batch=4))
    try:
        # Deliveries between two acks go concurrently, so they share coalesced batches.
        groups: list[list[StoredEvent]] = []
        for op, arg in [*ops, ("ack", -1)]:
            if op == "deliver":
                group = to_events(specs[arg % len(specs)], client_ids)
                if legacy_first:
                    await write_legacy(client, keys, group)
                    legacy_first = False
                else:
                    groups.append(group)
                continue
            await asyncio.gather(*(store.record_group(group) for group in groups))
            groups = []
            if arg >= 0:
                await client.zrem(keys.pending, NUMBERS[arg])
        numbers = sorted(await numbers_with_state(client, keys))
        for number in await client.hkeys(keys.watermark):  # a legacy entry never rewritten
            assert await client.hget(*keys.state(number.decode())) is None
            assert await client.hget(keys.state_long, number) is None
        for number in await client.hkeys(keys.state_long):  # in one place only
            assert await client.hget(*keys.state(number.decode())) is None
        found = await read_latest(client, keys, numbers)
        stored = {n: e for n, e in zip(numbers, found, strict=True) if e is not None}
        assert len(stored) == len(numbers)
        pending = {m.decode() for m in await client.zrange(keys.pending, 0, -1)}
        for number, event in stored.items():
            score = await client.zscore(keys.pending, number)
            assert score is None or score == event.receivedMs
        return {n: rank(e.eventMs, e.action, e.expiresMs) for n, e in stored.items()}, pending
    finally:
        leftovers = [k async for k in client.scan_iter(match=keys.tag + ":*")]
        if leftovers:
            await client.delete(*leftovers)
        await client.aclose()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(events_st, min_size=1, max_size=12),
    ops=ops_st,
    client_ids=st.booleans(),
    legacy_first=st.booleans(),
)
# Same-ms opt-outs, the second protecting longer (no expiry; a later one), after an ack.
@example(
    specs=[(0, 0, Action.OPT_OUT, 1), (0, 0, Action.OPT_OUT, None)],
    ops=[("deliver", 0), ("ack", 0), ("deliver", 1), ("deliver", 0)],
    client_ids=False,
    legacy_first=False,
)
# The same from a legacy two-part watermark whose expiry is only in its JSON.
@example(
    specs=[(0, 0, Action.OPT_OUT, 1), (0, 0, Action.OPT_OUT, None), (0, 0, Action.OPT_OUT, 2)],
    ops=[("deliver", 0), ("deliver", 2), ("deliver", 1), ("ack", 0), ("deliver", 0)],
    client_ids=False,
    legacy_first=True,
)
@example(
    specs=[(1, 2, Action.OPT_OUT, 1), (1, 2, Action.OPT_OUT, 2), (1, 2, Action.OPT_IN, None)],
    ops=[("deliver", 2), ("deliver", 0), ("ack", 1), ("deliver", 1), ("deliver", 0)],
    client_ids=True,
    legacy_first=False,
)
def test_store_matches_oracle(
    redis_url: str,
    specs: list[Event],
    ops: list[tuple[str, int]],
    client_ids: bool,
    legacy_first: bool,
) -> None:
    got_latest, got_pending = asyncio.run(replay(redis_url, specs, ops, client_ids, legacy_first))
    want_latest, want_pending = oracle(specs, ops)
    assert got_latest == want_latest
    assert got_pending == want_pending
    delivered = [specs[arg % len(specs)] for op, arg in ops if op == "deliver"]
    for number in got_latest:
        candidates = [
            rank(T0 + s[1], s[2], expiry(s))
            for s in delivered
            if number in (e.e164 for e in to_events(s))
        ]
        assert got_latest[number] == max(candidates)
