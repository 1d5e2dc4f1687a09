"""The sync flow: drain the pending set into CXone, batch by batch, until empty or out of time.

Deployed on an interval from ``prefect.yaml`` (concurrency limit 1) and flushed ad hoc with
``prefect deployment run 'sync-dnc/sync-dnc'``. Only the holder of the Redis lease claims and
writes, and the lease fence (``dnc.fence``) keeps a run that lost its lease, or its requests
still under way, from writing after another run took over. Parameters hold no secrets:
credentials come from the ``DNC_*`` environment of the worker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote

from dnc.applications import Application
from dnc.cxone.dnc_groups import DncGroupsTarget
from dnc.cxone.factory import Target, build_http_client, build_target
from dnc.errors import StoreError
from dnc.events import Action
from dnc.fence import LeaseFence, attempt_bound_s, check_lease_timing, stop, takeover_grace_s
from dnc.keys import RedisKeys
from dnc.ownership import OwnershipLedger
from dnc.pending import Claim, LeaseLost, PendingQueue, Retry, RetryLimits
from dnc.redis_policy import require_noeviction
from dnc.settings import CxoneSettings, RedisSettings, SyncSettings
from dnc.store import open_redis
from dnc.sync import SyncCounters, oldest_age_s
from dnc.target import ChangeOutcome
from tasks.sync_tasks import (
    ack_applied,
    chunk_claims,
    claim_pending,
    dead_letter,
    defer_retries,
    discover_endpoints,
    fetch_token,
    hold_not_owned,
    push_batch,
    record_ownership,
    resolve_conflicts,
)

SUMMARY_KEY = "dnc-sync-summary"
PROGRESS_KEY = "dnc-sync-progress"


class SyncLagging(RuntimeError):
    """A pending opt-in/opt-out has waited (since receipt) longer than ``DNC_SYNC_LAG_LIMIT_S``."""


class SyncMisconfigured(RuntimeError):
    """The settings break a rule the sync's guarantees rest on (e.g. the lease timing rule of
    ``dnc.fence``); the run refuses to start."""


class SyncBatchesFailed(RuntimeError):
    """Some batches could not be pushed even after retries (CXone down, credentials or
    permissions refused, a 4xx): their numbers stay pending and the run ends Failed, so the
    Prefect UI and automations see it. ``counters``: the run's counters (as returned)."""

    def __init__(self, counters: dict[str, object]) -> None:
        self.counters = counters
        super().__init__(
            f"{counters['failed_batches']} batch(es) failed after retries; "
            f"{counters['left_pending']} number(s) left pending"
        )


@dataclass
class _Run:
    """What one run works with (built from settings inside the run; never a parameter)."""

    queue: PendingQueue
    target: Target
    lease: str
    sync: SyncSettings
    batch_size: int
    counters: SyncCounters
    fence: LeaseFence
    ledger: OwnershipLedger
    max_concurrency: int = 4
    run_id: str = ""
    """The Prefect flow run id (``local-...`` outside Prefect), for the applications record."""


