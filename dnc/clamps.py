"""Clamped events' retries: an event time after receipt is recorded as the receipt time, which
differs per delivery, so a retry would look like another event under the same key.

The receipt time each clamped event was first recorded at is kept per idempotency key
(``RedisKeys.clamped``, for the idempotency TTL); a retry refused as ``id_conflict`` is recorded
again as its first delivery was, and so answered ``duplicate``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from dnc.errors import StoreError
from dnc.events import StoredEvent
from dnc.keys import RedisKeys
from dnc.recording import Group, RecordStatus
from dnc.redis_failures import REDIS_FAILURES, convert_error

Record = Callable[[Sequence[Group]], Awaitable[list[list[RecordStatus]]]]
"""Records groups and remembers their clamps (the event store's two ways of recording)."""


class ClampMemory:
    """The clamps of one namespace's event store; ``ttl_ms``: the idempotency TTL, ms."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, ttl_ms: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_ms = ttl_ms

    async def finish_groups(
        self,
        groups: list[Group],
        statuses: list[list[RecordStatus]],
        again: Record,
    ) -> list[list[RecordStatus]]:
        """After a first recording of ``groups`` (``statuses``): record again, through
        ``again``, each group refused as ``id_conflict`` whose events are retries of clamped
        events (as their first deliveries were recorded: then ``duplicate``), and remember
        ``again`` remembers the clamps of what it records, as the first recording did."""
        groups, statuses = list(groups), list(statuses)
        conflicts = [i for i, found in enumerate(statuses) if RecordStatus.ID_CONFLICT in found]
        if conflicts:
            firsts = iter(await self._first_deliveries([e for i in conflicts for e in groups[i]]))
            redo: list[tuple[int, Group]] = []
            for i in conflicts:
                found = [next(firsts) for _ in groups[i]]
                if any(first is not None for first in found):
                    redo.append((i, tuple(f or e for f, e in zip(found, groups[i], strict=True))))
            if redo:
                redone = await again([group for _, group in redo])
                for (i, group), status in zip(redo, redone, strict=True):
                    groups[i], statuses[i] = group, status
        return statuses

    async def remember(
        self, groups: Sequence[Group], statuses: Sequence[list[RecordStatus]]
    ) -> None:
        """Keep, per idempotency key, the receipt time each clamped event of ``groups`` was
        just recorded at (``RedisKeys.clamped``), once the event holds its key: a failed first
        delivery or a key reused for another event leaves nothing a retry could be mistaken
        by. Best effort: the events are recorded already; without it a retry is answered
        409."""
        events = _clamped(groups, statuses)
        if not events:
            return
        with contextlib.suppress(StoreError):
            await self._set_clamps(events)

    async def _set_clamps(self, events: Sequence[StoredEvent]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for event in events:
                    value = f"{event.e164}|{event.action.value}|{event.sentEventMs}|{event.eventMs}"
                    pipe.set(self._keys.clamped(event.eventId), value, nx=True, px=self._ttl_ms)
                await pipe.execute()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def _first_deliveries(self, events: Sequence[StoredEvent]) -> list[StoredEvent | None]:
        """For each event whose key was refused as used for another event: the event as its
        first delivery was recorded, when that delivery was clamped to its receipt time and
        this is the same number, action and sent time; else ``None`` (a real conflict)."""
        try:
            found = await self._client.mget([self._keys.clamped(e.eventId) for e in events])
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc
        firsts: list[StoredEvent | None] = []
        for event, raw in zip(events, found, strict=True):
            text = raw.decode() if isinstance(raw, bytes) else raw
            number, action, sent, recorded = (text or "|||").split("|")
            sent_ms = event.sentEventMs if event.sentEventMs is not None else event.eventMs
            same = (number, action, sent) == (event.e164, event.action.value, str(sent_ms))
            if same and recorded.isdigit() and int(recorded) != event.eventMs:
                update = {"eventMs": int(recorded), "sentEventMs": sent_ms}
                firsts.append(event.model_copy(update=update))
            else:
                firsts.append(None)
        return firsts


def _clamped(groups: Sequence[Group], statuses: Sequence[list[RecordStatus]]) -> list[StoredEvent]:
    """The events of ``groups`` recorded at their receipt time (``sentEventMs``) that the
    script just wrote (queued or superseded): their clamps are to be remembered."""
    return [
        event
        for group, found in zip(groups, statuses, strict=True)
        for event, status in zip(group, found, strict=True)
        if event.sentEventMs is not None
        and status in (RecordStatus.QUEUED, RecordStatus.SUPERSEDED)
    ]
