"""The sync flow: drain the pending set into CXone, batch by batch, and keep draining as
changes arrive, until the time budget ends or a newer run takes over.

Deployed from ``prefect.yaml`` on an interval with ``keep_draining_s`` longer than the
interval: each run sleeps on Redis while nothing is pending (intake wakes it, ``dnc.handover``)
and hands the drain over to the next run the moment that one starts, so an opt-out reaches
CXone seconds after the receiver answered. A flush (``prefect deployment run
'sync-dnc/sync-dnc'``, the UI's Run or Retry) is such a run: it takes the drain over; it is
never cancelled for a concurrency slot (there is none). Only the holder of the Redis lease
claims and writes, and the lease fence (``dnc.fence``) keeps a run that lost its lease, or its
requests still under way, from writing after another run took over. Parameters hold no
secrets: credentials come from the ``DNC_*`` environment of the worker.

A run that dead-lettered numbers ends in the state "Completed with dead letters" (a WARNING
line names the count and the first reasons, and ``dnc.sync.dead-lettered`` is emitted); a run
that joined the drain of another ends "Joined"; every run logs one summary line.

Its parts: ``flows.sync_setup`` (what a run works with, connecting to CXone),
``flows.sync_turn`` (taking the lease or joining), ``flows.sync_push`` (pushing and settling),
``flows.sync_watchdog`` and ``flows.sync_report`` (the backlog left, the summary, the state).
"""

from __future__ import annotations

import asyncio
import time

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from dnc.cxone.factory import build_http_client
from dnc.fence import attempt_bound_s, check_lease_timing, stop, takeover_grace_s
from dnc.handover import run_of
from dnc.pending import LeaseLost
from dnc.redis_policy import require_noeviction
from dnc.settings import CxoneSettings, RedisSettings, SyncSettings
from dnc.store import open_redis
from dnc.sync import SyncCounters
from flows.sync_push import SyncRun, push_all
from flows.sync_report import (
    DEAD_LETTERED_STATE,
    JOINED_STATE,
    PROGRESS_KEY,
    SUMMARY_KEY,
    Progress,
    SyncBatchesFailed,
    SyncLagging,
    count_backlog,
    finish,
)
from flows.sync_setup import build_run, connect
from flows.sync_turn import confirm_handover, take_turn, wait_out_takeover
from flows.sync_watchdog import WATCHDOG_SLACK_S, Watchdog
from tasks.sync_tasks import chunk_claims, claim_pending

__all__ = [
    "DEAD_LETTERED_STATE",
    "JOINED_STATE",
    "PROGRESS_KEY",
    "SUMMARY_KEY",
    "SyncBatchesFailed",
    "SyncLagging",
    "SyncMisconfigured",
    "sync_dnc",
]


class SyncOverran(RuntimeError):
    """The run outlived its time budget by more than one CXone attempt (a hang somewhere):
    the watchdog stopped it, releasing the lease with the takeover grace, and logged where
    each of its tasks waited."""


class SyncMisconfigured(RuntimeError):
    """The settings break a rule the sync's guarantees rest on (e.g. the lease timing rule of
    ``dnc.fence``); the run refuses to start."""


@flow(name="sync-dnc")
async def sync_dnc(
    batch_size: int | None = None,
    max_batches: int | None = None,
    time_budget_s: float | None = None,
    keep_draining_s: float = 0.0,
) -> dict[str, object]:
    """Push pending DNC changes to CXone. ``batch_size``: numbers per API call (default and
    cap: the target's); ``max_batches``: stop after this many batches; ``time_budget_s``: stop
    claiming after this many seconds (default ``DNC_SYNC_TIME_BUDGET_S``);
    ``keep_draining_s``: when > 0, keep the drain open this many seconds (the run's time
    budget then), woken by Redis as changes arrive, and hand over to a newer run when one
    starts; 0: drain what is pending and end (a run that finds another draining joins it).

    Returns the run's counters (a ``Completed`` state carrying them, named "Completed with
    dead letters" or "Joined", when that applies). Fails (``SyncLagging``) when a pending
    change has waited longer than the limit, and, after writing the summary, with
    ``LeaseLost`` when the run lost its lease (it wrote nothing after that) and
    ``SyncBatchesFailed`` when a batch failed after retries. Refuses to start
    (``SyncMisconfigured``) when the lease timing rule does not hold, and
    (``EvictionPolicyError``) when Redis's maxmemory-policy is not noeviction."""
    redis_settings, cxone, sync = RedisSettings(), CxoneSettings(), SyncSettings()
    problems = check_lease_timing(sync, cxone)
    if problems:
        raise SyncMisconfigured("; ".join(problems))
    if keep_draining_s < 0:
        raise ValueError("keep_draining_s must be 0 (drain once) or more")
    started = time.monotonic()
    counters = SyncCounters()
    failure: Exception | None = None
    client, http = open_redis(redis_settings), build_http_client(cxone)
    try:
        # before the lease: a Redis that may evict keys loses opt-outs (dnc.redis_policy)
        await require_noeviction(
            client, allow_eviction=redis_settings.allow_eviction, logger=get_run_logger()
        )
        keep = keep_draining_s > 0
        run = build_run(client, http, redis_settings, cxone, sync, batch_size, counters, keep)
        budget_s = keep_draining_s or time_budget_s or sync.time_budget_s
        try:
            await _with_lease(run, cxone, max_batches, budget_s, keep=keep)
        except Exception as exc:  # reported like any run (summary, events, lag), then raised
            failure = exc
            counters.ended = counters.ended or f"failed: {type(exc).__name__}"
        await count_backlog(run, failure)
        counters.api_calls = run.target.transport.calls
        counters.http_retries = run.target.transport.retries
    finally:
        counters.wall_time_s = round(time.monotonic() - started, 3)
        await http.aclose()
        await client.aclose()
    return await finish(run, redis_settings.namespace, failure)


async def _with_lease(
    run: SyncRun, cxone: CxoneSettings, max_batches: int | None, budget_s: float, keep: bool
) -> None:
    deadline = time.monotonic() + budget_s
    turn = await take_turn(run, int(takeover_grace_s(run.sync, cxone) * 1000), keep, deadline)
    if turn is None:
        run.counters.ended = "joined"
        return
    run.fence.acquired(turn.sent_at, turn.grant.wait_ms / 1000)
    # the heartbeat lets go of the lease once the watchdog's deadline is long past, even if
    # the run is stuck where the watchdog cannot stop it
    let_go = run.fence.now() + 2 * _overrun_s(run, cxone, deadline)
    run.heartbeat = asyncio.create_task(run.fence.keep(until=let_go))
    released = False
    try:
        if not await wait_out_takeover(turn.grant.wait_ms / 1000, deadline):
            run.counters.ended = "budget spent"
            return
        watchdog = Watchdog(run, _overrun_s(run, cxone, deadline))
        try:
            released = await _drain_with_handovers(run, cxone, max_batches, deadline, keep)
        except asyncio.CancelledError:
            if not watchdog.fired:
                raise
            watchdog.absorb()
            run.fence.abandoned = True  # a request may be under way: the next holder waits
            raise SyncOverran(
                "the run outlived its time budget by more than one CXone attempt: stopped"
            ) from None
        finally:
            await watchdog.stop()
    except LeaseLost:
        run.fence.lost = True
        run.counters.ended = "lease lost"
    finally:
        if run.heartbeat is not None:
            await stop(run.heartbeat)
        if not run.fence.lost and not released:
            await run.queue.release_lease(run.lease, run.fence.release_grace_ms())


async def _drain_with_handovers(
    run: SyncRun, cxone: CxoneSettings, max_batches: int | None, deadline: float, keep: bool
) -> bool:
    """Connect, drain, and hand over when asked (taking the lease back when the newcomer
    never takes it). Returns whether the lease was released already."""
    await connect(run, cxone)
    while True:
        await _drain(run, max_batches, deadline, cxone.rate_limit_rps, keep)
        if run.counters.ended != "handed over":
            return False
        if run.heartbeat is not None:
            await stop(run.heartbeat)
        await run.queue.release_lease(run.lease, run.fence.release_grace_ms())
        if await confirm_handover(run):
            return True
        # the newcomer died before taking it: take the lease back and go on draining
        sent_at = run.fence.now()
        grant = await run.queue.acquire_lease(run.lease, run.sync.lease_ttl_s * 1000, 0)
        if not grant:  # someone else took it meanwhile: the drain goes on there
            return True
        run.fence.acquired(sent_at, grant.wait_ms / 1000)
        let_go = run.fence.now() + 2 * _overrun_s(run, cxone, deadline)
        run.heartbeat = asyncio.create_task(run.fence.keep(until=let_go))


