"""The pending set as the sync flow sees it: a lease, claims, settling, dead letters.

A sync run takes the lease (a Redis key with a TTL, so a run that dies frees it by itself),
claims the oldest pending numbers with their latest state without removing them, pushes them,
then settles each one: acknowledged numbers leave the pending set only if their watermark is
still the claimed one (compare-and-delete in Lua), so an event that arrived during the push
stays pending; numbers refused for good move to the dead letters, visible and requeueable.
Everything here is a plain async function of an injected Redis client, tested without Prefect.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from dnc.claims import Applications, Claim, DeadLetter, Deferral, Retry, RetryLimits, chunk
from dnc.keys import RedisKeys
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.settle_args import SettleItem, dead_json, retry_item, settle_args
from dnc.state import read_event
from dnc.store import load_lua
from dnc.sync_lease import LeaseGrant, LeaseLost

__all__ = [
    "REQUEUE_CHUNK",
    "Applications",
    "Claim",
    "DeadLetter",
    "Deferral",
    "LeaseGrant",
    "LeaseLost",
    "PendingQueue",
    "Retry",
    "RetryLimits",
    "chunk",
]

REQUEUE_CHUNK = 500
"""Numbers per requeue script call: bounds how long one call holds Redis (and stays far below
Lua's limit on unpacked arguments)."""


class PendingQueue:
    """Lease, claim, settle and dead-letter operations on one namespace. Methods raise
    ``StoreUnavailable``/``StoreError`` when Redis fails and ``LeaseLost`` as documented.
    ``retry``: the limits of ``defer``."""

    def __init__(
        self, client: aioredis.Redis, keys: RedisKeys, retry: RetryLimits | None = None
    ) -> None:
        self._client = client
        self._keys = keys
        self._retry = retry or RetryLimits()
        self._backlog = client.register_script(load_lua("backlog.lua"))
        self._lease = client.register_script(load_lua("lease.lua"))
        self._claim = client.register_script(load_lua("claim.lua", "number_hash.lua"))
        self._settle = client.register_script(load_lua("settle.lua", "number_hash.lua"))
        self._requeue = client.register_script(load_lua("requeue.lua", "number_hash.lua"))
        self._resync = client.register_script(load_lua("resync.lua", "number_hash.lua"))

    async def acquire_lease(self, token: str, ttl_ms: int, grace_ms: int = 0) -> LeaseGrant:
        """Take the lease for ``ttl_ms`` ms if it is free (or already ours). ``grace_ms``: how
        long after an unreleased lease's expiry its successor may not write (the answer's
        ``wait_ms`` is what is left of that, on Redis's clock)."""
        held, wait_ms = await self._lease_call("acquire", token, ttl_ms, grace_ms)
        return LeaseGrant(held, wait_ms)

    async def renew_lease(self, token: str, ttl_ms: int) -> bool:
        """Extend our lease to ``ttl_ms`` ms from now; false when it is not ours any more."""
        held, _ = await self._lease_call("renew", token, ttl_ms)
        return held

    async def release_lease(self, token: str, grace_ms: int = 0) -> None:
        """Drop the lease if it is ours. ``grace_ms`` > 0 when the holder abandoned a request
        that may still land: the next holder does not write for that long (ms) from now."""
        await self._lease_call("release", token, 0, grace_ms)

    async def claim(self, token: str, limit: int, now_ms: int | None = None) -> list[Claim]:
        """The ``limit`` oldest pending numbers with their latest state, oldest first, after
        putting back those whose retry backoff ended by ``now_ms`` (UTC ms, default now).
        Raises ``LeaseLost`` when ``token`` does not hold the lease."""
        keys = self._keys
        rows = await self._run(
            self._claim,
            [
                keys.sync_lease,
                keys.pending,
                keys.watermark,
                keys.latest,
                keys.deferred,
                keys.retry_state,
            ],
            [token, limit, _now_ms(now_ms)],
        )
        if rows is None:
            raise LeaseLost("another sync run holds the lease")
        claims = []
        for i in range(0, len(rows), 4):
            member, score, state, latest = (_text(v) for v in rows[i : i + 4])
            event = read_event(member, state, latest)
            if event is not None:  # a pending number always has its latest event; skip if not
                claims.append(Claim(member, int(float(score)), state, event))
        return claims

    async def acknowledge(
        self, claims: Sequence[Claim], applications: Applications | None = None
    ) -> list[bool]:
        """Remove each claim from the pending set if its watermark is unchanged; per claim,
        whether it left (false: a newer event arrived, it stays pending). ``applications``
        (by E.164) are appended to the applications stream in the same call, with what
        settling did (``dnc.applications``); a claim without one leaves no record."""
        items = [(c, "ack", "") for c in claims]
        return [bool(flag) for flag in await self._settle_all(items, None, applications)]

    async def dead_letter(
        self,
        refused: Sequence[tuple[Claim, str]],
        now_ms: int | None = None,
        applications: Applications | None = None,
    ) -> list[bool]:
        """Move refused claims (with CXone's reason) to the dead letters, under the same
        compare-and-delete as ``acknowledge`` (``applications``: as there)."""
        at_ms = _now_ms(now_ms)
        flags = await self._settle_all(
            [(claim, "dead", dead_json(claim, reason, at_ms)) for claim, reason in refused],
            at_ms,
            applications,
        )
        return [bool(flag) for flag in flags]

    async def defer(
        self,
        retries: Sequence[Retry],
        now_ms: int | None = None,
        rng: random.Random | None = None,
        applications: Applications | None = None,
    ) -> Deferral:
        """Take numbers that failed for now out of the pending set until their backoff ends
        (``RetryLimits``; at least CXone's retry-after), or dead-letter those at the limits,
        under the same compare-and-delete as ``acknowledge`` (a number with a newer event
        stays pending; ``applications``: as there). ``rng`` draws the jitter (tests fix
        it)."""
        at_ms = _now_ms(now_ms)
        draw = rng or random.SystemRandom()
        items = [retry_item(retry, self._retry, draw, at_ms) for retry in retries]
        flags = await self._settle_all(items, at_ms, applications)
        return Deferral(flags.count(3), flags.count(2), flags.count(0))

    async def record_abandoned(
        self, claims: Sequence[Claim], applications: Applications, now_ms: int | None = None
    ) -> None:
        """Append the applications of ``claims`` whose requests were abandoned when the lease
        was lost (CXone may have applied them) to the applications stream, outcome
        ``abandoned``, without settling anything: the numbers stay pending for whoever holds
        the lease now."""
        at_ms = str(_now_ms(now_ms))
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for claim in claims:
                    application = applications.get(claim.e164)
                    if application is None:
                        continue
                    record = application.record(claim.e164, claim.event).model_dump_json()
                    pipe.xadd(
                        self._keys.applications,
                        {"outcome": "abandoned", "settledMs": at_ms, "application": record},
                    )
                await pipe.execute()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def dead_letters(self) -> dict[str, DeadLetter]:
        """Every dead letter by E.164."""
        raw = await self._run_command("hgetall", self._keys.dead_letters)
        return {_text(k): DeadLetter.model_validate_json(v) for k, v in raw.items()}

    async def requeue(self, numbers: Sequence[str] = (), now_ms: int | None = None) -> int:
        """Put dead letters (all when ``numbers`` is empty) back in the pending set; returns
        how many were requeued. Their wait (the sync lag) restarts at ``now_ms`` (UTC ms,
        default: now)."""
        at_ms = _now_ms(now_ms)
        if numbers:
            chunks = [
                list(numbers[i : i + REQUEUE_CHUNK]) for i in range(0, len(numbers), REQUEUE_CHUNK)
            ]
            return sum([await self._requeue_chunk(at_ms, chunk) for chunk in chunks])
        count = 0
        cursor = 0
        while True:  # every dead letter, a bounded script call per HSCAN page
            cursor, page = await self._run_command(
                "hscan", self._keys.dead_letters, cursor, count=REQUEUE_CHUNK
            )
            if page:
                count += await self._requeue_chunk(at_ms, [_text(k) for k in page])
            if int(cursor) == 0:
                return count

    async def resync(self, numbers: Sequence[str], now_ms: int | None = None) -> int:
        """Put settled numbers (not dead-lettered, not waiting out a backoff) back in the
        pending set, waiting since ``now_ms`` (UTC ms, default now), so the next sync pushes
        their latest state again; returns how many were put back."""
        at_ms, keys, count = _now_ms(now_ms), self._keys, 0
        for start in range(0, len(numbers), REQUEUE_CHUNK):
            chunk = list(numbers[start : start + REQUEUE_CHUNK])
            count += int(
                await self._run(
                    self._resync,
                    [keys.pending, keys.watermark, keys.dead_letters, keys.deferred],
                    [at_ms, *chunk],
                )
            )
        return count

    async def _requeue_chunk(self, now_ms: int, numbers: Sequence[str]) -> int:
        keys = self._keys
        count = await self._run(
            self._requeue, [keys.dead_letters, keys.pending, keys.watermark], [now_ms, *numbers]
        )
        return int(count)

    async def backlog(self) -> tuple[int, int | None]:
        """(numbers waiting: pending or waiting out a retry backoff, the receive time in UTC ms
        of the longest-waiting one, or ``None`` when nothing waits)."""
        count, oldest, _ = await self.backlog_counts()
        return count, oldest

    async def deferred_count(self) -> int:
        """How many numbers wait out a retry backoff (they are part of ``backlog``)."""
        return (await self.backlog_counts())[2]

    async def backlog_counts(self) -> tuple[int, int | None, int]:
        """``backlog`` plus the count of numbers waiting out a retry backoff."""
        keys = self._keys
        count, oldest, deferred = await self._run(
            self._backlog, [keys.pending, keys.deferred, keys.retry_state], []
        )
        return int(count), (int(oldest) if oldest else None), int(deferred)

    async def _settle_all(
        self,
        items: Sequence[SettleItem],
        now_ms: int | None = None,
        applications: Applications | None = None,
    ) -> list[int]:
        if not items:
            return []
        keys = self._keys
        args = settle_args(items, _now_ms(now_ms), self._retry, applications)
        key_names = [
            keys.pending,
            keys.watermark,
            keys.dead_letters,
            keys.deferred,
            keys.retry_state,
            keys.applications,
        ]
        return [int(flag) for flag in await self._run(self._settle, key_names, args)]

    async def _lease_call(
        self, mode: str, token: str, ttl_ms: int, grace_ms: int = 0
    ) -> tuple[bool, int]:
        keys = [self._keys.sync_lease, self._keys.sync_lease_history]
        held, wait_ms = await self._run(self._lease, keys, [mode, token, ttl_ms, grace_ms])
        return bool(held), int(wait_ms)

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def _run_command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, name)(*args, **kwargs)
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc


def _now_ms(now_ms: int | None) -> int:
    return now_ms if now_ms is not None else int(time.time() * 1000)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
