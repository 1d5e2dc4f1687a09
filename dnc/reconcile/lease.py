"""Reconciliation and adoption hold the sync lease, so that no sync run writes to CXone or
settles a number while CXone and Redis are read side by side.

They take it like a sync run (``PendingQueue.acquire_lease``, same key and rules): when the
previous holder's lease expired unreleased, they wait out its takeover grace (its requests
may still land); a held lease is renewed every third of its TTL; losing it ends the run
early (``lost``). While the lease is taken they announce themselves like a newer sync run
(``dnc.handover``), so a sync run that keeps draining hands it over between two claims
instead of holding it to the end of its budget; taking it is retried for ``wait_s`` seconds.
A sync run that starts meanwhile waits for its turn (or joins) and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

from dnc.errors import StoreError
from dnc.handover import Handover
from dnc.pending import PendingQueue

Sleep = Callable[[float], Awaitable[None]]


class LeaseBusy(RuntimeError):
    """The sync lease stayed taken for the whole wait."""


class SyncLeaseHolder:
    """``async with`` holds the sync lease under ``token`` (``ttl_s`` seconds, renewed);
    ``grace_s``: the takeover grace a sync run would respect; ``wait_s``: how long to keep
    trying to take it (``LeaseBusy`` after); ``handover``: where to ask a draining sync run to
    hand the lease over (``None``: only retry). ``lost`` says why the lease was lost, or
    ``""``."""

    RETRY_S = 0.25

    def __init__(
        self,
        queue: PendingQueue,
        token: str,
        *,
        ttl_s: float,
        grace_s: float,
        wait_s: float,
        handover: Handover | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._queue = queue
        self._token = token
        self._ttl_ms = int(ttl_s * 1000)
        self._grace_ms = int(grace_s * 1000)
        self._wait_s = wait_s
        self._sleep = sleep
        self._handover = handover
        self._heartbeat: asyncio.Task[None] | None = None
        self.lost = ""

    async def __aenter__(self) -> SyncLeaseHolder:
        deadline = time.monotonic() + self._wait_s
        try:
            while True:
                grant = await self._queue.acquire_lease(self._token, self._ttl_ms, self._grace_ms)
                if grant:
                    break
                if time.monotonic() >= deadline:
                    raise LeaseBusy(
                        f"the sync lease stayed taken for {self._wait_s:g} s (a sync run or "
                        "another reconciliation holds it)"
                    )
                if self._handover is not None:
                    await self._handover.announce(self._token)
                await self._sleep(self.RETRY_S)
        finally:
            if self._handover is not None:
                with contextlib.suppress(StoreError):
                    await self._handover.withdraw(self._token)
        self._heartbeat = asyncio.create_task(self._keep())
        try:
            if grant.wait_ms:  # the last holder's requests may still land
                await self._sleep(grant.wait_ms / 1000)
        except BaseException:  # cancelled while waiting: __aexit__ will not run
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if not self.lost:
            with contextlib.suppress(StoreError):  # it expires by itself
                await self._queue.release_lease(self._token)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                held = await self._queue.renew_lease(self._token, self._ttl_ms)
            except StoreError:
                held = False
            if not held:
                self.lost = "the sync lease was lost (Redis did not confirm a renewal)"
                return
