"""How sync runs follow each other without a gap: the draining run sleeps on Redis until a
change arrives, and a newer run takes the drain over between two claims.

One run holds the sync lease (``dnc.pending``) and drains. When the backlog is empty it blocks
on the wake list (``RedisKeys.sync_wake``), which intake pushes in the same Lua call that
queues a change (``record_events.lua``), so a change is claimed milliseconds after Redis has
it. A run that starts while another drains (the next scheduled run, or a flush from
``prefect deployment run``) announces itself (``RedisKeys.sync_successor``) and wakes the
holder; the holder finishes the claim in hand, releases the lease (a clean release: no
takeover grace) and ends; the newcomer takes the lease and goes on. No Prefect concurrency
limit is involved, so no run is ever cancelled for a slot.

Times: seconds (float) unless a name says ``_ms``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.redis_failures import REDIS_FAILURES, convert_error

SUCCESSOR_TTL_MS = 3_000
"""How long an announcement lasts unless renewed: a newcomer that died stops counting soon."""

MIN_BLOCK_S = 0.1
"""The shortest blocking wait worth asking Redis for (its timers tick every 100 ms at hz 10);
below it the run polls every ``POLL_S`` instead."""
POLL_S = 0.1

KEEP, ONCE = "keep", "once"
"""The role a sync run's lease token ends with: it keeps draining, or it drains once."""


def lease_token(flow_run_id: str | None, keep: bool) -> str:
    """A lease token unique to this execution: ``flow-run-<id>/<nonce>/<role>`` (``local-``
    outside Prefect). Unique even when Prefect runs the same flow run again ("Retry", ``prefect
    flow-run retry``): with the flow run id alone, a retry took the lease as already its own
    and skipped the takeover grace while the crashed execution's request could still land."""
    role = KEEP if keep else ONCE
    nonce = uuid.uuid4().hex[:12]
    if flow_run_id:
        return f"flow-run-{flow_run_id}/{nonce}/{role}"
    return f"local-{nonce}/{role}"


def run_of(token: str) -> str:
    """The flow run id (or local name) in a lease token, for log lines."""
    return token.removeprefix("flow-run-").split("/")[0]


def keeps_draining(token: str) -> bool:
    """Whether the run holding lease ``token`` keeps draining (and so applies what is
    pending now); a reconciliation's or an older token reads as not."""
    return token.endswith("/" + KEEP)


_WAKE = "if redis.call('LLEN', KEYS[1]) == 0 then redis.call('RPUSH', KEYS[1], '1') end"
"""One wake token at most, as ``record_events.lua`` pushes it."""
_WITHDRAW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
"""Compare-and-delete of an announcement: another newcomer's stays."""


class Handover:
    """The wake list and the successor announcement of one namespace. Methods raise
    ``StoreUnavailable``/``StoreError`` when Redis fails. ``idle_cap_s``: the longest single
    wait on the wake list; the caller keeps it under the Redis socket timeout by a margin (a
    blocking command that outlasts the socket timeout fails); under ``MIN_BLOCK_S`` the wait
    polls instead. It bounds how late a retry backoff that ends is noticed."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, idle_cap_s: float = 1.0) -> None:
        self._client = client
        self._keys = keys
        self.idle_cap_s = idle_cap_s
        # registered once: EVALSHA on each call, not the script text every 50 ms of a wait
        self._wake = client.register_script(_WAKE)
        self._withdraw = client.register_script(_WITHDRAW)

    async def wake(self) -> None:
        """Wake the draining run (at most one token waits in the list)."""
        await self._script(self._wake, [self._keys.sync_wake], [])

    async def wait_for_changes(self, timeout_s: float) -> bool:
        """Block until intake queues a change, a newcomer asks for the drain, or a retry
        backoff ends (the earliest deferred number's time), for at most ``timeout_s`` and at
        most ``idle_cap_s``. True when woken by a token, false on timeout."""
        due_s = await self._next_due_in_s()
        if self.idle_cap_s < MIN_BLOCK_S:  # a socket timeout too short to block under: poll
            wait_s = min(timeout_s, POLL_S, due_s)
            if await self._call("lpop", self._keys.sync_wake) is not None:
                return True
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            return False
        wait_s = min(timeout_s, self.idle_cap_s, due_s)
        if wait_s <= 0:
            return False
        popped = await self._call("blpop", [self._keys.sync_wake], timeout=wait_s)
        return popped is not None

    async def announce(self, token: str) -> None:
        """Say that the run holding lease token ``token`` waits to take the drain over (for
        ``SUCCESSOR_TTL_MS``; call again to stay announced) and wake the holder."""
        await self._call("set", self._keys.sync_successor, token, px=SUCCESSOR_TTL_MS)
        await self.wake()

    async def successor(self, token: str) -> str | None:
        """The token of a run waiting to take over from ``token``'s run, or ``None``."""
        waiting = await self._call("get", self._keys.sync_successor)
        if waiting is None:
            return None
        text = waiting.decode() if isinstance(waiting, bytes) else str(waiting)
        return None if text == token else text

    async def holder(self) -> str | None:
        """The lease token of the run holding the sync lease now, or ``None``."""
        value = await self._call("get", self._keys.sync_lease)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def has_work(self) -> bool:
        """Whether a claim would find something: a pending number, or a number whose retry
        backoff has ended."""
        if await self._call("zcard", self._keys.pending):
            return True
        return await self._next_due_in_s() == 0

    async def withdraw(self, token: str) -> None:
        """Drop ``token``'s announcement once it holds the lease (or gives up); another
        newcomer's announcement stays."""
        await self._script(self._withdraw, [self._keys.sync_successor], [token])

    async def _next_due_in_s(self) -> float:
        """Seconds until the earliest number waiting out a retry backoff is due (``inf``
        when none waits; 0 when one is due already)."""
        first = await self._call("zrange", self._keys.deferred, 0, 0, withscores=True)
        if not first:
            return float("inf")
        due_ms = float(first[0][1])
        return max(0.0, (due_ms - time.time() * 1000) / 1000)

    async def _script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, name)(*args, **kwargs)
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc
