"""A per-number HASH kept in small buckets, as ``dnc/lua/number_hash.lua`` keeps it.

A number's entry is the field ``number_slot(e164)[1]`` (its digits before the last four) of
the bucket ``<prefix><its last four digits>`` (``dnc.number_slots.number_slot``): 10,000 small
hashes that Redis keeps as listpacks (about 35 bytes an entry where one flat hash costs
about 90). The flat hash written before buckets (E.164 -> value, the *legacy* key) is still
read while it exists; writing a number's entry removes its legacy one.

Commands are queued on a redis-py pipeline the caller executes (``queue_*``); each returns a
reader that takes the pipeline's results as an iterator, in the order they were queued, and
consumes exactly its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from dnc.keys import RedisKeys
from dnc.number_slots import bucket_suffixes, number_from_slot, number_slot

Reader = Callable[[Iterator[Any]], Any]
"""Takes the pipeline's results (an iterator, in queue order) and consumes its own."""


MAX_VALUE_BYTES = 64
"""A value longer than this goes to the long hash instead of its bucket: Redis keeps a hash
as a listpack only while every value is at most ``hash-max-listpack-value`` (64 bytes by
default), and one long value would turn its whole bucket into a plain hash for good. Equal
to ``NH_MAX_VALUE`` in ``dnc/lua/number_hash.lua``."""


