"""Redis memory per pending and per settled number, through the real recording, archive and
settle paths; prints one JSON object.

    .venv/bin/python -m bench.memory [--numbers 1000000] [--seed 7] [--concurrency 4]
        [--id-form short|uuid]

1. Starts a throwaway ``redis-server`` on a free 127.0.0.1 port (no persistence).
2. Records N distinct numbers through ``EventStore.record_many`` (``record_events.lua``, the
   receiver's script, 128 events per call): E.164 US numbers, event times 1 s to 7 days ago,
   80 % opt-outs (5 % of those with an expiry), 30 % with a client ``eventId`` (the receiver
   bench's form, ``bench-<serial>-<8 hex>``), 25 % with small metadata, ``sender`` and
   ``region`` as intake sets them; the others get intake's derived key.
3. Archives the streams into a throwaway SQLite audit store with the real ``Archiver`` (which
   trims what it copied), as the archive flow does.
4. Settles half the numbers as the sync does: ``PendingQueue.claim`` (1,000 a call); opt-ins
   held as ``not_owned`` (the ledger names none of them), opt-outs answered as applied
   (record id: the number as the DNC group keys it) and recorded in the ownership ledger
   (``{ns}:owned:*``, ``ownership_update`` + ``OwnershipLedger.apply`` as ``record_ownership``
   does, one flow run UUID); ``acknowledge`` with an ``Application`` per number (appended to
   the applications stream by ``settle.lua``), then archives again (that stream is trimmed
   too).
5. Deletes the idempotency keys (``{ns}:event-id:*``, ``{ns}:ids:*``, ``{ns}:clamped:*``), as
   their TTL (``DNC_REDIS_IDEMPOTENCY_TTL_S``, 7 days) eventually does.

``INFO memory`` ``used_memory`` is read before and after each step. With ``base`` the empty
server: ``pending_bytes`` = (after archive - base) / N (every number pending, audit trimmed);
after settling half, (after - base) = N/2 * pending + N/2 * settled, solved for
``settled_bytes``. ``..._after_idempotency_ttl`` subtract the idempotency keys' share (the
same per number, pending or settled). ``recorded_unarchived_bytes`` is step 2 alone (the
audit stream still holds every event). ``key_types``: ``MEMORY USAGE`` (every element, not
sampled) per key family, after each step, per number (``{ns}:owned:*`` per number of all N:
divide by the settled opt-outs' share, ~40 %, for an entry; ``{ns}:state:*`` is every
number's state, in 10,000 buckets). ``ledger``: its entries, ``MEMORY USAGE`` per entry,
the buckets' encodings and the mean stored value length.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from dnc.applications import Application
from dnc.audit.archive import Archiver
from dnc.audit.database import open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.streams import streams
from dnc.cxone.dnc_groups import group_phone
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.number_hash import ledger
from dnc.ownership import OwnershipLedger, not_owned_outcome, ownership_update
from dnc.pending import PendingQueue
from dnc.store import EventStore, StoreLimits
from dnc.target import ChangeOutcome, OutcomeKind
from reliability.processes import run_main
from reliability.services import Services

AREAS = ("202", "212", "213", "305", "312", "415", "512", "617", "702", "718", "801", "917")
SKILLS = ("inbound-sales", "collections", "support", "retention")
WEEK_MS = 7 * 86_400_000
ID_PATTERNS = ("event-id:*", "ids:*", "clamped:*")


def make_events(count: int, seed: int, now_ms: int, id_form: str = "short") -> list[StoredEvent]:
    """``count`` events of distinct US numbers, as intake would build them; a caller's id is
    ``bench-<serial>-<8 hex>`` (``id_form`` ``short``) or ``contact-<UUID>`` (``uuid``: a
    state over 64 bytes, kept in the long-state hash)."""
    rng = random.Random(seed)
    locals_ = rng.sample(range(2_000_000, 10_000_000), count // len(AREAS) + 1)
    events = []
    for i in range(count):
        e164 = f"+1{AREAS[i % len(AREAS)]}{locals_[i // len(AREAS)]:07d}"
        action = Action.OPT_OUT if rng.random() < 0.8 else Action.OPT_IN
        event_ms = now_ms - rng.randrange(1_000, WEEK_MS)
        expires = None
        if action is Action.OPT_OUT and rng.random() < 0.05:
            expires = now_ms + rng.randrange(86_400_000, 365 * 86_400_000)
        client_id = None
        if rng.random() < 0.3:
            if id_form == "uuid":
                client_id = f"contact-{uuid.UUID(int=rng.getrandbits(128))}"
            else:
                client_id = f"bench-{i}-{rng.getrandbits(32):08x}"
        metadata = None
        if rng.random() < 0.25:
            metadata = {"contactId": str(rng.randrange(10**9)), "skill": rng.choice(SKILLS)}
        fingerprint = f"{e164}|{action.value}|{event_ms}"
        if expires is not None:
            fingerprint += f"|{expires}"
        events.append(
            StoredEvent(
                eventId=client_id or derive_event_id(fingerprint),
                eventIdDerived=client_id is None,
                e164=e164,
                action=action,
                eventMs=event_ms,
                receivedMs=now_ms + i // 50,
                region="US",
                metadata=metadata,
                expiresMs=expires,
                sender="bearer-0",
            )
        )
    return events


def used_memory(client: redis.Redis) -> int:
    """``INFO memory`` ``used_memory`` in bytes."""
    return int(client.info("memory")["used_memory"])


def family(key: bytes) -> str:
    """``{dnc}:event-id:d-3f..`` -> ``{dnc}:event-id:*``; ``{dnc}:pending`` stays."""
    parts = key.decode(errors="replace").split(":", 2)
    return ":".join(parts[:2]) + (":*" if len(parts) > 2 else "")


def key_types(client: redis.Redis, count: int, sample: int = 2_000) -> dict[str, Any]:
    """Per key family: keys, Redis type, and ``MEMORY USAGE`` bytes per number (families of
    many keys: the mean of the first ``sample`` keys times their count)."""
    found: dict[str, list[bytes]] = {}
    totals: Counter[str] = Counter()
    for key in client.scan_iter(count=10_000):
        name = family(key)
        totals[name] += 1
        if len(found.setdefault(name, [])) < sample:
            found[name].append(key)
    out: dict[str, Any] = {}
    for name, keys in sorted(found.items()):
        usage = [int(client.memory_usage(k, samples=0) or 0) for k in keys]
        total = sum(usage) / len(usage) * totals[name]
        out[name] = {
            "keys": totals[name],
            "type": client.type(keys[0]).decode(),  # type: ignore[union-attr]
            "bytes_per_number": round(total / count, 1),
        }
    return out


async def record(store: EventStore, events: list[StoredEvent], concurrency: int) -> Counter[str]:
    """Record ``events`` in ``concurrency`` parallel ``record_many`` streams."""
    statuses: Counter[str] = Counter()
    step = 20_000
    for start in range(0, len(events), step):
        chunk = events[start : start + step]
        parts = [chunk[i::concurrency] for i in range(concurrency)]
        for found in await asyncio.gather(*(store.record_many(p) for p in parts)):
            statuses.update(s.value for s in found)
    return statuses


async def archive(client: aioredis.Redis, keys: RedisKeys, folder: Path) -> dict[str, Any]:
    """Copy and trim every stream into the SQLite store in ``folder`` (the archive flow)."""
    engine = open_engine(f"sqlite:///{folder / 'audit.sqlite3'}")
    try:
        await asyncio.to_thread(upgrade, engine)
        archiver = Archiver(client, engine, streams(keys, normaliser("US")), lease_ttl_s=600)
        started = time.perf_counter()
        report = await archiver.run(budget_s=3_600)
        return {"archived": report.total, "drained": report.drained,
                "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    finally:
        engine.dispose()


async def settle(client: aioredis.Redis, keys: RedisKeys, count: int, run_id: str) -> int:
    """Claim and settle the ``count`` oldest pending numbers as the sync's push does
    (``flows.sync_push``): opt-ins with no record of ours are held as ``not_owned`` (none
    is ours here), opt-outs are answered as applied (record id: the number as the DNC group
    keys it) and recorded in the ownership ledger (``ownership_update`` and
    ``OwnershipLedger.apply``, what ``record_ownership`` runs, by flow run ``run_id``), then
    ``acknowledge`` with an ``Application`` per number."""
    queue = PendingQueue(client, keys)
    ledger = OwnershipLedger(client, keys)
    token = "bench-memory/1/once"  # noqa: S105  # a lease token, not a secret
    if not await queue.acquire_lease(token, 3_600_000):
        raise RuntimeError("lease not granted")
    settled = 0
    while settled < count:
        claims = await queue.claim(token, min(1_000, count - settled))
        if not claims:
            break
        opt_ins = [c.e164 for c in claims if c.event.action is Action.OPT_IN]
        removable = await ledger.removable(opt_ins)
        held = {n: not_owned_outcome(n) for n in opt_ins if n not in removable}
        send = [c for c in claims if c.e164 not in held]
        earlier = await ledger.adds_in_flight(
            [c.e164 for c in send if c.event.action is Action.OPT_OUT]
        )
        sent = [
            ChangeOutcome(
                c.e164,
                OutcomeKind.APPLIED,
                http_status=200,
                record_id=group_phone(c.e164, "auto"),
            )
            for c in send
        ]
        now_ms = int(time.time() * 1000)
        changes = [c.change() for c in send]
        await ledger.apply(ownership_update(changes, sent, earlier, run_id, now_ms))
        outcomes = held | {o.e164: o for o in sent}
        applications = {
            c.e164: Application(now_ms, "dnc-groups", run_id, outcomes[c.e164]) for c in claims
        }
        settled += sum(await queue.acknowledge(claims, applications))
    await queue.release_lease(token)
    return settled


def ledger_entries(client: redis.Redis, keys: RedisKeys) -> dict[str, Any]:
    """The ownership ledger (its buckets, ``RedisKeys.owned_prefix``): entries, ``MEMORY
    USAGE`` per entry, the buckets' encodings and the mean stored value length."""
    buckets = ledger(keys).bucket_keys()
    pipe = client.pipeline(transaction=False)
    for key in buckets:
        pipe.hlen(key)
        pipe.memory_usage(key, samples=0)
        pipe.object("encoding", key)
    found = pipe.execute()
    sizes, usage = found[0::3], found[1::3]
    entries = sum(int(n) for n in sizes)
    if not entries:
        return {"entries": 0}
    encodings = Counter(e.decode() for e in found[2::3] if e is not None)
    values = [v for key in buckets[:50] for v in client.hvals(key)]
    lengths = [len(v) for v in values]
    return {
        "entries": entries,
        "buckets": sum(1 for n in sizes if n),
        "encodings": dict(encodings),
        "bytes_per_entry": round(sum(int(u or 0) for u in usage) / entries, 1),
        "value_chars_mean": round(sum(lengths) / max(1, len(lengths)), 1),
        "value_sample": _text(values[0]) if values else "",
    }


