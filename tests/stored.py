"""Test helpers: what Redis holds for a number, through the readers the code uses."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis
import redis.asyncio as aioredis

from dnc.events import StoredEvent
from dnc.keys import RedisKeys
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
    """Every number Redis holds a state for."""
    found: Any = await client.hkeys(keys.watermark)
    return {key.decode() for key in found}


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
