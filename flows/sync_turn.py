"""Whose turn it is to drain: take the sync lease, take the drain over from the run that holds
it, or join that run. ``flows.sync`` calls ``take_turn`` before anything is claimed.

A run that keeps draining (``keep_draining_s`` > 0: the deployment's runs) asks the holder to
hand over (``dnc.handover``) and waits for the lease for up to the lease TTL; a run that drains
once (``keep_draining_s`` = 0: ``dnc-sync sync run``, tests) wakes the holder and ends, since
the holder applies what is pending. Neither is ever cancelled for a concurrency slot.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from prefect import get_run_logger

from dnc.pending import LeaseGrant
from flows.sync_push import SyncRun

HANDOVER_POLL_S = 0.05
"""How often a run waiting for the holder to hand over asks for the lease, seconds."""


@dataclass(frozen=True, slots=True)
class Turn:
    """The lease this run got: ``grant`` (``wait_ms``: the takeover grace still to wait) and
    ``sent_at``, the fence clock's time the winning acquire was sent (seconds)."""

    grant: LeaseGrant
    sent_at: float


async def take_turn(run: SyncRun, grace_ms: int, keep: bool) -> Turn | None:
    """The lease for this run, or ``None`` when this run joins the one draining (logged with
    that run's id). ``grace_ms``: the takeover grace (``dnc.fence.takeover_grace_s``) in ms;
    ``keep``: whether this run keeps draining (then it asks the holder to hand over and
    waits up to ``DNC_SYNC_LEASE_TTL_S`` for it). Raises ``StoreError`` when Redis fails."""
    give_up = time.monotonic() + (run.sync.lease_ttl_s if keep else 0)
    announced = False
    try:
        while True:
            sent_at = run.fence.now()
            grant = await run.queue.acquire_lease(run.lease, run.sync.lease_ttl_s * 1000, grace_ms)
            if grant:
                if announced:
                    get_run_logger().info("the drain was handed over to this run")
                return Turn(grant, sent_at)
            if time.monotonic() >= give_up:
                await _join(run)
                return None
            if not announced:
                get_run_logger().info(
                    "sync run %s drains now: asking it to hand the drain over to this run",
                    await _holder(run),
                )
            await run.handover.announce(run.lease)
            announced = True
            await asyncio.sleep(HANDOVER_POLL_S)
    finally:
        if announced:
            await run.handover.withdraw(run.lease)


async def _join(run: SyncRun) -> None:
    """Wake the holder (it claims what is pending now) and say so in this run's log."""
    await run.handover.wake()
    get_run_logger().info(
        "joined sync run %s, which holds the lease and drains: it was woken and applies what "
        "is pending; this run writes nothing",
        await _holder(run),
    )


async def _holder(run: SyncRun) -> str:
    """The Prefect flow run id (or local token) of the lease holder, for log lines."""
    holder = await run.handover.holder()
    return (holder or "(none: it just ended)").removeprefix("flow-run-")


async def wait_out_takeover(wait_s: float, deadline: float) -> bool:
    """Wait ``wait_s`` seconds when the previous holder's lease expired unreleased (its
    requests may still land); false, without waiting, when that outlasts the time budget
    (``deadline``: monotonic seconds)."""
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