def _overrun_s(run: SyncRun, cxone: CxoneSettings, deadline: float) -> float:
    """How long the drain may take before the watchdog stops it: the budget left, plus one
    CXone attempt's bound and the fence margin (a batch under way when the budget ends), plus
    ``WATCHDOG_SLACK_S`` for Prefect's own calls. Seconds."""
    left = max(0.0, deadline - time.monotonic())
    return left + attempt_bound_s(cxone) + run.sync.fence_margin_s + WATCHDOG_SLACK_S


def _claim_limit(run: SyncRun, room: int | None, remaining_s: float, rate_per_s: float) -> int:
    """How many to claim: the claim size, no more than the batches left to push, and no more
    than the target's pace can push before the time budget ends."""
    limit = run.sync.claim_size if room is None else min(run.sync.claim_size, room)
    if rate_per_s > 0:
        limit = min(limit, max(run.batch_size, int(rate_per_s * run.batch_size * remaining_s)))
    return limit


async def _drain(
    run: SyncRun, max_batches: int | None, deadline: float, rate_per_s: float, keep: bool
) -> None:
    """Claim, push and settle until the backlog is empty (``keep``: until ``deadline`` or a
    newer run asks for the drain, sleeping on Redis while nothing is pending). Sets
    ``run.counters.ended`` to why it stopped."""
    progress = Progress(await run.queue.backlog())
    await progress.start()
    pushed = 0
    run.counters.ended = "budget spent"
    while time.monotonic() < deadline:
        if max_batches is not None and pushed >= max_batches:
            run.counters.ended = "max batches pushed"
            return
        if run.fence.lost:
            raise LeaseLost("the sync lease was lost during the run")
        if keep and await _handed_over(run):
            return
        if keep and not await run.handover.has_work():
            await run.handover.wait_for_changes(deadline - time.monotonic())
            continue
        room = None if max_batches is None else max_batches - pushed
        started = time.monotonic()
        claimed, batches, settled = await _cycle(run, room, deadline, rate_per_s)
        pushed += batches
        if claimed:
            await progress.update(run.counters.claimed)
        if settled:
            if keep and claimed < run.batch_size:  # a trickle: let the next batch fill a bit
                await _gather(run, started, deadline)
            continue
        if not keep:  # empty, or nothing moved: leave the rest for the next run, do not spin
            run.counters.ended = "backlog empty" if not claimed else "nothing settled"
            return
        await run.handover.wait_for_changes(deadline - time.monotonic())


async def _gather(run: SyncRun, started: float, deadline: float) -> None:
    """Wait until ``DNC_SYNC_GATHER_MS`` after ``started`` (the last claim, monotonic s), at
    most until ``deadline``: a trickle then costs a few batches a second, not one per event."""
    wait_s = min(started + run.sync.gather_ms / 1000, deadline) - time.monotonic()
    if wait_s > 0:
        await asyncio.sleep(wait_s)


async def _cycle(
    run: SyncRun, room: int | None, deadline: float, rate_per_s: float
) -> tuple[int, int, int]:
    """One claim, pushed and settled: (numbers claimed, batches pushed, numbers settled).
    ``room``: how many more batches this run may push (``None``: no limit)."""
    limit = _claim_limit(
        run,
        None if room is None else room * run.batch_size,
        deadline - time.monotonic(),
        rate_per_s,
    )
    claims = await claim_pending(run.queue, run.lease, limit)
    if not claims:
        return 0, 0, 0
    run.counters.claimed += len(claims)
    batches = await chunk_claims(quote(claims), run.batch_size)
    if room is not None:  # a claim split by action can make one batch too many
        batches = batches[:room]
    settled = await push_all(run, batches, deadline)
    return len(claims), len(batches), settled


async def _handed_over(run: SyncRun) -> bool:
    """Whether a newer run asked for the drain (then this one stops between two claims)."""
    successor = await run.handover.successor(run.lease)
    if successor is None:
        return False
    run.counters.ended = "handed over"
    get_run_logger().info(
        "handing the drain over to %s (a newer sync run, or a reconciliation)", run_of(successor)
    )
    return True
