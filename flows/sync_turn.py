"""Whose turn it is to drain: take the sync lease, take the drain over from the run that holds
it, or join that run. ``flows.sync`` calls ``take_turn`` before anything is claimed.

A run that keeps draining (``keep_draining_s`` > 0: the deployment's runs) asks the holder to
hand over (``dnc.handover``) and waits for the lease within its budget; a run that drains once
(``keep_draining_s`` = 0: ``dnc-sync sync run``, tests) joins a holder that keeps draining
(wakes it and ends: the holder applies what is pending) and waits its turn behind one that
drains once. Neither is ever cancelled for a concurrency slot. A run that handed the drain
over checks that the newcomer took the lease, and takes it back if not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from prefect import get_run_logger

from dnc.handover import keeps_draining, run_of
from dnc.pending import LeaseGrant
from flows.sync_push import SyncRun

HANDOVER_POLL_S = 0.05
"""How often a run waiting for the holder to hand over asks for the lease, seconds."""
HANDOVER_CONFIRM_S = 2.0
"""How long a run that handed the drain over waits for the newcomer to take the lease."""


@dataclass(frozen=True, slots=True)
class Turn:
    """The lease this run got: ``grant`` (``wait_ms``: the takeover grace still to wait) and
    ``sent_at``, the fence clock's time the winning acquire was sent (seconds)."""

    grant: LeaseGrant
    sent_at: float


async def take_turn(run: SyncRun, grace_ms: int, keep: bool, deadline: float) -> Turn | None:
    """The lease for this run, or ``None`` when this run joins the one draining (logged with
    that run's id). ``grace_ms``: the takeover grace (``dnc.fence.takeover_grace_s``) in ms;
    ``keep``: whether this run keeps draining: then it asks the holder to hand over and waits
    for it until ``deadline`` (monotonic seconds: its budget). A drain-once run joins a holder
    that keeps draining (that one applies what is pending) and waits, without asking, for one
    that drains once (it may stop before the rest: ``--max-batches``, its budget). Raises
    ``StoreError`` when Redis fails."""
    announced = False
    try:
        while True:
            sent_at = run.fence.now()
            grant = await run.queue.acquire_lease(run.lease, run.sync.lease_ttl_s * 1000, grace_ms)
            if grant:
                if announced:
                    get_run_logger().info("the drain was handed over to this run")
                return Turn(grant, sent_at)
            holder = await run.handover.holder()
            if time.monotonic() >= deadline or (not keep and keeps_draining(holder or "")):
                await _join(run, holder)
                return None
            if keep:
                if not announced:
                    get_run_logger().info(
                        "sync run %s drains now: asking it to hand the drain over to this run",
                        run_of(holder or "(none)"),
                    )
                await run.handover.announce(run.lease)
                announced = True
            await asyncio.sleep(HANDOVER_POLL_S)
    finally:
        if announced:
            await run.handover.withdraw(run.lease)


async def confirm_handover(run: SyncRun) -> bool:
    """After handing the drain over and releasing the lease: whether another run took the
    lease within ``HANDOVER_CONFIRM_S`` (a newcomer that died after asking never does; the
    caller then takes the lease back and goes on)."""
    deadline = time.monotonic() + HANDOVER_CONFIRM_S
    while time.monotonic() < deadline:
        holder = await run.handover.holder()
        if holder is not None and holder != run.lease:
            return True
        await asyncio.sleep(HANDOVER_POLL_S)
    get_run_logger().warning(
        "the run that asked for the drain did not take it within %.0f s: this run goes on",
        HANDOVER_CONFIRM_S,
    )
    return False


async def _join(run: SyncRun, holder: str | None) -> None:
    """Wake the holder (it claims what is pending now) and say so in this run's log."""
    await run.handover.wake()
    get_run_logger().info(
        "joined sync run %s, which holds the lease and drains: it was woken and applies what "
        "is pending; this run writes nothing",
        run_of(holder or "(none: it just ended)"),
    )


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