@flow(name="sync-dnc")
async def sync_dnc(
    batch_size: int | None = None,
    max_batches: int | None = None,
    time_budget_s: float | None = None,
) -> dict[str, object]:
    """Push pending DNC changes to CXone. ``batch_size``: numbers per API call (default and
    cap: the target's); ``max_batches``: stop after this many batches; ``time_budget_s``: stop
    claiming after this many seconds (default ``DNC_SYNC_TIME_BUDGET_S``). Returns the run's
    counters. Fails (``SyncLagging``) when a pending change has waited longer than the limit,
    and, after writing the summary, with ``LeaseLost`` when the run lost its lease (it wrote
    nothing after that) and ``SyncBatchesFailed`` when a batch failed after retries. Refuses
    to start (``SyncMisconfigured``) when the lease timing rule does not hold, and
    (``EvictionPolicyError``) when Redis's maxmemory-policy is not noeviction."""
    redis_settings, cxone, sync = RedisSettings(), CxoneSettings(), SyncSettings()
    problems = check_lease_timing(sync, cxone)
    if problems:
        raise SyncMisconfigured("; ".join(problems))
    started = time.monotonic()
    counters = SyncCounters()
    client, http = open_redis(redis_settings), build_http_client(cxone)
    try:
        # before the lease: a Redis that may evict keys loses opt-outs (dnc.redis_policy)
        await require_noeviction(
            client, allow_eviction=redis_settings.allow_eviction, logger=get_run_logger()
        )
        target = build_target(cxone, http)
        queue = PendingQueue(
            client, RedisKeys(redis_settings.namespace), _retry_limits(sync, cxone)
        )
        size = min(batch_size or target.batch_size, target.batch_size)
        token = _lease_token()
        fence = LeaseFence(
            lambda: queue.renew_lease(token, sync.lease_ttl_s * 1000),
            ttl_s=sync.lease_ttl_s,
            bound_s=attempt_bound_s(cxone),
            margin_s=sync.fence_margin_s,
        )
        target.transport.fence = fence
        ledger = OwnershipLedger(client, RedisKeys(redis_settings.namespace))
        run = _Run(queue, target, token, sync, size, counters, fence, ledger, cxone.max_concurrency)
        run.run_id = token.removeprefix("flow-run-")
        await _with_lease(run, cxone, max_batches, time_budget_s or sync.time_budget_s)
        await _count_backlog(run)
        counters.api_calls = target.transport.calls
        counters.http_retries = target.transport.retries
    finally:
        counters.wall_time_s = round(time.monotonic() - started, 3)
        await http.aclose()
        await client.aclose()
    await _report(counters, redis_settings.namespace, sync.lag_limit_s)
    if fence.lost:
        raise LeaseLost(
            "the sync lease was lost during the run: nothing was written after that; the "
            "numbers it held stay pending for the next run"
        )
    if counters.failed_batches:
        raise SyncBatchesFailed(dict(vars(counters)))
    return dict(vars(counters))


async def _count_backlog(run: _Run) -> None:
    """Put what still waits in the counters. A run that lost its lease because Redis cannot be
    reached still writes its summary and fails with ``LeaseLost``: the backlog is then left
    unknown (-1) instead of failing the run with ``StoreUnavailable``."""
    try:
        pending, oldest_ms = await run.queue.backlog()
    except StoreError:
        if not run.fence.lost:
            raise
        get_run_logger().warning("the backlog could not be read: Redis cannot be reached")
        run.counters.remaining_backlog = -1
        return
    run.counters.remaining_backlog = pending
    run.counters.oldest_pending_age_s = oldest_age_s(oldest_ms, int(time.time() * 1000))


async def _with_lease(
    run: _Run, cxone: CxoneSettings, max_batches: int | None, budget_s: float
) -> None:
    logger = get_run_logger()
    deadline = time.monotonic() + budget_s
    sent_at = run.fence.now()
    grant = await run.queue.acquire_lease(
        run.lease,
        run.sync.lease_ttl_s * 1000,
        int(takeover_grace_s(run.sync, cxone) * 1000),
    )
    if not grant:
        logger.info("another sync run holds the lease: nothing to do in this one")
        return
    run.fence.acquired(sent_at, grant.wait_ms / 1000)
    heartbeat = asyncio.create_task(run.fence.keep())
    try:
        if not await _wait_out_takeover(grant.wait_ms / 1000, deadline):
            return
        if isinstance(run.target, DncGroupsTarget):
            endpoints = await discover_endpoints(run.target, cxone.issuer_url, cxone.access_key_id)
            run.target.adopt_endpoints(endpoints)
        await fetch_token(run.target)
        await _drain(run, max_batches, deadline, cxone.rate_limit_rps)
    except LeaseLost:
        run.fence.lost = True
    finally:
        await stop(heartbeat)
        if not run.fence.lost:
            await run.queue.release_lease(run.lease, run.fence.release_grace_ms())


async def _wait_out_takeover(wait_s: float, deadline: float) -> bool:
    """Wait ``wait_s`` seconds when the previous holder's lease expired unreleased (its
    requests may still land); false, without waiting, when that outlasts the time budget."""
    if wait_s <= 0:
        return True
    logger = get_run_logger()
    if time.monotonic() + wait_s >= deadline:
        logger.warning(
            "the previous sync run's lease expired unreleased: its requests may land for "
            "another %.0f s, longer than this run's budget; nothing pushed",
            wait_s,
        )
        return False
    logger.warning(
        "the previous sync run's lease expired unreleased: waiting %.1f s before writing",
        wait_s,
    )
    await asyncio.sleep(wait_s)
    return True


