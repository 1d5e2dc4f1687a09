"""Adoption: a one-time claim of the records an existing deployment created before the
ownership ledger existed (``dnc-sync reconcile --adopt``).

A record is adopted when its number's latest state here is an acknowledged opt-out (settled:
not pending, not waiting out a backoff, not dead-lettered) in force, received before the sync
first kept the ledger (``RedisKeys.ownership_since``: a later one was synced with the ledger,
and not being recorded as ours means CXone said the record was already there), and the record
lapses when that opt-out does (to the second; both never, or the same instant): it matches
what this service asked for. Anything else stays someone else's. Adoption is recorded once
(``RedisKeys.ownership_adopted``); running it again, or on a ledger that already holds
entries (a deployment that has had the ledger, where a matching record may be someone
else's that our opt-out found already there), needs ``force``. The caller holds the sync
lease (``dnc.reconcile.lease``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from dnc.held_records import HeldRecord, RecordReader
from dnc.keys import RedisKeys
from dnc.number_hash import states as number_states
from dnc.ownership import ADOPTED, OwnedRecord, OwnershipLedger
from dnc.reconcile.drift import NumberState
from dnc.reconcile.state import StateReader
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.state import decode


class AlreadyAdopted(RuntimeError):
    """Adoption ran before (its record says when), or the ledger already records records
    this service created (the deployment has had the ledger: nothing to adopt); pass
    ``force`` to run it anyway."""


@dataclass
class AdoptionReport:
    """``records`` listed, ``adopted`` (added to the ledger), ``already_owned`` and
    ``not_matching`` (left alone: no acknowledged opt-out in force here, or another expiry);
    ``api_calls`` made."""

    records: int = 0
    adopted: int = 0
    already_owned: int = 0
    not_matching: int = 0
    api_calls: int = 0


def matches(state: NumberState, record: HeldRecord, now_ms: int) -> bool:
    """Whether ``record`` is what this service's acknowledged opt-out asked for."""
    settled = not (state.in_flight or state.dead_lettered)
    same_expiry = (None if state.expires_ms is None else state.expires_ms // 1000) == (
        None if record.expires_ms is None else record.expires_ms // 1000
    )
    return settled and state.protected_at(now_ms) and same_expiry


async def adopt(
    client: aioredis.Redis,
    keys: RedisKeys,
    reader: RecordReader,
    *,
    force: bool = False,
    now_ms: int | None = None,
) -> AdoptionReport:
    """Page through ``reader`` and adopt every matching record (module docstring). Raises
    ``AlreadyAdopted`` (unless ``force``), the reader's CXone errors and ``StoreError``."""
    at_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if not force and await _adopted_before(client, keys):
        raise AlreadyAdopted("ownership was adopted before; --force adopts again")
    since_ms = await _ledger_since(client, keys)
    ledger, states, report = (
        OwnershipLedger(client, keys),
        StateReader(client, keys),
        AdoptionReport(),
    )
    async for page in reader.pages():
        report.records += len(page)
        found = await states.states([record.e164 for record in page])
        entries, matching = [], []
        for record, state in zip(page, found, strict=True):
            if state.owned:
                report.already_owned += 1
            elif matches(state, record, at_ms):
                matching.append(record)
            else:
                report.not_matching += 1
        old = await _received_before(client, keys, [r.e164 for r in matching], since_ms)
        for record in matching:
            if record.e164 in old:
                entry = OwnedRecord(record.record_id, at_ms, "adopt", record.expires_ms, ADOPTED)
                entries.append((record.e164, entry))
            else:  # synced with the ledger: not recorded as ours, so someone else's
                report.not_matching += 1
        report.adopted += await ledger.adopt(entries)
    report.api_calls = reader.calls
    await _remember(client, keys, at_ms, report.adopted)
    return report


async def _adopted_before(client: aioredis.Redis, keys: RedisKeys) -> bool:
    try:
        return bool(await client.exists(keys.ownership_adopted))
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc


async def _ledger_since(client: aioredis.Redis, keys: RedisKeys) -> int | None:
    """When (UTC ms) the sync first kept the ledger (``RedisKeys.ownership_since``)."""
    try:
        value = await client.get(keys.ownership_since)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    return None if value is None else int(value)


async def _received_before(
    client: aioredis.Redis, keys: RedisKeys, numbers: list[str], since_ms: int | None
) -> set[str]:
    """Which of ``numbers`` had their latest event received before ``since_ms``: synced by a
    version without the ledger (all of them when the ledger never started)."""
    if since_ms is None or not numbers:
        return set(numbers)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hmget(keys.latest, numbers)
            read_states = number_states(keys).queue_get(pipe, numbers)
            results = iter(await pipe.execute())
            events, states = next(results), read_states(results)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    before = set()
    for number, event, state in zip(numbers, events, states, strict=True):
        try:
            if event:  # a legacy state's event JSON
                received = json.loads(event)["receivedMs"]
            else:  # a compact state (dnc.state)
                compact = decode(number, state.decode()) if state else None
                received = compact.receivedMs if compact else None
        except (ValueError, KeyError, TypeError):
            received = None
        if isinstance(received, int) and received < since_ms:
            before.add(number)
    return before


async def _remember(client: aioredis.Redis, keys: RedisKeys, at_ms: int, adopted: int) -> None:
    try:
        await client.set(keys.ownership_adopted, json.dumps({"atMs": at_ms, "adopted": adopted}))
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
