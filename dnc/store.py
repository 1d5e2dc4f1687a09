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
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from dnc.coalescer import Coalescer
from dnc.errors import StoreError, StoreUnavailable
from dnc.events import Action, StoredEvent
from dnc.keys import RedisKeys
from dnc.rejection_reasons import rejection_reasons
from dnc.settings import RedisSettings
from dnc.state import IdBuckets, default_width, id_hashes, needs_id_index, state_tail

Group = tuple[StoredEvent, ...]
"""Events recorded together, all or none (one request's opt-out and its alias copies)."""

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    OSError,
    RuntimeError,
)

REDIS_FAILURES = (redis_errors.RedisError, OSError, RuntimeError)
"""What a Redis call raises when Redis fails: redis-py's errors, and, on a pooled connection
the peer reset (a dying primary), the event loop's own ``OSError`` or ``RuntimeError``
(uvloop: "unable to perform operation on <TCPTransport closed=True>; the handler is
closed"), which redis-py passes through. All become ``StoreError``/``StoreUnavailable``."""


class RecordStatus(StrEnum):
    """What recording one event did."""

    QUEUED = "queued"
    """The event is now the latest for its number and the number is pending."""
    SUPERSEDED = "superseded"
    """A newer (or equal-time, at least as compliance-safe) event is already known; kept for
    audit only."""
    DUPLICATE = "duplicate"
    """This eventId was already recorded for the same event; nothing changed. (An id derived
    from the event has no key, ``dnc.state``: its retry is ``duplicate`` while the event is
    still the number's latest, ``superseded`` once a newer one replaced it.)"""
    ID_CONFLICT = "id_conflict"
    """This eventId was already used for a different event; nothing changed."""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Retention limits: idempotency TTL in ms; the approximate cap, in entries, of the one
    capped stream (unauthenticated refusals). The audit, rejected and applications streams are
    not capped: only the archive (``dnc.audit.archive``) trims them, after copying."""

    idempotency_ttl_ms: int = 7 * 86_400_000
    unauthenticated_max_len: int = 100_000
    max_batch: int = 128
    """Most events recorded by one script call (bounds how long one call holds Redis); a
    group that must be recorded whole is never split, so only a group larger than this makes
    a call hold more."""
    wait_replicas: int = 0
    """Replicas that must confirm each write (Redis ``WAIT``) before it counts as recorded;
    0: the primary's word is enough."""
    wait_timeout_ms: int = 1_000
    """How long to wait for those confirmations, ms."""

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> StoreLimits:
        """Limits as configured by ``DNC_REDIS_*``."""
        return cls(
            idempotency_ttl_ms=settings.idempotency_ttl_s * 1000,
            unauthenticated_max_len=settings.rejected_stream_max_len,
            wait_replicas=settings.wait_replicas,
            wait_timeout_ms=settings.wait_timeout_ms,
        )


def open_redis(settings: RedisSettings) -> aioredis.Redis:
    """An asyncio Redis client with a bounded pool; the caller closes it (``aclose()``).

    With ``settings.sentinels``, the client asks Sentinel for the current primary of
    ``settings.sentinel_master`` and follows it across failovers (a command in flight during
    one fails as ``StoreUnavailable``, so the receiver answers 503 and the caller retries).
    """
    if settings.sentinels:
        return _sentinel_client(settings)
    return aioredis.Redis.from_url(
        settings.url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        max_connections=settings.max_connections,
        health_check_interval=30,
    )