def drop_idempotency(client: redis.Redis, keys: RedisKeys) -> int:
    """Delete every idempotency key (what their TTL does); how many."""
    dropped = 0
    for pattern in ID_PATTERNS:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{keys.tag}:{pattern}", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                dropped += int(client.unlink(*batch))
                batch = []
        if batch:
            dropped += int(client.unlink(*batch))
    return dropped


async def measure(services: Services, args: argparse.Namespace) -> dict[str, Any]:
    services.start_redis()
    folder = services.tmp
    sync = services.redis(decode_responses=False, socket_timeout=600)
    client = aioredis.Redis.from_url(services.redis_url, socket_timeout=600)
    keys, n = RedisKeys("dnc"), args.numbers
    store = EventStore(client, keys, StoreLimits())
    events = make_events(n, args.seed, int(time.time() * 1000), args.id_form)
    base = used_memory(sync)
    started = time.perf_counter()
    statuses = await record(store, events, args.concurrency)
    record_s = time.perf_counter() - started
    del events
    mem = {"recorded": used_memory(sync) - base}
    types = {"recorded": key_types(sync, n)}
    first = await archive(client, keys, folder)
    mem["archived"] = used_memory(sync) - base
    types["archived"] = key_types(sync, n)
    run_id = str(uuid.UUID(int=random.Random(args.seed).getrandbits(128), version=4))
    settled = await settle(client, keys, n // 2, run_id)
    second = await archive(client, keys, folder)
    mem["settled_half"] = used_memory(sync) - base
    types["settled_half"] = key_types(sync, n)
    dropped = drop_idempotency(sync, keys)
    mem["idempotency_expired"] = used_memory(sync) - base
    await client.aclose()
    pending = mem["archived"] / n
    settled_bytes = 2 * mem["settled_half"] / n - pending
    ids = (mem["settled_half"] - mem["idempotency_expired"]) / n
    return {
        "numbers": n,
        "id_form": args.id_form,
        "redis_version": sync.info("server")["redis_version"],
        "pending_bytes": round(pending, 1),
        "settled_bytes": round(settled_bytes, 1),
        "pending_bytes_after_idempotency_ttl": round(pending - ids, 1),
        "settled_bytes_after_idempotency_ttl": round(settled_bytes - ids, 1),
        "idempotency_bytes": round(ids, 1),
        "recorded_unarchived_bytes": round(mem["recorded"] / n, 1),
        "used_memory_delta": mem,
        "statuses": dict(statuses),
        "record_events_per_s": round(n / record_s),
        "archive": [first, second],
        "settled_numbers": settled,
        "ledger": ledger_entries(sync, keys),
        "idempotency_keys_dropped": dropped,
        "key_types": types,
    }


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the client may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--id-form", choices=("short", "uuid"), default="short", help="callers' eventIds"
    )
    args = parser.parse_args()
    return run_main("dnc-memory-", Services, lambda services: asyncio.run(measure(services, args)))


if __name__ == "__main__":
    sys.exit(main())
