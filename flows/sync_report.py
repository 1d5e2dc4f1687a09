"""What a sync run reports: the backlog it leaves, its progress artifact, the summary table,
one summary log line, the events automations listen to (``dnc.sync.completed``,
``dnc.sync.dead-lettered``, ``dnc.sync.lagging``), and the state it ends in."""

from __future__ import annotations

import time
from typing import cast
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.states import Completed

from dnc.errors import StoreError
from dnc.pending import LeaseLost
from dnc.sync import SyncCounters, oldest_age_s
from flows.sync_push import SyncRun

SUMMARY_KEY = "dnc-sync-summary"
PROGRESS_KEY = "dnc-sync-progress"
DEAD_LETTERED_STATE = "Completed with dead letters"
"""The state name of a run that dead-lettered numbers (a Completed state the UI shows by name)."""
DEAD_LETTERS_TAG = "dead-letters"
"""The tag a run that dead-lettered numbers gets, beside its state name."""
JOINED_STATE = "Joined"
"""The state name of a run that found another run draining and woke it instead."""


class SyncLagging(RuntimeError):
    """A pending opt-in/opt-out has waited (since receipt) longer than ``DNC_SYNC_LAG_LIMIT_S``."""


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


class Progress:
    """The run's progress artifact: claimed numbers against the backlog it started with."""

    def __init__(self, backlog: tuple[int, int | None], every_s: float = 2.0) -> None:
        self.initial = backlog[0]
        self.artifact: UUID | None = None
        self.every_s = every_s
        self.updated_at = 0.0

    async def start(self) -> None:
        """Create the artifact (100 % at once when nothing waits)."""
        self.artifact = await acreate_progress_artifact(
            0.0, key=PROGRESS_KEY, description="Backlog drained in this run"
        )
        if not self.initial:  # nothing to do is all done, not 0 %
            await aupdate_progress_artifact(self.artifact, 100.0)
            self.updated_at = -1.0

    async def update(self, claimed: int) -> None:
        """Set it to ``claimed`` numbers of the initial backlog (at most 100 %), at most once
        every ``every_s`` seconds until it reaches 100 (each update is a Prefect API call)."""
        done = 100.0 if not self.initial else min(100.0, 100.0 * claimed / self.initial)
        now = time.monotonic()
        if done < 100.0 and now - self.updated_at < self.every_s:
            return
        if self.updated_at < 0:  # 100 % said already
            return
        self.updated_at = -1.0 if done >= 100.0 else now
        if self.artifact is not None:
            await aupdate_progress_artifact(self.artifact, done)


async def count_backlog(run: SyncRun, failure: Exception | None = None) -> None:
    """Put what still waits in the counters. A run that lost its lease or already failed
    because Redis cannot be reached still writes its summary and fails with that: the backlog
    is then left unknown (-1) instead of failing the run with ``StoreUnavailable``."""
    try:
        pending, oldest_ms = await run.queue.backlog()
    except StoreError:
        if not run.fence.lost and failure is None:
            raise
        get_run_logger().warning("the backlog could not be read: Redis cannot be reached")
        run.counters.remaining_backlog = -1
        return
    run.counters.remaining_backlog = pending
    run.counters.oldest_pending_age_s = oldest_age_s(oldest_ms, int(time.time() * 1000))


async def finish(
    run: SyncRun, namespace: str, failure: Exception | None = None
) -> dict[str, object]:
    """Report the run (table artifact, events, one summary log line) and end it in the
    state that says what happened: the counters, or (named states) a ``Completed`` state
    carrying them, typed as the counters because that is what a direct call of the flow
    returns (Prefect makes a returned state the run's final state and unwraps its data).
    Raises (after reporting) ``failure`` when the run failed on the way (CXone refusing the
    credentials, Redis), ``SyncLagging``, ``LeaseLost`` or ``SyncBatchesFailed``, to end the
    run Failed."""
    counters, logger = run.counters, get_run_logger()
    lagging = await _report(run, namespace)
    if failure is not None:
        raise failure
    if lagging is not None:
        raise lagging
    if run.fence.lost:
        logger.error("the sync lease was lost: this run wrote nothing after that")
        raise LeaseLost(
            "the sync lease was lost during the run: nothing was written after that; the "
            "numbers it held stay pending for the next run"
        )
    if counters.failed_batches:
        raise SyncBatchesFailed(dict(vars(counters)))
    result = dict(vars(counters))
    if counters.dead_lettered:
        await _tag(DEAD_LETTERS_TAG)
        return _named(DEAD_LETTERED_STATE, _dead_letter_line(run), result)
    if counters.ended == "joined":
        return _named(
            JOINED_STATE, "joined the sync run draining: it applies what is pending", result
        )
    return result


