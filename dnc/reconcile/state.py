"""What Redis holds for many numbers at once, as ``dnc.reconcile.drift.NumberState``.

Per chunk of numbers, one pipeline reads: the watermark (``"<event ms>:<action>"`` or
``"<event ms>:optOut:<expiry ms>"``: the latest state without parsing the event), the pending
and deferred scores (in flight), the dead letters, the ownership ledger and the adds of ours
in flight. A two-part opt-out watermark may predate expiries in watermarks: its event
(``latest``) is read for the expiry. Every known number is listed by scanning the watermark
hash (``HSCAN``), a chunk at a time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis

from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.reconcile.drift import NumberState
from dnc.store import REDIS_FAILURES, convert_error

SCAN_COUNT = 1_000
"""Numbers asked of Redis per ``HSCAN`` call of the watermark hash."""


class StateReader:
    """Bulk reads of one namespace; methods raise ``StoreError``/``StoreUnavailable``."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys

    async def states(self, numbers: Sequence[str]) -> list[NumberState]:
        """The state of each of ``numbers`` (E.164), in order."""
        if not numbers:
            return []
        keys, wanted = self._keys, list(numbers)
        marks, pending, deferred, dead, owned, adding = await self._pipeline(
            lambda p: (
                p.hmget(keys.watermark, wanted),
                p.zmscore(keys.pending, wanted),
                p.zmscore(keys.deferred, wanted),
                p.hmget(keys.dead_letters, wanted),
                p.hmget(keys.owned, wanted),
                p.hmget(keys.adds_in_flight, wanted),
            )
        )
        parsed = [_parse_watermark(mark) for mark in marks]
        legacy = [n for n, (_, _, two) in zip(wanted, parsed, strict=True) if two]
        expiries = await self._legacy_expiries(legacy)
        return [
            NumberState(
                action,
                expiries.get(number, expiry),
                in_flight=p is not None or d is not None,
                dead_lettered=letter is not None,
                owned=o is not None or a is not None,
            )
            for number, (action, expiry, _), p, d, letter, o, a in zip(
                wanted, parsed, pending, deferred, dead, owned, adding, strict=True
            )
        ]

    async def known_numbers(self) -> AsyncIterator[list[str]]:
        """Every number with a latest state, a scan chunk at a time (a number may come twice
        if the hash is resized mid-scan, as ``HSCAN`` allows)."""
        cursor = 0
        while True:
            try:
                cursor, page = await self._client.hscan(
                    self._keys.watermark, cursor, count=SCAN_COUNT
                )
            except REDIS_FAILURES as exc:
                raise convert_error(exc) from exc
            if page:
                yield [_text(number) for number in page]
            if int(cursor) == 0:
                return

    async def _legacy_expiries(self, numbers: list[str]) -> dict[str, int | None]:
        if not numbers:
            return {}
        (events,) = await self._pipeline(lambda p: (p.hmget(self._keys.latest, numbers),))
        found: dict[str, int | None] = {}
        for number, event in zip(numbers, events, strict=True):
            try:
                expires = json.loads(event).get("expiresMs") if event else None
            except (ValueError, AttributeError):
                expires = None
            found[number] = expires if isinstance(expires, int) else None
        return found

    async def _pipeline(self, queue: Any) -> list[Any]:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                queue(pipe)
                return list(await pipe.execute())
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc


def _parse_watermark(value: object) -> tuple[Action | None, int | None, bool]:
    """(action, expiry ms, whether it is a two-part opt-out whose event says the expiry);
    ``(None, None, False)`` for no or an unreadable watermark."""
    if value is None:
        return None, None, False
    parts = _text(value).split(":")
    try:
        action = Action(parts[1])
    except (IndexError, ValueError):
        return None, None, False
    if action is Action.OPT_OUT and len(parts) == 3 and parts[2].isdigit():
        return action, int(parts[2]), False
    return action, None, action is Action.OPT_OUT


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
