"""The rejected streams and the counters ``dnc-sync status`` reads: refused requests, warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.recording import StoreLimits
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.rejection_reasons import rejection_reasons


class RejectionLog:
    """Writes refused requests and warning counts to Redis, and owns the client (the event
    store, ``dnc.store.EventStore``, is one). All methods raise ``StoreUnavailable`` when Redis
    cannot be reached (retry later) and ``StoreError`` for any other Redis failure."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, limits: StoreLimits) -> None:
        self._client = client
        self._keys = keys
        self._limits = limits

    @property
    def keys(self) -> RedisKeys:
        """The key names this store writes."""
        return self._keys

    async def count_warnings(
        self, reasons: Mapping[str, int], naive_senders: Mapping[str, int]
    ) -> None:
        """Add to the counters ``dnc-sync status`` reads: events per ``"<field>:<reason>"`` of
        a dropped field or an adjusted reading (``RedisKeys.warnings``), and events with a
        time without a zone per sender (``RedisKeys.naive_times``)."""
        if not reasons and not naive_senders:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for reason, count in reasons.items():
                    pipe.hincrby(self._keys.warnings, reason, count)
                for sender, count in naive_senders.items():
                    pipe.hincrby(self._keys.naive_times, sender, count)
                await pipe.execute()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def record_rejection(
        self, fields: Mapping[str, str], *, authenticated: bool = True
    ) -> None:
        """Append one refused request (``reason``, ``status``, ... as strings) to the rejected
        stream (no cap: the archive trims it once copied), or, when the caller did not
        authenticate, to the capped unauthenticated one (``RedisKeys.rejected_unauthenticated``:
        anyone can add to it, so it must not fill Redis); counted by reason in the same
        transaction (``RedisKeys.rejection_counts``)."""
        prefix = "auth:" if authenticated else "anon:"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                if authenticated:
                    pipe.xadd(self._keys.rejected, dict(fields))  # type: ignore[arg-type]
                else:
                    pipe.xadd(
                        self._keys.rejected_unauthenticated,
                        dict(fields),  # type: ignore[arg-type]
                        maxlen=self._limits.unauthenticated_max_len,
                        approximate=True,
                    )
                for reason in rejection_reasons(fields):
                    pipe.hincrby(self._keys.rejection_counts, prefix + reason, 1)
                await pipe.execute()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def record_rejections(self, entries: Sequence[Mapping[str, str]]) -> None:
        """``record_rejection`` (authenticated) of each of ``entries``, in order, in one
        transaction: all kept or none (one batch request's refused events)."""
        if not entries:
            return
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for fields in entries:
                    pipe.xadd(self._keys.rejected, dict(fields))  # type: ignore[arg-type]
                    for reason in rejection_reasons(fields):
                        pipe.hincrby(self._keys.rejection_counts, "auth:" + reason, 1)
                await pipe.execute()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def close(self) -> None:
        """Close the Redis client and its pool."""
        await self._client.aclose()

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless Redis answers PING."""
        try:
            await self._client.ping()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc
