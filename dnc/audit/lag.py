"""How far the archive is behind: entries still in Redis, and when that is a lagging archive.

Read by ``dnc-sync status``, the receiver's ``/metrics`` and the archive flow, so all three
apply the same rule (``lag_reason``).
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from dnc.audit.entries import split_id
from dnc.audit.streams import streams, text
from dnc.keys import RedisKeys
from dnc.redis_failures import REDIS_FAILURES, convert_error


async def backlog(client: aioredis.Redis, keys: RedisKeys) -> dict[str, tuple[int, int | None]]:
    """Per archived stream name: (entries not yet archived, the oldest one's time in UTC ms,
    or ``None`` when there is none). Raises ``StoreError``/``StoreUnavailable``."""
    names = {s.name: s.key for s in streams(keys, lambda _raw: None)}
    try:
        async with client.pipeline(transaction=False) as pipe:
            for key in names.values():
                pipe.xlen(key)
                pipe.xrange(key, "-", "+", count=1)
            replies = await pipe.execute()
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    found: dict[str, tuple[int, int | None]] = {}
    for i, name in enumerate(names):
        length, first = int(replies[2 * i]), replies[2 * i + 1]
        found[name] = (length, split_id(text(first[0][0]))[0] if first else None)
    return found


def oldest_age_s(waiting: Mapping[str, tuple[int, int | None]], now_ms: int) -> float:
    """How long the oldest entry of ``backlog``'s answer has waited at ``now_ms``, seconds."""
    oldest = [ms for _, ms in waiting.values() if ms is not None]
    return max(0.0, (now_ms - min(oldest)) / 1000) if oldest else 0.0


def lag_reason(entries: int, oldest_age_s: float, max_entries: int, max_age_s: float) -> str | None:
    """Why the archive is lagging, or ``None``: more than ``max_entries`` stream entries wait,
    or the oldest has waited more than ``max_age_s`` seconds (a stopped archive on a quiet
    system). ``DNC_AUDIT_ARCHIVE_LAG_MAX_ENTRIES``, ``DNC_AUDIT_ARCHIVE_LAG_MAX_S``."""
    if entries > max_entries:
        return f"{entries:,} stream entries wait to be archived (limit {max_entries:,})"
    if entries and oldest_age_s > max_age_s:
        return (
            f"the oldest unarchived entry has waited {oldest_age_s:,.0f} s "
            f"(limit {max_age_s:,.0f} s)"
        )
    return None
