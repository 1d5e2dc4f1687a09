"""Test helpers: what Redis holds for a number, through the readers the code uses."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis
import redis.asyncio as aioredis

from dnc.events import StoredEvent
from dnc.keys import RedisKeys
from dnc.number_hash import NumberHash, ledger, states
from dnc.state import read_latest


async def latest_event(client: aioredis.Redis, keys: RedisKeys, number: str) -> StoredEvent:
    """The number's latest event as the sync reads it (compact state or legacy JSON)."""
    [event] = await read_latest(client, keys, [number])
    assert event is not None, f"no state for {number}"
    return event


async def recorded_event(
    client: aioredis.Redis, keys: RedisKeys, number: str
) -> dict[str, Any] | None:
    """The whole event JSON (metadata, warnings...) of the number's latest queued event, from
    the audit stream (the compact state keeps only what the sync needs); ``None`` if none."""
    entries: Any = await client.xrevrange(keys.audit)
    for _, fields in entries:
        event: dict[str, Any] = json.loads(fields[b"event"])
        if fields[b"status"] == b"queued" and event["e164"] == number:
            return event
    return None


async def numbers_with_state(client: aioredis.Redis, keys: RedisKeys) -> set[str]:
    """Every number Redis holds a state for (its bucket or the legacy flat hash)."""
    return set(await all_states(client, keys))


async def _bucketed(client: aioredis.Redis, hashed: NumberHash) -> dict[str, bytes]:
    """Every entry of a bucketed per-number hash, by E.164 number, each read as the readers
    read it (``NumberHash.queue_get``: bucket or long hash, the legacy one's when later)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hkeys(hashed.legacy)
        pipe.hkeys(hashed.long)
        buckets = hashed.bucket_keys()
        for key in buckets:
            pipe.hkeys(key)
        found = await pipe.execute()
    numbers = {k.decode() for k in [*found[0], *found[1]]}
    for key, fields in zip(buckets, found[2:], strict=True):
        numbers.update(hashed.number(key, f) for f in fields)
    wanted = sorted(numbers)
    async with client.pipeline(transaction=True) as pipe:
        read = hashed.queue_get(pipe, wanted)
        values = read(iter(await pipe.execute()))
    return dict(zip(wanted, values, strict=True))


async def all_states(client: aioredis.Redis, keys: RedisKeys) -> dict[str, bytes]:
    """Every number's state value (``dnc.state``), by E.164 number."""
    return await _bucketed(client, states(keys))


async def ledger_entries(client: aioredis.Redis, keys: RedisKeys) -> dict[str, bytes]:
    """Every ownership-ledger entry (``OwnedRecord.encode``), by E.164 number."""
    return await _bucketed(client, ledger(keys))


async def state_value(client: aioredis.Redis, keys: RedisKeys, number: str) -> bytes | None:
    """The number's state value as Redis holds it (its bucket, else the legacy flat hash)."""
    async with client.pipeline(transaction=False) as pipe:
        read = states(keys).queue_get(pipe, [number])
        [value] = read(iter(await pipe.execute()))
    return value  # type: ignore[no-any-return]


async def ledger_entry(client: aioredis.Redis, keys: RedisKeys, number: str) -> bytes | None:
    """The number's ownership-ledger entry as Redis holds it (bucket, else legacy)."""
    async with client.pipeline(transaction=False) as pipe:
        read = ledger(keys).queue_get(pipe, [number])
        [value] = read(iter(await pipe.execute()))
    return value  # type: ignore[no-any-return]


def all_states_sync(client: redis.Redis, keys: RedisKeys) -> dict[str, bytes]:
    """``all_states`` with a synchronous client."""
    hashed = states(keys)
    with client.pipeline(transaction=False) as pipe:
        pipe.hkeys(hashed.legacy)
        pipe.hkeys(hashed.long)
        buckets = hashed.bucket_keys()
        for key in buckets:
            pipe.hkeys(key)
        found: Any = pipe.execute()
    numbers = {k.decode() for k in [*found[0], *found[1]]}
    for key, fields in zip(buckets, found[2:], strict=True):
        numbers.update(hashed.number(key, f) for f in fields)
    wanted = sorted(numbers)
    with client.pipeline(transaction=True) as pipe:
        read = hashed.queue_get(pipe, wanted)
        values = read(iter(pipe.execute()))
    return dict(zip(wanted, values, strict=True))


def state_value_sync(client: redis.Redis, keys: RedisKeys, number: str) -> bytes | None:
    """``state_value`` with a synchronous client."""
    with client.pipeline(transaction=True) as pipe:
        read = states(keys).queue_get(pipe, [number])
        [value] = read(iter(pipe.execute()))
    return value  # type: ignore[no-any-return]


async def id_is_kept(client: aioredis.Redis, keys: RedisKeys, event_id: str) -> bool:
    """Whether an idempotency bucket (``RedisKeys.ids``) or a legacy key holds ``event_id``."""
    field = hashlib.blake2b(event_id.encode(), digest_size=16).digest()
    for bucket in await client.keys(f"{keys.tag}:ids:*"):
        if await client.hexists(bucket, field):  # type: ignore[arg-type,unused-ignore]
            return True
    return bool(await client.exists(keys.event_id(event_id)))


def recorded_event_sync(client: redis.Redis, keys: RedisKeys, number: str) -> dict[str, Any]:
    """``recorded_event`` with a synchronous client; fails when the number has none."""
    entries: Any = client.xrevrange(keys.audit)
    for _, fields in entries:
        event: dict[str, Any] = json.loads(fields[b"event"])
        if fields[b"status"] == b"queued" and event["e164"] == number:
            return event
    raise AssertionError(f"no queued event of {number} in the audit stream")