async def _tag(tag: str) -> None:
    """Add ``tag`` to this flow run (shown in the UI's run lists, and filterable); outside
    Prefect, or when the API refuses, the run goes on without it (logged)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    tags = [*context.flow_run.tags, tag]
    try:
        async with get_client() as client:
            await client.update_flow_run(context.flow_run.id, tags=tags)
    except Exception as exc:  # a missing tag must not fail a run that did its work
        get_run_logger().warning("could not tag the run %r: %s", tag, type(exc).__name__)


def _named(name: str, message: str, result: dict[str, object]) -> dict[str, object]:
    """A ``Completed`` state named ``name`` carrying ``result`` (see ``finish``)."""
    state: State[dict[str, object]] = Completed(name=name, message=message, data=result)
    return cast(dict[str, object], state)


def _dead_letter_line(run: SyncRun) -> str:
    reasons = "; ".join(run.dead_reasons) or "no reason given"
    return (
        f"{run.counters.dead_lettered} number(s) dead-lettered (first reasons: {reasons}): "
        "CXone will not apply them as sent; see `dnc-sync dead-letters list`, fix, requeue"
    )


def _summary_line(counters: SyncCounters) -> str:
    return (
        f"sync run summary: ended {counters.ended or 'before draining'}; claimed "
        f"{counters.claimed}; applied {counters.applied_opt_outs} opt-outs, "
        f"{counters.applied_opt_ins} opt-ins; already applied {counters.already_applied}; "
        f"not owned {counters.not_owned}; dead-lettered {counters.dead_lettered}; deferred "
        f"{counters.deferred}; failed batches {counters.failed_batches}; backlog left "
        f"{counters.remaining_backlog} (oldest waited {counters.oldest_pending_age_s:.1f} s); "
        f"{counters.api_calls} API calls in {counters.wall_time_s:.1f} s"
    )


async def _report(run: SyncRun, namespace: str) -> SyncLagging | None:
    """Log, write the artifact, emit the events; the ``SyncLagging`` to raise, if lagging."""
    counters, logger = run.counters, get_run_logger()
    logger.info(_summary_line(counters))
    if counters.dead_lettered:
        logger.warning(_dead_letter_line(run))
    if counters.ended == "budget spent" and counters.remaining_backlog > 0:
        logger.warning(
            "time budget spent with %d number(s) still waiting: the next run goes on",
            counters.remaining_backlog,
        )
    await acreate_table_artifact(
        table=counters.as_rows(), key=SUMMARY_KEY, description="What this sync run did"
    )
    resource = {"prefect.resource.id": f"dnc.sync.{namespace}"}
    emit_event("dnc.sync.completed", resource=resource, payload=dict(vars(counters)))
    if counters.dead_lettered:
        payload = {
            "dead_lettered": counters.dead_lettered,
            "reasons": list(run.dead_reasons),
            "flow_run_id": run.run_id,
        }
        emit_event("dnc.sync.dead-lettered", resource=resource, payload=payload)
    lag_limit_s = run.sync.lag_limit_s
    if counters.oldest_pending_age_s > lag_limit_s:
        emit_event(
            "dnc.sync.lagging",
            resource=resource,
            payload={
                "oldest_pending_age_s": counters.oldest_pending_age_s,
                "lag_limit_s": lag_limit_s,
            },
        )
        logger.error(
            "lagging: the oldest pending change has waited %.0f s (limit %d s)",
            counters.oldest_pending_age_s,
            lag_limit_s,
        )
        return SyncLagging(
            f"oldest pending change has waited {counters.oldest_pending_age_s:.0f} s "
            f"(limit {lag_limit_s} s)"
        )
    return None
