"""The Redis event store: atomic Lua writes of events, and the rejected stream.

Layout and rules (see ``dnc.keys``, ``dnc.state`` and ``dnc/lua/record_events.lua``): per
number one compact state (its watermark, receive time and event id; the rest of the event is
in the audit stream); a pending ZSET of numbers whose latest state is not yet applied to
CXone; an audit stream of every queued or superseded event; a rejected stream of every refused
request. Latest event time wins; on a tie opt-out wins, and between two opt-outs the longer
protection (no expiry, else the later expiry); otherwise the first one stands. A repeated eventId
changes nothing: a caller's id is kept in time-bucketed idempotency hashes for the TTL; a
derived id needs no key (its event's retry is the number's state: ``duplicate``, or
``superseded`` once a newer event replaced it).

One script call records a batch of events, each under those rules, in order; concurrent
``record`` calls are grouped into one call per event-loop turn (``dnc.coalescer``), so the
receiver pays one Redis round trip per batch instead of one per event.

A group of events that stand for one request (an opt-out and its copies under the other E.164
forms of its subscriber, issue 11 rule 3: ``AcceptedEvent.events``) is recorded by
``record_group`` / ``record_groups`` in one script call, never split across two: all of its
events are recorded or none (a Redis failure fails the whole call; an idempotency key of the
group used for another event refuses the whole group as ``id_conflict``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from dnc.clamps import ClampMemory
from dnc.coalescer import Coalescer
from dnc.errors import StoreUnavailable
from dnc.events import Action, StoredEvent
from dnc.keys import RedisKeys
from dnc.recording import Group, RecordStatus, StoreLimits
from dnc.redis_client import open_redis
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.rejection_log import RejectionLog
from dnc.state import IdBuckets, default_width, id_hashes, needs_id_index, state_tail

__all__ = [
    "REDIS_FAILURES",
    "EventStore",
    "Group",
    "RecordStatus",
    "StoreLimits",
    "convert_error",
    "load_lua",
    "open_redis",
]


def load_lua(name: str, *preludes: str) -> str:
    """The source of ``dnc/lua/<name>``, after the sources of ``preludes`` (shared local
    functions, such as ``number_hash.lua``), in order."""
    folder = resources.files("dnc").joinpath("lua")
    return "\n".join(folder.joinpath(n).read_text(encoding="utf-8") for n in (*preludes, name))


class EventStore(RejectionLog):
    """Writes events and rejections to Redis. All methods raise ``StoreUnavailable`` when Redis
    cannot be reached (retry later) and ``StoreError`` for any other Redis failure.
    ``clock`` (UTC seconds) picks the idempotency buckets (``dnc.state.IdBuckets``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: RedisKeys,
        limits: StoreLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, keys, limits)
        self._clock = clock
        self._clamps = ClampMemory(client, keys, limits.idempotency_ttl_ms)
        self._ids_width_ms: int | None = None  # RedisKeys.ids_width, read on first record
        self._record_script = client.register_script(
            load_lua("record_events.lua", "number_hash.lua")
        )
        self._coalescer: Coalescer[Group, list[RecordStatus]] = Coalescer(
            self._record_batch, limits.max_batch, size=len
        )

    async def record(self, event: StoredEvent) -> RecordStatus:
        """Record ``event`` atomically and say what it did; concurrent calls share one round
        trip. Returns only once Redis has run the script.

        An event recorded at its receipt time because its time was later (``sentEventMs``)
        is recorded at a different time by each delivery; a retry of it is recognised by
        ``clamped`` (the first delivery's time) and answered ``duplicate``."""
        [status] = await self.record_group([event])
        return status

    async def record_group(self, events: Sequence[StoredEvent]) -> list[RecordStatus]:
        """Record ``events`` (one request's: an opt-out and its alias copies) in one script
        call, all or none, and say what each did (same order); concurrent calls share one
        round trip, as ``record``. When a key of the group was used for another event, every
        event of the group is ``id_conflict`` and nothing is written. Retries of clamped
        events are ``duplicate`` as in ``record``."""
        group = tuple(events)
        if not group:
            return []
        [statuses] = await self._clamps.finish_groups(
            [group], [await self._submit(group)], self._submit_groups
        )
        return statuses

    async def record_many(self, events: Sequence[StoredEvent]) -> list[RecordStatus]:
        """Record ``events`` in order, ``max_batch`` per script call. Each call is atomic;
        the whole sequence is not. Used by bulk import. Retries of clamped events are
        ``duplicate`` as in ``record``."""
        statuses = await self.record_groups([(event,) for event in events])
        return [status for [status] in statuses]

    async def record_groups(
        self, groups: Sequence[Sequence[StoredEvent]]
    ) -> list[list[RecordStatus]]:
        """Record ``groups`` in order (each as ``record_group``: in one script call, all or
        none), about ``max_batch`` events per script call, never splitting a group; one list
        of statuses per group. Used by bulk import: the whole sequence is not atomic."""
        batch = [tuple(group) for group in groups]
        return await self._clamps.finish_groups(
            batch, await self._record_batches(batch), self._record_batches
        )

    async def _submit_groups(self, groups: Sequence[Group]) -> list[list[RecordStatus]]:
        """``groups`` through the coalescer, as concurrent ``record_group`` calls would."""
        return list(await asyncio.gather(*(self._submit(group) for group in groups)))

    async def _submit(self, group: Group) -> list[RecordStatus]:
        """``group`` through the coalescer (one script call shared with concurrent ones); the
        clamps of what it recorded are remembered at once."""
        statuses = await self._coalescer.submit(group)
        await self._clamps.remember([group], [statuses])
        return statuses

    async def _record_batches(self, groups: Sequence[Group]) -> list[list[RecordStatus]]:
        """``groups`` in script calls of at most ``max_batch`` events, a group never split;
        the clamps each call recorded are remembered before the next call (a later call that
        fails leaves the earlier ones' retries recognisable: ``duplicate``, not 409)."""
        statuses: list[list[RecordStatus]] = []
        batch: list[Group] = []
        size = 0
        for group in groups:
            if batch and size + len(group) > self._limits.max_batch:
                statuses.extend(await self._record_chunk(batch))
                batch, size = [], 0
            batch.append(group)
            size += len(group)
        if batch:
            statuses.extend(await self._record_chunk(batch))
        return statuses

    async def _record_chunk(self, groups: list[Group]) -> list[list[RecordStatus]]:
        statuses = await self._record_batch(groups)
        await self._clamps.remember(groups, statuses)
        return statuses

    def _script_input(
        self, events: Sequence[StoredEvent], group_sizes: Sequence[int] | None = None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of one ``record_events.lua`` call for ``events``, which are
        consecutive groups of ``group_sizes`` events (default: each event alone)."""
        sizes = [1] * len(events) if group_sizes is None else list(group_sizes)
        if sum(sizes) != len(events) or min(sizes, default=1) < 1:
            raise ValueError("group sizes do not add up to the events")
        followers = [n for size in sizes for n in (size - 1, *[0] * (size - 1))]
        keys = self._keys
        confirm = self._limits.wait_replicas > 0
        key_names = [
            keys.watermark,
            keys.latest,
            keys.pending,
            keys.audit,
            keys.replication_touch,
            keys.sync_wake,
        ]
        buckets = IdBuckets.at(
            int(self._clock() * 1000), self._limits.idempotency_ttl_ms, self._ids_width_ms
        )
        args: list[Any] = [buckets.expire_at_ms, "1" if confirm else "0"]
        for event, following in zip(events, followers, strict=True):
            id_hash = fingerprint_hash = "-"
            id_keys: list[str] = []
            if needs_id_index(event):
                id_hash, fingerprint_hash = id_hashes(event)
                id_keys = [*buckets.keys(keys, id_hash), keys.event_id(event.eventId)]
                key_names.extend(id_keys)
            expires = event.expiresMs if event.action is Action.OPT_OUT else None
            header = (
                f"{event.e164} {event.eventMs} {event.receivedMs} {event.action.value} "
                f"{'-' if expires is None else expires} {following} {len(id_keys)} {id_hash} "
                f"{fingerprint_hash} {state_tail(event)}"
            )
            args += [header.encode(), event.model_dump_json(exclude_none=True).encode()]
        return key_names, args

    async def _load_ids_width(self) -> int:
        """The namespace's idempotency bucket width (ms): ``RedisKeys.ids_width``, set from
        this store's TTL when no store set it before. Raises ``StoreUnavailable`` /
        ``StoreError``."""
        proposed = default_width(self._limits.idempotency_ttl_ms)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._keys.ids_width, proposed, nx=True)
                pipe.get(self._keys.ids_width)
                _, stored = await pipe.execute()
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        return int(text) if text.isdigit() and int(text) > 0 else proposed

    async def _record_batch(self, groups: Sequence[Group]) -> list[list[RecordStatus]]:
        """One script call for ``groups``; their statuses, group by group."""
        events = [event for group in groups for event in group]
        if self._ids_width_ms is None:
            self._ids_width_ms = await self._load_ids_width()
        key_names, args = self._script_input(events, [len(group) for group in groups])
        try:
            if self._limits.wait_replicas > 0:
                results = await self._record_replicated(key_names, args)
            else:
                results = await self._record_script(keys=key_names, args=args)
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc
        flat = iter([_status(result) for result in results])
        return [[next(flat) for _ in group] for group in groups]

    async def _record_replicated(self, key_names: list[str], args: list[Any]) -> Any:
        """Run the script and Redis ``WAIT`` on one connection (``WAIT`` counts the replicas
        holding that connection's writes), or raise ``StoreUnavailable`` when fewer than
        ``wait_replicas`` confirm in time: the caller is told to retry (the events stay
        recorded on the primary; the retry is a duplicate, confirmed only once a replica
        holds the original), so an answered event survives a failover, whatever its status.
        Asynchronous replication alone can lose the last writes a dying primary
        acknowledged. A call that wrote nothing else increments ``replication_touch`` so
        that ``WAIT`` has a write to wait for on Redis >= 7.2 and Valkey (see the script)."""
        wanted = self._limits.wait_replicas
        async with self._client.pipeline(transaction=False) as pipe:
            await self._record_script(keys=key_names, args=args, client=pipe)
            pipe.wait(wanted, self._limits.wait_timeout_ms)
            results, confirmed = await pipe.execute()
        if int(confirmed) < wanted:
            raise StoreUnavailable(f"{confirmed} of {wanted} replicas confirmed the write")
        return results


def _status(result: object) -> RecordStatus:
    text = result.decode() if isinstance(result, bytes) else str(result)
    return RecordStatus(text)