def _claim_limit(run: _Run, room: int | None, remaining_s: float, rate_per_s: float) -> int:
    """How many to claim: the claim size, no more than the batches left to push, and no more
    than the target's pace can push before the time budget ends."""
    limit = run.sync.claim_size if room is None else min(run.sync.claim_size, room)
    if rate_per_s > 0:
        limit = min(limit, max(run.batch_size, int(rate_per_s * run.batch_size * remaining_s)))
    return limit


async def _drain(run: _Run, max_batches: int | None, deadline: float, rate_per_s: float) -> None:
    progress = await acreate_progress_artifact(
        0.0, key=PROGRESS_KEY, description="Backlog drained in this run"
    )
    pushed = 0
    initial, _ = await run.queue.backlog()
    if not initial:  # nothing to do is all done, not 0 %
        await aupdate_progress_artifact(progress, 100.0)
    while time.monotonic() < deadline and (max_batches is None or pushed < max_batches):
        if run.fence.lost:
            raise LeaseLost("the sync lease was lost during the run")
        room = None if max_batches is None else (max_batches - pushed) * run.batch_size
        limit = _claim_limit(run, room, deadline - time.monotonic(), rate_per_s)
        claims = await claim_pending(run.queue, run.lease, limit)
        if not claims:
            break
        run.counters.claimed += len(claims)
        batches = await chunk_claims(quote(claims), run.batch_size)
        if max_batches is not None:  # a claim split by action can make one batch too many
            batches = batches[: max_batches - pushed]
        settled = await _push_all(run, batches, deadline)
        pushed += len(batches)
        done = 100.0 if not initial else min(100.0, 100.0 * run.counters.claimed / initial)
        await aupdate_progress_artifact(progress, done)
        if settled == 0:  # nothing moved: leave the rest for the next run, do not spin
            break


async def _push_all(run: _Run, batches: Sequence[list[Claim]], deadline: float) -> int:
    """Push every batch concurrently (the target paces them); every result is awaited and
    every failure reported. A batch whose turn comes after ``deadline`` (monotonic seconds:
    the time budget) is not pushed and stays pending, so a slow or failing CXone cannot make
    a run outlast its budget by more than the batches already under way. Returns how many
    claims were settled."""
    slots = asyncio.Semaphore(run.max_concurrency)  # a batch starts only when it can be sent

    requested: dict[int, int] = {}  # batch index -> when its push began (UTC ms)

    async def push_when_free(index: int, batch: list[Claim]) -> int:
        async with slots:
            if time.monotonic() >= deadline:
                run.counters.left_pending += len(batch)
                return 0
            requested[index] = int(time.time() * 1000)
            return await _push(run, batch, requested[index])

    results = await asyncio.gather(
        *(push_when_free(i, batch) for i, batch in enumerate(batches)), return_exceptions=True
    )
    settled = 0
    failed: list[Retry] = []
    failures: dict[str, Application] = {}
    for index, (batch, result) in enumerate(zip(batches, results, strict=True)):
        if isinstance(result, BaseException):
            run.counters.failed_batches += 1
            run.counters.left_pending += len(batch)
            get_run_logger().warning(
                "batch of %d failed after retries (%s); it waits out a backoff",
                len(batch),
                type(result).__name__,
            )
            reason = f"batch failed: {type(result).__name__}"
            if index in requested:  # it was sent: CXone may have applied it
                failure = Application(requested[index], run.target.name, run.run_id, failure=reason)
                failures.update((claim.e164, failure) for claim in batch)
            if not run.fence.lost:  # a batch's failure delays its numbers, never dead-letters
                after = getattr(result, "retry_after_s", None)
                failed += [Retry(claim, reason, after, counts=False) for claim in batch]
        else:
            settled += result
    if failed:
        deferral = await defer_retries(run.queue, quote(failed), quote(list(failures.items())))
        run.counters.deferred += deferral.deferred
    elif failures:  # the lease was lost: the numbers are the next holder's, but what was sent
        await _record_abandoned(
            run, [c for b in batches for c in b if c.e164 in failures], failures
        )
    return settled


async def _record_abandoned(
    run: _Run, claims: list[Claim], failures: dict[str, Application]
) -> None:
    """Keep the audit record of requests sent before the lease was lost (CXone may have
    applied them), without settling their numbers (another run may hold them now); a Redis
    failure here is logged, not raised: the run already ends ``LeaseLost``."""
    try:
        await run.queue.record_abandoned(claims, failures)
    except StoreError:
        get_run_logger().warning(
            "%d abandoned request(s) could not be kept in the audit record: Redis failed",
            len(claims),
        )