def _sentinel_client(settings: RedisSettings) -> aioredis.Redis:
    """A client of the primary Sentinel names for ``settings.sentinel_master``.

    The URL is read as redis-py's ``from_url`` reads it (user, password, database, query
    options such as ``ssl_ca_certs``/``ssl_cert_reqs``) except for its host and port, which
    Sentinel supplies; ``rediss://`` makes every connection to the primary TLS. The sentinels
    get ``sentinel_username``/``sentinel_password`` and TLS as ``sentinel_uses_tls()`` says,
    with the URL's ``ssl_*`` options."""
    options: dict[str, Any] = dict(parse_url(settings.url))
    primary_tls = options.pop("connection_class", None) is SSLConnection
    for address_part in ("host", "port", "path"):
        options.pop(address_part, None)
    tls_options = {name: value for name, value in options.items() if name.startswith("ssl_")}
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        "username": settings.sentinel_username or None,
        "password": settings.sentinel_password.get_secret_value() or None,
    }
    if settings.sentinel_uses_tls():
        sentinel_kwargs |= {"ssl": True, **tls_options}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves __init__ untyped
        settings.sentinel_addresses(), sentinel_kwargs=sentinel_kwargs
    )
    primary_kwargs: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "health_check_interval": 30,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
    }
    primary_kwargs |= options  # the URL's query wins, as with from_url
    primary_kwargs["connection_class"] = (
        SentinelManagedSSLConnection if primary_tls else SentinelManagedConnection
    )
    client: _SentinelRedis = sentinel.master_for(
        settings.sentinel_master, redis_class=_SentinelRedis, **primary_kwargs
    )
    client.sentinel_manager = sentinel
    return client


class _SentinelRedis(aioredis.Redis):
    """A client of the Sentinel-found primary that also closes its Sentinel connections."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


def load_lua(name: str, *preludes: str) -> str:
    """The source of ``dnc/lua/<name>``, after the sources of ``preludes`` (shared local
    functions, such as ``number_hash.lua``), in order."""
    folder = resources.files("dnc").joinpath("lua")
    return "\n".join(folder.joinpath(n).read_text(encoding="utf-8") for n in (*preludes, name))


class EventStore:
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
        self._client = client
        self._keys = keys
        self._limits = limits
        self._clock = clock
        self._ids_width_ms: int | None = None  # RedisKeys.ids_width, read on first record
        self._record_script = client.register_script(
            load_lua("record_events.lua", "number_hash.lua")
        )
        self._coalescer: Coalescer[Group, list[RecordStatus]] = Coalescer(
            self._record_batch, limits.max_batch, size=len
        )

    @property
    def keys(self) -> RedisKeys:
        """The key names this store writes."""
        return self._keys

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
        [statuses] = await self._finish_groups(
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
        return await self._finish_groups(
            batch, await self._record_batches(batch), self._record_batches
        )

    async def _submit_groups(self, groups: Sequence[Group]) -> list[list[RecordStatus]]:
        """``groups`` through the coalescer, as concurrent ``record_group`` calls would."""
        return list(await asyncio.gather(*(self._submit(group) for group in groups)))

    async def _submit(self, group: Group) -> list[RecordStatus]:
        """``group`` through the coalescer (one script call shared with concurrent ones); the
        clamps of what it recorded are remembered at once."""
        statuses = await self._coalescer.submit(group)
        await self._remember_clamps(_clamped([group], [statuses]))
        return statuses

    async def _finish_groups(
        self,
        groups: list[Group],
        statuses: list[list[RecordStatus]],
        again: Callable[[Sequence[Group]], Awaitable[list[list[RecordStatus]]]],
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
        await self._remember_clamps(_clamped(groups, statuses))
        return statuses

    async def _remember_clamps(self, events: Sequence[StoredEvent]) -> None:
        """Keep, per idempotency key, the receipt time each clamped event was just recorded
        at (``RedisKeys.clamped``), once the event holds its key: a failed first delivery or
        a key reused for another event leaves nothing a retry could be mistaken by. Best
        effort: the events are recorded already; without it a retry is answered 409."""
        if not events:
            return
        with contextlib.suppress(StoreError):
            await self._set_clamps(events)

    async def _set_clamps(self, events: Sequence[StoredEvent]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for event in events:
                    value = f"{event.e164}|{event.action.value}|{event.sentEventMs}|{event.eventMs}"
                    pipe.set(
                        self._keys.clamped(event.eventId),
                        value,
                        nx=True,
                        px=self._limits.idempotency_ttl_ms,
                    )
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


def _status(result: object) -> RecordStatus:
    text = result.decode() if isinstance(result, bytes) else str(result)
    return RecordStatus(text)


def convert_error(exc: BaseException) -> StoreError:
    """Our error for a failed Redis call (``REDIS_FAILURES``): ``StoreUnavailable`` when Redis
    cannot be reached (connection errors, a reset transport), else ``StoreError``."""
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(f"redis unavailable: {type(exc).__name__}")
    return StoreError(f"redis error: {type(exc).__name__}")


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
