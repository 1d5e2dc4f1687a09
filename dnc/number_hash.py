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

    def __init__(self, prefix: str, legacy: str) -> None:
        self.prefix = prefix
        self.legacy = legacy

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
        where a number has none, in its bucket or the legacy hash)."""
        for number in numbers:
            pipe.hget(*self.slot(number))
        if numbers:
            pipe.hmget(self.legacy, list(numbers))

        def read(results: Iterator[Any]) -> list[Any]:
            if not numbers:
                return []
            found = [next(results) for _ in numbers]
            legacy = next(results)
            return [v if v is not None else old for v, old in zip(found, legacy, strict=True)]

        return read

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
    """The numbers' states (``RedisKeys.state_prefix``, legacy ``RedisKeys.watermark``)."""
    return NumberHash(keys.state_prefix, keys.watermark)


def ledger(keys: RedisKeys) -> NumberHash:
    """The ownership ledger (``RedisKeys.owned_prefix``, legacy ``RedisKeys.owned``)."""
    return NumberHash(keys.owned_prefix, keys.owned)