class NumberHash:
    """One bucketed per-number hash: buckets named ``prefix`` + four digits, ``long`` the flat
    hash (E.164 -> value) of values over ``MAX_VALUE_BYTES``, ``legacy`` the flat hash written
    before buckets. A number has at most one of a bucket entry and a long entry. Pure key
    arithmetic and command queueing: it raises nothing itself (the pipeline's ``execute``
    raises Redis's errors)."""

    def __init__(
        self,
        prefix: str,
        legacy: str,
        long: str,
        later: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        self.prefix = prefix
        self.legacy = legacy
        self.long = long
        self.later = later
        """Whether a legacy value replaces the current one (``later_state``), for a number
        in both places; ``None``: the current one always wins."""

    def slot(self, e164: str) -> tuple[str, str]:
        """(bucket key, field) of ``e164``."""
        suffix, field = number_slot(e164)
        return self.prefix + suffix, field

    def bucket_keys(self) -> list[str]:
        """Every bucket's key, ``prefix`` + ``"0000"`` to ``"9999"``."""
        return [self.prefix + suffix for suffix in bucket_suffixes()]

    def number(self, bucket: str, field: str | bytes) -> str:
        """The E.164 number of ``field`` in ``bucket`` (a key ``bucket_keys`` gave)."""
        text = field.decode() if isinstance(field, bytes) else field
        return number_from_slot(bucket[len(self.prefix) :], text)

    def queue_get(self, pipe: Any, numbers: Sequence[str]) -> Reader:
        """Queue a read of ``numbers``' values; the reader gives them in order (``None``
        where a number has none). The legacy hash is read first: an entry only moves from
        there, so a pipeline that is not a transaction still sees an entry that moves between
        its reads. (An entry moving between the long hash and its bucket, as its value's
        length changes, is written in one script or transaction: read those in one too.)"""
        wanted = list(numbers)
        if wanted:
            pipe.hmget(self.legacy, wanted)
            pipe.hmget(self.long, wanted)
        for number in wanted:
            pipe.hget(*self.slot(number))

        def read(results: Iterator[Any]) -> list[Any]:
            if not wanted:
                return []
            legacy, long = next(results), next(results)
            found = [next(results) for _ in wanted]
            current = [v if v is not None else x for v, x in zip(found, long, strict=True)]
            return [self._pick(v, old) for v, old in zip(current, legacy, strict=True)]

        return read

    def _pick(self, value: Any, old: Any) -> Any:
        """A number's value from its current ``value`` and the legacy hash's ``old``."""
        if old is None or (value is not None and not (self.later and self.later(old, value))):
            return value
        return old

    def queue_set(self, pipe: Any, values: Mapping[str, Any]) -> Reader:
        """Queue writing ``values`` (E.164 -> value: ``str`` or ``bytes``) into their buckets
        (over ``MAX_VALUE_BYTES``: the long hash) and removing their other entries; the reader
        gives nothing."""
        short: dict[str, dict[str, Any]] = defaultdict(dict)
        long: dict[str, Any] = {}
        for number, value in values.items():
            size = len(value.encode() if isinstance(value, str) else value)
            if size > MAX_VALUE_BYTES:
                long[number] = value
            else:
                key, field = self.slot(number)
                short[key][field] = value
        commands = 0
        for key, mapping in short.items():
            pipe.hset(key, mapping=mapping)
            commands += 1
        if long:
            pipe.hset(self.long, mapping=long)
            commands += 1 + self._queue_bucket_delete(pipe, long)
        short_numbers = [n for n in values if n not in long]
        if short_numbers:
            pipe.hdel(self.long, *short_numbers)
            commands += 1
        if values:
            pipe.hdel(self.legacy, *values)
            commands += 1
        return lambda results: _skip(results, commands)

    def _queue_bucket_delete(self, pipe: Any, numbers: Iterable[str]) -> int:
        """Queue ``HDEL`` of ``numbers``' bucket fields; how many commands."""
        grouped: dict[str, list[str]] = defaultdict(list)
        for number in numbers:
            key, field = self.slot(number)
            grouped[key].append(field)
        for key, fields in grouped.items():
            pipe.hdel(key, *fields)
        return len(grouped)

    def queue_delete(self, pipe: Any, numbers: Iterable[str]) -> Reader:
        """Queue removing ``numbers``' entries (bucket, long and legacy); the reader gives how
        many entries went."""
        wanted = list(dict.fromkeys(numbers))
        commands = self._queue_bucket_delete(pipe, wanted)
        if wanted:
            pipe.hdel(self.long, *wanted)
            pipe.hdel(self.legacy, *wanted)
            commands += 2
        return lambda results: sum(int(n) for n in _take(results, commands))

    def queue_count(self, pipe: Any) -> Reader:
        """Queue counting the entries (every bucket's ``HLEN``, the long and legacy ones')."""
        keys = [*self.bucket_keys(), self.long, self.legacy]
        for key in keys:
            pipe.hlen(key)
        return lambda results: sum(int(n) for n in _take(results, len(keys)))


def _take(results: Iterator[Any], count: int) -> list[Any]:
    return [next(results) for _ in range(count)]


def _skip(results: Iterator[Any], count: int) -> None:
    _take(results, count)


def states(keys: RedisKeys) -> NumberHash:
    """The numbers' states (``RedisKeys.state_prefix``, legacy ``RedisKeys.watermark``); a
    number in both reads as the later state (``later_state``)."""
    return NumberHash(keys.state_prefix, keys.watermark, keys.state_long, later_state)


_WATERMARK = re.compile(rb"^(\d+):([A-Za-z]+):?(\d*)")


def later_state(a: bytes | str, b: bytes | str) -> bool:
    """Whether state value ``a`` replaces state value ``b`` (``dnc.state``: their watermarks,
    ``"<event ms>:<action>[:<expiry ms>]"``): the later event time; on a tie an opt-out over
    an opt-in, and an opt-out that protects for longer (no expiry: for ever) over one that
    lapses earlier. A value without a readable watermark loses. The same rule as
    ``later_state`` in ``dnc/lua/number_hash.lua``."""
    found_a = _WATERMARK.match(a.encode() if isinstance(a, str) else a)
    found_b = _WATERMARK.match(b.encode() if isinstance(b, str) else b)
    if found_a is None or found_b is None:
        return found_b is None and found_a is not None
    a_ms, a_action, a_expires = found_a.groups()
    b_ms, b_action, b_expires = found_b.groups()
    if int(a_ms) != int(b_ms):
        return int(a_ms) > int(b_ms)
    if a_action != b"optOut":
        return False
    if b_action != b"optOut":
        return True
    forever = float("inf")
    return (int(a_expires) if a_expires else forever) > (int(b_expires) if b_expires else forever)


def ledger(keys: RedisKeys) -> NumberHash:
    """The ownership ledger (``RedisKeys.owned_prefix``, legacy ``RedisKeys.owned``)."""
    return NumberHash(keys.owned_prefix, keys.owned, keys.owned_long)
