"""What Redis holds for many numbers at once, as ``dnc.reconcile.drift.NumberState``.

Per chunk of numbers, one script call (``numbers_state.lua``) reads: the watermark
(``"<event ms>:<action>"`` or ``"<event ms>:optOut:<expiry ms>"``: the latest state without
parsing the event), whether it is pending or deferred (in flight), dead-lettered, in the
ownership ledger or has an add of ours in flight. A two-part opt-out watermark may predate
expiries in watermarks: the script reads its event (``latest``) for the expiry. Every known
number is listed from the legacy flat hash (``HSCAN``), the long-state hash and the state
buckets, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import redis.asyncio as aioredis

from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.number_hash import states as number_states
from dnc.reconcile.drift import NumberState
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.store import load_lua

SCAN_COUNT = 1_000
"""Numbers asked of Redis per ``HSCAN`` call of a flat hash (legacy, long states)."""
BUCKET_CHUNK = 50
"""State buckets read per pipeline (``HKEYS`` each): about 5,000 numbers at 1M."""
STATE_CHUNK = 1_000
"""Numbers per call of the state script: bounds how long one call holds Redis."""


class StateReader:
    """Bulk reads of one namespace; methods raise ``StoreError``/``StoreUnavailable``."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._script = client.register_script(load_lua("numbers_state.lua", "number_hash.lua"))

    async def states(self, numbers: Sequence[str]) -> list[NumberState]:
        """The state of each of ``numbers`` (E.164), in order (one script call per
        ``STATE_CHUNK`` numbers)."""
        keys, found = self._keys, []
        key_names = [
            keys.watermark,
            keys.pending,
            keys.deferred,
            keys.dead_letters,
            keys.owned,
            keys.adds_in_flight,
            keys.latest,
        ]
        for start in range(0, len(numbers), STATE_CHUNK):
            chunk = list(numbers[start : start + STATE_CHUNK])
            try:
                flat = await self._script(keys=key_names, args=chunk)
            except REDIS_FAILURES as exc:
                raise convert_error(exc) from exc
            for i in range(0, len(flat), 2):
                action, expires_ms = _parse_watermark(flat[i])
                flags = int(flat[i + 1])
                found.append(
                    NumberState(
                        action,
                        expires_ms,
                        in_flight=bool(flags & 1),
                        dead_lettered=bool(flags & 2),
                        owned=bool(flags & 4),
                    )
                )
        return found

    async def known_numbers(self) -> AsyncIterator[list[str]]:
        """Every number with a latest state, a chunk at a time: the legacy flat hash while it
        exists, the long-state hash, the state buckets (``BUCKET_CHUNK`` a pipeline), then
        the long-state hash again. Entries only leave the legacy hash, and a state that moves
        once between its bucket and the long hash during the listing (a new event changed its
        length) is found on one side; one that moves back and forth may be missed, but it is
        pending then (a state moves only when an event is queued), and the next run lists it.
        A number may come twice (a resize mid-scan, as ``HSCAN`` allows, or a move)."""
        hashed = number_states(self._keys)
        async for page in self._scan(hashed.legacy):
            yield page
        async for page in self._scan(hashed.long):
            yield page
        buckets = hashed.bucket_keys()
        for start in range(0, len(buckets), BUCKET_CHUNK):
            chunk = buckets[start : start + BUCKET_CHUNK]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.hkeys(key)
                    fields = await pipe.execute()
            except REDIS_FAILURES as exc:
                raise convert_error(exc) from exc
            numbers = [
                hashed.number(k, f) for k, found in zip(chunk, fields, strict=True) for f in found
            ]
            if numbers:
                yield numbers
        async for page in self._scan(hashed.long):
            yield page

    async def _scan(self, key: str) -> AsyncIterator[list[str]]:
        """The fields of the flat hash ``key`` (E.164 numbers), ``HSCAN`` a page at a time."""
        cursor = 0
        while True:
            try:
                cursor, page = await self._client.hscan(key, cursor, count=SCAN_COUNT)
            except REDIS_FAILURES as exc:
                raise convert_error(exc) from exc
            if page:
                yield [_text(number) for number in page]
            if int(cursor) == 0:
                return


def _parse_watermark(value: object) -> tuple[Action | None, int | None]:
    """(action, expiry ms) of a watermark as the script gives it; ``(None, None)`` for none
    or an unreadable one."""
    parts = _text(value).split(":")
    try:
        action = Action(parts[1])
    except (IndexError, ValueError):
        return None, None
    if action is Action.OPT_OUT and len(parts) == 3 and parts[2].isdigit():
        return action, int(parts[2])
    return action, None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
