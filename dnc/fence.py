"""The lease fence: no CXone request of a sync run starts unless its lease outlives it.

CXone takes no fencing token, so the fence is made of time. Three rules together keep two
runs from writing the same number in the wrong order:

1. Every HTTP attempt of a lease holder is *admitted* first (``LeaseFence.admit``): it starts
   only while the lease, as last confirmed by Redis, still has at least the attempt's bound
   plus a margin to live (renewing on the spot when it has not), and it is cut off at that
   bound (``CxoneTransport`` enforces the deadline). So every attempt is over, from this side,
   before the lease can expire.
2. The heartbeat renews the lease every third of its lifetime and keeps trying after a failed
   renewal until the lease, by its own clock, may have expired: then the run has lost it
   (``lost``), admits nothing more and ends Failed.
3. A run that takes over a lease that expired (its holder did not release it: killed, paused,
   cut off from Redis) does not write until the old lease's expiry plus the longer of the two
   holders' attempt bound plus margin (``lease.lua`` computes it on Redis's clock and keeps it
   for the next holder), so a request the old holder had under way has landed or failed by
   then. A holder that releases the lease after abandoning a request (cut off at its bound,
   cancelled by SIGTERM) passes the same grace on from the release.

The rule of timing (checked by ``check_lease_timing``, ``dnc-sync check`` and every run):
``lease TTL >= attempt bound + margin + 1 s``, where the attempt bound is the sum of the CXone
client's connect, pool, write and read timeouts. The guarantee assumes CXone finishes a
request within the attempt bound plus the margin after this side abandoned it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dnc.cxone.errors import CxoneTransientError
from dnc.cxone_settings import CxoneSettings
from dnc.errors import StoreError
from dnc.sync_lease import LeaseLost
from dnc.sync_settings import SyncSettings

log = logging.getLogger("dnc.fence")

Renew = Callable[[], Awaitable[bool]]
Clock = Callable[[], float]


class LeaseUnconfirmed(CxoneTransientError):
    """The lease could not be confirmed just now (Redis did not answer): no request was sent;
    try again shortly (a transient error, so the client's retries wait and ask again)."""


def attempt_bound_s(cxone: CxoneSettings) -> float:
    """Longest one HTTP attempt to CXone may take, seconds: connect + pool + write + read
    timeouts (the transport cuts an attempt off there when a fence is set)."""
    return (
        cxone.connect_timeout_s
        + cxone.pool_timeout_s
        + cxone.write_timeout_s
        + cxone.read_timeout_s
    )


def takeover_grace_s(sync: SyncSettings, cxone: CxoneSettings) -> float:
    """How long after an unreleased lease expired its successor waits before writing,
    seconds: the attempt bound plus the fence margin."""
    return attempt_bound_s(cxone) + sync.fence_margin_s


def check_lease_timing(sync: SyncSettings, cxone: CxoneSettings) -> list[str]:
    """Problems with the lease timing rule (empty when it holds): the lease TTL must cover
    one attempt's bound plus the margin plus 1 s, or no attempt could ever be admitted."""
    bound = attempt_bound_s(cxone)
    needed = bound + sync.fence_margin_s + 1
    if sync.lease_ttl_s >= needed:
        return []
    return [
        f"DNC_SYNC_LEASE_TTL_S={sync.lease_ttl_s} is too short: one CXone attempt may take "
        f"{bound:g} s (connect + pool + write + read timeouts) and the fence keeps "
        f"{sync.fence_margin_s:g} s of margin, so the lease must last at least {needed:g} s; "
        "raise the TTL or lower the DNC_CXONE_*_TIMEOUT_S settings"
    ]


@dataclass
class LeaseFence:
    """What a lease holder knows of its lease, on the event loop's clock (``loop.time()``,
    seconds): ``expires_at`` (a lower bound: the time a confirmed renewal was *sent* plus the
    TTL), ``not_before`` (no write before it: the takeover grace), and ``lost``.

    ``renew`` asks Redis to extend the lease (true: still ours); ``bound_s`` is the attempt
    bound, ``margin_s`` the fence margin, ``ttl_s`` the lease lifetime (all seconds).
    """

    renew: Renew
    ttl_s: float
    bound_s: float
    margin_s: float
    expires_at: float = 0.0
    not_before: float = 0.0
    lost: bool = False
    abandoned: bool = False
    """An attempt ended without an answer (cut off, cancelled, connection lost): it may still
    land, so releasing the lease hands the grace on (``release_grace_ms``)."""
    clock: Clock | None = None

    def release_grace_ms(self) -> int:
        """The grace to pass when releasing the lease, ms: the attempt bound plus the margin
        when an attempt was abandoned, else 0."""
        return round((self.bound_s + self.margin_s) * 1000) if self.abandoned else 0

    def now(self) -> float:
        """The fence's clock: the running loop's time unless a clock was injected."""
        return self.clock() if self.clock is not None else asyncio.get_running_loop().time()

    def acquired(self, sent_at: float, wait_s: float) -> None:
        """Record a successful acquire sent at ``sent_at`` that must wait ``wait_s`` seconds
        (the takeover grace ``lease.lua`` answered) before writing."""
        self.expires_at = sent_at + self.ttl_s
        self.not_before = self.now() + wait_s

    async def admit(self) -> float:
        """Admit one attempt: return the loop-time deadline by which it must be over. Waits
        out the takeover grace; renews first when the lease would not outlive the attempt.
        Raises ``LeaseLost`` (the run may not write any more) or ``LeaseUnconfirmed`` (Redis
        did not answer a needed renewal: transient)."""
        if self.lost:
            raise LeaseLost("the sync lease was lost: this run writes nothing more")
        wait_s = self.not_before - self.now()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        if self.expires_at - self.now() < self.bound_s + self.margin_s:
            await self.confirm()
            if self.expires_at - self.now() < self.bound_s + self.margin_s:
                # renewed, but this process stalled before it saw the answer: not proven
                raise LeaseUnconfirmed("the sync lease renewal came back too late", 0.0)
        return self.now() + self.bound_s

    async def confirm(self) -> None:
        """Renew now. Raises ``LeaseLost`` when the lease is not ours (or may have expired
        unconfirmed), ``LeaseUnconfirmed`` when Redis did not answer but it may still be."""
        if self.lost:
            raise LeaseLost("the sync lease was lost: this run writes nothing more")
        sent_at = self.now()
        try:
            held = await self.renew()
        except StoreError:
            if self.now() >= self.expires_at:
                self.lost = True
                raise LeaseLost("the sync lease expired while Redis did not answer") from None
            raise LeaseUnconfirmed("the sync lease could not be renewed just now", 1.0) from None
        if not held:
            self.lost = True
            raise LeaseLost("the sync lease is held by another run")
        self.expires_at = sent_at + self.ttl_s

    async def keep(self, until: float | None = None) -> None:
        """Heartbeat: renew every third of the TTL; after a failed renewal keep trying (every
        second, or sooner for short leases) until the lease may have expired, then mark it
        lost. ``until``: the fence clock's time after which it stops renewing and marks the
        lease lost, so a run stuck past its deadline cannot hold the lease for ever (it
        expires; the next holder waits out the takeover grace). Returns when lost; cancel it
        to stop."""
        while not self.lost:
            await asyncio.sleep(self.ttl_s / 3)
            if until is not None and self.now() >= until:
                self.lost = True
                log.error("the run outlived its deadline: the sync lease is no longer renewed")
                return
            while not self.lost:
                try:
                    await self.confirm()
                    break
                except LeaseUnconfirmed:
                    log.warning("sync lease renewal failed; retrying until it expires")
                    await asyncio.sleep(min(1.0, self.ttl_s / 10))
                except LeaseLost:
                    log.warning("sync lease lost: no further CXone request is sent")
                    return


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a heartbeat task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
