"""Pushing claimed batches to CXone and settling each number: the write half of the sync flow
(``flows.sync`` claims and drives the loop).

Every batch goes through the target (paced, retried by Prefect on transient failures); each
number is settled with what CXone answered recorded beside it (``dnc.applications``). A run
that lost its lease settles nothing more and records what it had sent as abandoned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect import get_run_logger
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote

from dnc.applications import Application
from dnc.cxone.errors import CxoneAuthError
from dnc.cxone.factory import Target
from dnc.errors import StoreError
from dnc.events import Action
from dnc.fence import LeaseFence
from dnc.handover import Handover
from dnc.ownership import OwnershipLedger
from dnc.pending import Claim, Deferral, LeaseLost, PendingQueue, Retry
from dnc.settings import SyncSettings
from dnc.sync import SyncCounters
from dnc.target import ChangeOutcome
from tasks.sync_tasks import (
    ack_applied,
    dead_letter,
    defer_retries,
    hold_not_owned,
    push_batch,
    record_ownership,
    resolve_conflicts,
)

DEAD_REASONS_KEPT = 5
"""How many distinct dead-letter reasons a run names in its log line and event."""


@dataclass
class SyncRun:
    """What one run works with (built from settings inside the run; never a parameter)."""

    queue: PendingQueue
    target: Target
    lease: str
    sync: SyncSettings
    batch_size: int
    counters: SyncCounters
    fence: LeaseFence
    ledger: OwnershipLedger
    handover: Handover
    max_concurrency: int = 4
    run_id: str = ""
    """The Prefect flow run id (``local-...`` outside Prefect), for the applications record."""
    heartbeat: asyncio.Task[None] | None = None
    """The lease renewal task while the lease is held (``dnc.fence.LeaseFence.keep``)."""
    dead_reasons: list[str] = field(default_factory=list)
    """The first distinct reasons numbers were dead-lettered for (at most
    ``DEAD_REASONS_KEPT``): CXone's words, never a number."""

    def note_dead(self, reasons: Sequence[str]) -> None:
        """Keep the first distinct dead-letter ``reasons``."""
        for reason in reasons:
            if reason not in self.dead_reasons and len(self.dead_reasons) < DEAD_REASONS_KEPT:
                self.dead_reasons.append(reason)


def failure_name(exc: BaseException) -> str:
    """How a batch failure reads in the run's logs: CXone refusing the credentials is said in
    words (it needs an operator, not a retry); anything else by its type."""
    if isinstance(exc, CxoneAuthError):
        return "CXone refused the credentials: check DNC_CXONE_*"
    return type(exc).__name__


async def push_all(run: SyncRun, batches: Sequence[list[Claim]], deadline: float) -> int:
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
                failure_name(result),
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
    run: SyncRun, claims: list[Claim], failures: dict[str, Application]
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


async def _push(run: SyncRun, batch: list[Claim], requested_ms: int) -> int:
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
    # a task only for what there is to settle: a trickle of opt-outs costs the Prefect server
    # a few task runs per batch, not every kind each time
    acknowledged = dead = 0
    deferral = Deferral()
    if settlement.acknowledge:
        acknowledged = await ack_applied(run.queue, quote(settlement.acknowledge), answered)
    if settlement.dead_letter:
        dead = await dead_letter(run.queue, quote(settlement.dead_letter), answered)
    if settlement.retry:
        deferral = await defer_retries(run.queue, quote(settlement.retry), answered)
    dead += deferral.dead_lettered
    run.note_dead([reason for _, reason in settlement.dead_letter])
    if deferral.dead_lettered:
        run.note_dead(["still failing after the retry limit"])
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


async def _apply(run: SyncRun, batch: list[Claim]) -> list[ChangeOutcome]:
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