async def _push(run: _Run, batch: list[Claim], requested_ms: int) -> int:
    """Push one batch (``requested_ms``: when, UTC ms) and settle each number, recording
    what CXone answered for it (``dnc.applications``). Returns how many were settled."""
    if run.fence.lost:  # the heartbeat could not renew: another run may own these numbers
        raise LeaseLost("the sync lease was lost during the run")
    outcomes = await _apply(run, batch)
    run.counters.count(batch, outcomes)
    applications = {
        o.e164: Application(requested_ms, run.target.name, run.run_id, o) for o in outcomes
    }
    settlement = await resolve_conflicts(quote(batch), quote(outcomes))
    answered = quote(list(applications.items()))
    acknowledged = await ack_applied(run.queue, quote(settlement.acknowledge), answered)
    dead = await dead_letter(run.queue, quote(settlement.dead_letter), answered)
    deferral = await defer_retries(run.queue, quote(settlement.retry), answered)
    dead += deferral.dead_lettered
    run.counters.dead_lettered += dead
    run.counters.retried += len(settlement.retry)
    run.counters.deferred += deferral.deferred
    left = len(batch) - acknowledged - dead - deferral.deferred
    run.counters.left_pending += left
    get_run_logger().info(
        "batch of %d: %d acknowledged, %d dead-lettered, %d waiting out a retry backoff, "
        "%d left pending (a newer event arrived)",
        len(batch),
        acknowledged,
        dead,
        deferral.deferred,
        left,
    )
    return acknowledged + dead + deferral.deferred


async def _apply(run: _Run, batch: list[Claim]) -> list[ChangeOutcome]:
    """One outcome per claim of ``batch``, in order: opt-ins with no record of ours to remove
    are not sent (``not_owned``, unless ``DNC_SYNC_REMOVE_FOREIGN_RECORDS``); the rest go to
    CXone, with the ownership ledger kept in step (``dnc.ownership``). Raises what the push
    raises after its retries."""
    held: list[ChangeOutcome] = []
    opt_ins = any(claim.event.action is Action.OPT_IN for claim in batch)
    if opt_ins and not run.sync.remove_foreign_records:  # batches are by action: most skip
        held = await hold_not_owned(run.ledger, quote(batch))
    kept = {outcome.e164 for outcome in held}
    send = [claim for claim in batch if claim.e164 not in kept]
    sent: list[ChangeOutcome] = []
    if send:
        pushed = await push_batch.with_options(
            retries=run.sync.push_retries,
            retry_delay_seconds=exponential_backoff(backoff_factor=run.sync.push_retry_delay_s),
        )(run.target, run.ledger, quote(send))
        sent = pushed.outcomes
        changes = [claim.change() for claim in send]
        await record_ownership(
            run.ledger,
            quote(changes),
            quote(sent),
            pushed.earlier_adds,
            run.run_id,
            int(time.time() * 1000),
        )
    by_number = {outcome.e164: outcome for outcome in held + sent}
    return [by_number[claim.e164] for claim in batch]


async def _report(counters: SyncCounters, namespace: str, lag_limit_s: int) -> None:
    await acreate_table_artifact(
        table=counters.as_rows(), key=SUMMARY_KEY, description="What this sync run did"
    )
    resource = {"prefect.resource.id": f"dnc.sync.{namespace}"}
    emit_event("dnc.sync.completed", resource=resource, payload=dict(vars(counters)))
    if counters.oldest_pending_age_s > lag_limit_s:
        emit_event(
            "dnc.sync.lagging",
            resource=resource,
            payload={
                "oldest_pending_age_s": counters.oldest_pending_age_s,
                "lag_limit_s": lag_limit_s,
            },
        )
        raise SyncLagging(
            f"oldest pending change has waited {counters.oldest_pending_age_s:.0f} s "
            f"(limit {lag_limit_s} s)"
        )


def _retry_limits(sync: SyncSettings, cxone: CxoneSettings) -> RetryLimits:
    return RetryLimits(
        max_attempts=sync.retry_max_attempts,
        max_age_ms=sync.retry_max_age_s * 1000,
        base_ms=round(sync.retry_backoff_base_s * 1000),
        cap_ms=round(sync.retry_backoff_cap_s * 1000),
        retry_after_cap_ms=round(cxone.retry_after_cap_s * 1000),
    )


def _lease_token() -> str:
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        return f"flow-run-{context.flow_run.id}"
    return f"local-{uuid.uuid4()}"
