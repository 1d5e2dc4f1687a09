"""The queue's figures for ``dnc-sync status``: what waits in Redis (pending, retrying, dead
letters), the refusals and warnings counted, and what the archive has not copied yet."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dnc.audit.lag import backlog
from dnc.audit.lag import oldest_age_s as archive_oldest_age_s
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.store import REDIS_FAILURES, convert_error
from dnc.sync import oldest_age_s


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The queue in Redis: ``backlog`` numbers waiting to be applied (``retrying`` of them wait
    out a retry backoff after a temporary failure), ``oldest_pending_age_s`` (seconds the
    longest-waiting change has waited since receipt, retrying ones included),
    ``dead_letters``, ``rejected`` (refusals of authenticated callers and import rows),
    ``rejected_unauthenticated`` (refusals of callers without a valid secret), and per reason
    ``rejected_by_reason`` of the first and ``rejected_unauthenticated_by_reason`` of the
    second (``field:reason`` for invalid fields, else the error name;
    ``dnc.rejection_reasons``), counted as they were kept (``RedisKeys.rejection_counts``);
    ``warnings_by_reason``: recorded events (receiver and import, duplicates not counted) per
    ``field:reason`` of an optional field dropped from an opt-out or a field read with an
    adjustment (``timestamp:after_receipt``,
    ``timestamp:no_time_zone``, ``phoneNumber:plan_change``, ``phoneNumber:unverified_number``);
    ``naive_times_by_sender``: events with a timestamp without a zone per sender
    (``bearer-<n>``/``hmac-<n>``: the credential's position in its setting, ``unknown``,
    ``import``). These counts run since their Redis key was last deleted. ``unarchived``:
    stream entries not yet copied into the audit store, per stream, and
    ``oldest_unarchived_age_s`` the wait of the oldest of them (seconds; ``dnc.audit``)."""

    backlog: int
    oldest_pending_age_s: float
    dead_letters: int
    rejected: int
    rejected_by_reason: dict[str, int]
    rejected_unauthenticated: int = 0
    rejected_unauthenticated_by_reason: dict[str, int] = field(default_factory=dict)
    retrying: int = 0
    warnings_by_reason: dict[str, int] = field(default_factory=dict)
    naive_times_by_sender: dict[str, int] = field(default_factory=dict)
    unarchived: dict[str, int] = field(default_factory=dict)
    oldest_unarchived_age_s: float = 0.0


async def read_queue(client: aioredis.Redis, keys: RedisKeys, now_ms: int) -> QueueStatus:
    """The queue's figures at ``now_ms`` (UTC ms). Raises ``StoreUnavailable``/``StoreError``."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.dead_letters)
            pipe.hgetall(keys.rejection_counts)
            pipe.hgetall(keys.warnings)
            pipe.hgetall(keys.naive_times)
            dead, refusals, warned, naive = await pipe.execute()
        unarchived = await backlog(client, keys)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    pending, oldest_ms, retrying = await PendingQueue(client, keys).backlog_counts()
    counts = _counts(refusals)
    by_reason: dict[str, Counter[str]] = {"auth": Counter(), "anon": Counter()}
    for key, count in counts.items():
        who, _, reason = key.partition(":")
        by_reason.setdefault(who, Counter())[reason] += count
    return QueueStatus(
        backlog=pending,
        retrying=retrying,
        oldest_pending_age_s=round(oldest_age_s(oldest_ms, now_ms), 1),
        dead_letters=int(dead),
        rejected=sum(n for key, n in counts.items() if key.startswith("auth:")),
        rejected_by_reason=dict(by_reason["auth"].most_common()),
        rejected_unauthenticated_by_reason=dict(by_reason["anon"].most_common()),
        rejected_unauthenticated=sum(n for key, n in counts.items() if key.startswith("anon:")),
        warnings_by_reason=_counts(warned),
        naive_times_by_sender=_counts(naive),
        unarchived={name: length for name, (length, _) in unarchived.items()},
        oldest_unarchived_age_s=round(archive_oldest_age_s(unarchived, now_ms), 1),
    )


def _counts(raw: dict[Any, Any]) -> dict[str, int]:
    """A counter hash as {name: count}, largest first (then by name)."""
    counts = {_text(k): int(v) for k, v in raw.items()}
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
