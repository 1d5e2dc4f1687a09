"""The ownership ledger in Redis (``dnc.ownership``): entries in buckets, adds in flight."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.number_hash import Reader, ledger
from dnc.owned_record import OwnedRecord
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.store import load_lua


@dataclass(slots=True)
class OwnershipUpdate:
    """What one push changes in the ledger: ``grant`` (E.164 -> entry), ``release`` (numbers
    whose record our opt-in removed or found gone) and ``answered`` (numbers whose add marker
    a final answer clears)."""

    grant: dict[str, OwnedRecord] = field(default_factory=dict)
    release: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.grant or self.release or self.answered)


class OwnershipLedger:
    """The ledger in Redis for one namespace (bucketed: ``dnc.number_hash.ledger``).
    Methods raise ``StoreError``/``StoreUnavailable`` when Redis fails."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._ledger = ledger(keys)
        self._adopt = client.register_script(load_lua("adopt.lua", "number_hash.lua"))

    async def removable(self, numbers: Sequence[str], now_ms: int | None = None) -> set[str]:
        """Which of ``numbers`` (E.164) an opt-in may remove: owned by an entry whose record
        has not lapsed by ``now_ms`` (UTC ms, default now: a lapsed record of ours is gone,
        and whatever holds the number now is someone else's), or with an add of ours whose
        answer was lost."""
        if not numbers:
            return set()
        at_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        wanted = list(numbers)

        def queue(p: Any) -> Reader:
            read_owned = self._ledger.queue_get(p, wanted)
            p.hmget(self._keys.adds_in_flight, wanted)
            return lambda results: (read_owned(results), next(results))

        owned, adding = await self._pipeline(queue)
        found = set()
        for number, entry, add in zip(numbers, owned, adding, strict=True):
            record = _entry(number, entry)
            lasting = record is not None and (
                record.expires_ms is None or record.expires_ms > at_ms
            )
            if add or lasting:
                found.add(number)
        return found

    async def adds_in_flight(self, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` have an add of ours whose answer was lost."""
        if not numbers:
            return set()

        def queue(p: Any) -> Reader:
            p.hmget(self._keys.adds_in_flight, list(numbers))
            return next

        values = await self._pipeline(queue)
        return {n for n, value in zip(numbers, values, strict=True) if value is not None}

    async def release(self, numbers: Sequence[str]) -> int:
        """Forget ``numbers``' entries and add markers (their record is gone from CXone, as
        reconciliation found); returns how many entries went."""
        if not numbers:
            return 0

        def queue(p: Any) -> Reader:
            removed = self._ledger.queue_delete(p, numbers)
            p.hdel(self._keys.adds_in_flight, *numbers)
            return removed

        return int(await self._pipeline(queue, transaction=True))

    async def note_adds(self, numbers: Sequence[str], now_ms: int) -> set[str]:
        """Mark an add of ours whose answer was lost for each of ``numbers`` (the first time
        kept, UTC ms); returns the numbers that already had one."""
        if not numbers:
            return set()
        key = self._keys.adds_in_flight

        def queue(p: Any) -> Reader:
            for n in numbers:
                p.hsetnx(key, n, now_ms)
            return lambda results: [next(results) for _ in numbers]

        fresh = await self._pipeline(queue)
        return {number for number, new in zip(numbers, fresh, strict=True) if not new}

    async def apply(self, update: OwnershipUpdate) -> None:
        """Write ``update`` in one transaction (the first one also records when the ledger
        started: ``RedisKeys.ownership_since``)."""
        if not update:
            return
        keys = self._keys

        def queue(p: Any) -> Reader:
            p.set(keys.ownership_since, int(time.time() * 1000), nx=True)
            readers = [
                self._ledger.queue_set(p, {n: r.encode(n) for n, r in update.grant.items()}),
                self._ledger.queue_delete(p, update.release),
            ]
            if update.answered:
                p.hdel(keys.adds_in_flight, *update.answered)
            return lambda results: [next(results), *(read(results) for read in readers)]

        await self._pipeline(queue, transaction=True)

    async def entries(self, numbers: Sequence[str]) -> dict[str, OwnedRecord | None]:
        """The ledger entry of each of ``numbers`` (``None``: not owned); an unreadable
        entry counts as owned with nothing known (record id = the number)."""
        if not numbers:
            return {}
        values = await self._pipeline(lambda p: self._ledger.queue_get(p, list(numbers)))
        pairs = zip(numbers, values, strict=True)
        return {number: _entry(number, value) for number, value in pairs}

    async def adopt(self, entries: Iterable[tuple[str, OwnedRecord]]) -> int:
        """Add entries for numbers not in the ledger yet (an owned one, in its bucket or the
        legacy hash, is kept as it is: ``adopt.lua``); returns how many were added."""
        items = list(entries)
        if not items:
            return 0
        args = [x for n, r in items for x in (n, r.encode(n))]
        try:
            return int(await self._adopt(keys=[self._keys.owned], args=args))
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def count(self) -> int:
        """How many records the ledger names (every bucket's size: 10,001 ``HLEN``)."""
        return int(await self._pipeline(self._ledger.queue_count))

    async def _pipeline(self, queue: Callable[[Any], Reader], transaction: bool = False) -> Any:
        """Run the commands ``queue`` puts on one pipeline; what its reader makes of the
        results."""
        try:
            async with self._client.pipeline(transaction=transaction) as pipe:
                read = queue(pipe)
                return read(iter(await pipe.execute()))
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc


def _entry(number: str, value: object) -> OwnedRecord | None:
    if value is None:
        return None
    try:
        return OwnedRecord.decode(number, value if isinstance(value, str | bytes) else str(value))
    except ValueError:
        return OwnedRecord(number, 0, "unknown", None, "unreadable")
