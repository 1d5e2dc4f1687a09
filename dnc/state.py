"""A number's state as kept in Redis: one compact string per number, and idempotency keys.

**State** (per number, in the buckets ``RedisKeys.state``: ``dnc.number_hash``; the flat
``RedisKeys.watermark`` HASH written before them is still read). Written by
``record_events.lua``::

    "<event ms>:<action>[:<expiry ms>] <received ms - event ms, base 36> [<id token>]"

e.g. ``"1712345678901:optOut 4fzyo"`` or ``"1712345678901:optIn 4fzyo cbench-12-0a1b"``.
The part before the first space is the **watermark** (``"<event ms>:<action>"``, with the
expiry for an opt-out that lapses; UTC epoch ms): what ordering and the sync's
compare-and-delete need. The rest is what a push and its audit record need: the receive time
(an offset from the event time, base 36, ``-`` when negative) and the event id: no token when
the id is the one derived from number, action, event time and expiry (``derive_id``,
recomputed on read, which says ``eventIdDerived``); ``c<id>`` a caller's id; ``d<id>`` a
derived id that cannot be recomputed (an alias copy's, or one derived from a time after
receipt). Everything else of the event (metadata,
region, sender, warnings...) is in the audit stream and, once archived, the audit store.

**Legacy state** (written before this format, still read): the watermark alone (no space) in
the same hash, with the whole event JSON in ``RedisKeys.latest``. A number keeps it until its
next queued event, which writes the compact value and deletes its ``latest`` entry.

**Idempotency**: events with a derived id (``needs_id_index`` false) have no key: their
retry is recognised by the number's state (same watermark, same id token: ``duplicate``;
once a newer event replaced it, the retry is ``superseded``). The state answers
``duplicate`` for any event whose id the buckets do not know (an expired one too). Others (a
caller's id, a clamped derived one) are kept in time-bucketed hashes ``RedisKeys.ids``
(``IdBuckets``):
field = 128-bit BLAKE2b of the id, value = 128-bit BLAKE2b of the fingerprint; buckets
``ttl / ID_BUCKETS_PER_TTL`` wide (the width fixed in ``RedisKeys.ids_width`` at first use:
a TTL changed later reads more or fewer buckets of the same width, never other keys), expiring
two widths plus the TTL after their start, split
into ``ID_SHARDS`` small hashes (listpack-encoded while at most 128 fields). Legacy per-id
STRING keys (``RedisKeys.event_id``) are still read until they expire.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from dnc.events import Action, StoredEvent
from dnc.keys import RedisKeys
from dnc.number_hash import states as number_states

ID_BUCKETS_PER_TTL = 4
"""Idempotency buckets per TTL: an id lives between one TTL and 1.5 TTL; a lookup reads
``ID_BUCKETS_PER_TTL + 2`` buckets."""
ID_SHARDS = 4096
"""Hashes per idempotency bucket (by the id hash's first 12 bits): each stays a compact
listpack (<= 128 fields, Redis's default ``hash-max-listpack-entries``) up to about 500k
ids per bucket width."""
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def default_width(ttl_ms: int) -> int:
    """The bucket width (ms) a namespace starts with: ``ttl_ms / ID_BUCKETS_PER_TTL``."""
    return max(1, ttl_ms // ID_BUCKETS_PER_TTL)


def derive_id(e164: str, action: Action, event_ms: int, expires_ms: int | None) -> str:
    """The id intake derives for an event sent without one (``dnc.intake.derive_event_id``
    of ``"<e164>|<action>|<event ms>[|<expiry ms>]"``). Frozen here: a stored state without an
    id token is read back with exactly this, whatever intake does later."""
    text = f"{e164}|{action.value}|{event_ms}"
    if expires_ms is not None:
        text += f"|{expires_ms}"
    return "d-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def watermark(event: StoredEvent) -> str:
    """``"<event ms>:<action>"``, plus ``":<expiry ms>"`` for an opt-out that lapses."""
    mark = f"{event.eventMs}:{event.action.value}"
    if event.action is Action.OPT_OUT and event.expiresMs is not None:
        mark += f":{event.expiresMs}"
    return mark


def state_tail(event: StoredEvent) -> str:
    """What follows the watermark in the event's compact state: the receive-time offset and
    the id token (see the module docstring)."""
    expires = event.expiresMs if event.action is Action.OPT_OUT else None
    tail = _base36(event.receivedMs - event.eventMs)
    if event.eventId == derive_id(event.e164, event.action, event.eventMs, expires):
        return tail  # recomputable (even when a caller sent exactly this id)
    return f"{tail} {'d' if event.eventIdDerived else 'c'}{event.eventId}"


def needs_id_index(event: StoredEvent) -> bool:
    """Whether the event's id is kept in the idempotency buckets: a caller's id (it may be
    reused for another event: ``id_conflict``), or a derived one recorded at its receipt
    time (its retries are recorded at another time: ``EventStore`` matches them by id)."""
    return not event.eventIdDerived or event.sentEventMs is not None


def id_hashes(event: StoredEvent) -> tuple[str, str]:
    """(hex BLAKE2b-128 of the id, hex BLAKE2b-128 of ``StoredEvent.fingerprint``)."""
    return (
        hashlib.blake2b(event.eventId.encode(), digest_size=16).hexdigest(),
        hashlib.blake2b(event.fingerprint.encode(), digest_size=16).hexdigest(),
    )


@dataclass(frozen=True, slots=True)
class IdBuckets:
    """The idempotency buckets of one script call: ``width_ms``, the ``current`` index (ids
    are written there), the ``indexes`` a lookup reads (current first) and ``expire_at_ms``
    (UTC ms) of the current bucket."""

    width_ms: int
    current: int
    indexes: tuple[int, ...]
    expire_at_ms: int

    @classmethod
    def at(cls, now_ms: int, ttl_ms: int, width_ms: int | None = None) -> IdBuckets:
        """Buckets for ``now_ms`` (UTC ms) and the idempotency TTL (ms): every bucket an id
        written in the last ``ttl_ms`` can be in, and the next (a receiver whose clock is
        behind still finds ids written by one ahead of it). ``width_ms``: the namespace's
        bucket width (``RedisKeys.ids_width``, fixed at first use, so a changed TTL or two
        receivers with different TTLs still read the same buckets); default the TTL's."""
        width = width_ms if width_ms and width_ms > 0 else default_width(ttl_ms)
        current = now_ms // width
        older = range(current - 1, (now_ms - ttl_ms) // width - 1, -1)
        return cls(width, current, (current, *older, current + 1), (current + 2) * width + ttl_ms)

    def keys(self, keys: RedisKeys, id_hash: str) -> list[str]:
        """The bucket hashes of an id (its shard in each bucket), the written one first."""
        shard = id_hash[:3]
        return [keys.ids(self.width_ms, index, shard) for index in self.indexes]


def split(value: str) -> tuple[str, str | None]:
    """(watermark, rest after it) of a stored state value; rest ``None`` for a legacy one."""
    mark, space, rest = value.partition(" ")
    return mark, (rest if space else None)


def watermark_of(value: str) -> str:
    """The watermark part of a stored state value (the whole of a legacy one)."""
    return value.partition(" ")[0]


def decode(e164: str, value: str) -> StoredEvent | None:
    """The event a compact state stands for (``None`` for a legacy or unreadable value):
    ``eventId``, ``eventIdDerived``, action, event and receive times and expiry; the
    rest of the event is in the audit record."""
    mark, rest = split(value)
    if rest is None:
        return None
    parts = mark.split(":")
    offset, _, token = rest.partition(" ")
    try:
        action, event_ms = Action(parts[1]), int(parts[0])
        expires = int(parts[2]) if len(parts) > 2 else None
        received_ms = event_ms + int(offset, 36)
    except (IndexError, ValueError):
        return None
    if not token:
        event_id, derived = derive_id(e164, action, event_ms, expires), True
    else:
        event_id, derived = token[1:], token[0] == "d"
    return StoredEvent(
        eventId=event_id,
        eventIdDerived=derived,
        e164=e164,
        action=action,
        eventMs=event_ms,
        receivedMs=received_ms,
        expiresMs=expires,
    )


def read_event(e164: str, value: object, legacy_json: object) -> StoredEvent | None:
    """A number's latest event from its state value and legacy ``latest`` JSON (bytes, str
    or ``None`` each): the JSON when there is one, else the compact value decoded."""
    if legacy_json:
        return StoredEvent.model_validate_json(_text(legacy_json))
    return decode(e164, _text(value)) if value else None


def _base36(value: int) -> str:
    if value < 0:
        return "-" + _base36(-value)
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = _DIGITS[digit] + digits
        if value == 0:
            return digits


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_latest(
    client: aioredis.Redis, keys: RedisKeys, numbers: Sequence[str]
) -> list[StoredEvent | None]:
    """The latest event of each of ``numbers`` (E.164), in order, ``None`` for a number with
    none, read in one transaction (``read_event``: compact or legacy). Raises redis-py's
    errors (callers convert them)."""
    if not numbers:
        return []
    async with client.pipeline(transaction=True) as pipe:
        read_states = number_states(keys).queue_get(pipe, list(numbers))
        pipe.hmget(keys.latest, list(numbers))
        results = iter(await pipe.execute())
        found, legacy = read_states(results), next(results)
    return [
        read_event(number, state, event)
        for number, state, event in zip(numbers, found, legacy, strict=True)
    ]
