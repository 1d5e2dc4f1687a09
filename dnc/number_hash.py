"""A per-number HASH kept in small buckets, as ``dnc/lua/number_hash.lua`` keeps it.

A number's entry is the field ``number_slot(e164)[1]`` (its digits before the last four) of
the bucket ``<prefix><its last four digits>`` (``dnc.keys.number_slot``): 10,000 small
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

from dnc.keys import RedisKeys, bucket_suffixes, number_from_slot, number_slot

Reader = Callable[[Iterator[Any]], Any]
"""Takes the pipeline's results (an iterator, in queue order) and consumes its own."""


class NumberHash:
    """One bucketed per-number hash: buckets named ``prefix`` + four digits, ``legacy`` the
    flat hash written before them. Pure key arithmetic and command queueing: it raises
    nothing itself (the pipeline's ``execute`` raises Redis's errors)."""

    def __init__(
        self, prefix: str, legacy: str, later: Callable[[Any, Any], bool] | None = None
    ) -> None:
        self.prefix = prefix
        self.legacy = legacy
        self.later = later
        """Whether a legacy value replaces the bucket's (``later_state``), for a number in
        both places; ``None``: the bucket's always wins."""

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
        where a number has none, in its bucket or the legacy hash). The legacy hash is read
        first: an entry only moves from there to its bucket, so a pipeline that is not a
        transaction still sees an entry that moves between its reads."""
        if numbers:
            pipe.hmget(self.legacy, list(numbers))
        for number in numbers:
            pipe.hget(*self.slot(number))

        def read(results: Iterator[Any]) -> list[Any]:
            if not numbers:
                return []
            legacy = next(results)
            found = [next(results) for _ in numbers]
            return [self._pick(v, old) for v, old in zip(found, legacy, strict=True)]

        return read

    def _pick(self, value: Any, old: Any) -> Any:
        """A number's value from its bucket's ``value`` and the legacy hash's ``old``."""
        if old is None or (value is not None and not (self.later and self.later(old, value))):
            return value
        return old

    def queue_set(self, pipe: Any, values: Mapping[str, Any]) -> Reader:
        """Queue writing ``values`` (E.164 -> value) into their buckets and removing their
        legacy entries; the reader gives nothing."""
        grouped: dict[str, dict[str, Any]] = defaultdict(dict)
        for number, value in values.items():
            key, field = self.slot(number)
            grouped[key][field] = value
        for key, mapping in grouped.items():
            pipe.hset(key, mapping=mapping)
        if values:
            pipe.hdel(self.legacy, *values)
        commands = len(grouped) + (1 if values else 0)
        return lambda results: _skip(results, commands)

    def queue_delete(self, pipe: Any, numbers: Iterable[str]) -> Reader:
        """Queue removing ``numbers``' entries (bucket and legacy); the reader gives how many
        numbers had one."""
        wanted = list(dict.fromkeys(numbers))
        grouped: dict[str, list[str]] = defaultdict(list)
        for number in wanted:
            key, field = self.slot(number)
            grouped[key].append(field)
        for key, fields in grouped.items():
            pipe.hdel(key, *fields)
        if wanted:
            pipe.hdel(self.legacy, *wanted)
        commands = len(grouped) + (1 if wanted else 0)
        return lambda results: sum(int(n) for n in _take(results, commands))

    def queue_count(self, pipe: Any) -> Reader:
        """Queue counting the entries (every bucket's ``HLEN`` and the legacy one's)."""
        keys = [*self.bucket_keys(), self.legacy]
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
    return NumberHash(keys.state_prefix, keys.watermark, later_state)


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
    return NumberHash(keys.owned_prefix, keys.owned)
