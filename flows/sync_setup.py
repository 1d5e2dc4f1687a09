"""Setting a sync run up: what it works with, built from the settings (the target, the queue
with its retry limits, the lease fence around its writes, the ownership ledger, the handover),
and its connection to CXone (endpoints discovered, a token fetched)."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis
from prefect import get_run_logger

from dnc.cxone.dnc_groups import DncGroupsTarget
from dnc.cxone.errors import CxoneAuthError
from dnc.cxone.factory import build_target
from dnc.fence import LeaseFence, attempt_bound_s
from dnc.handover import Handover, lease_token, run_of
from dnc.keys import RedisKeys
from dnc.ownership import OwnershipLedger
from dnc.pending import PendingQueue, RetryLimits
from dnc.settings import CxoneSettings, RedisSettings, SyncSettings
from dnc.sync import SyncCounters
from flows.run_context import flow_run_id
from flows.sync_push import SyncRun
from tasks.sync_tasks import discover_endpoints, fetch_token


def build_run(
    client: aioredis.Redis,
    http: httpx.AsyncClient,
    redis_settings: RedisSettings,
    cxone: CxoneSettings,
    sync: SyncSettings,
    batch_size: int | None,
    counters: SyncCounters,
    keep: bool,
) -> SyncRun:
    """What this run works with: the target, the queue, the fence around its writes."""
    keys = RedisKeys(redis_settings.namespace)
    target = build_target(cxone, http)
    queue = PendingQueue(client, keys, retry_limits(sync, cxone))
    run_flow_id = flow_run_id()
    token = lease_token(run_flow_id, keep)
    fence = LeaseFence(
        lambda: queue.renew_lease(token, sync.lease_ttl_s * 1000),
        ttl_s=sync.lease_ttl_s,
        bound_s=attempt_bound_s(cxone),
        margin_s=sync.fence_margin_s,
    )
    target.transport.fence = fence
    ledger = OwnershipLedger(client, keys)
    # a blocking wait must end before the Redis socket timeout does (Redis's timers tick
    # every 100 ms, plus a round trip): below that margin the wait polls (dnc.handover)
    idle_cap_s = min(1.0, redis_settings.socket_timeout_s - 0.25)
    handover = Handover(client, keys, idle_cap_s)
    size = min(batch_size or target.batch_size, target.batch_size)
    run = SyncRun(
        queue, target, token, sync, size, counters, fence, ledger, handover, cxone.max_concurrency
    )
    run.run_id = run_flow_id or run_of(token)
    return run


async def connect(run: SyncRun, cxone: CxoneSettings) -> None:
    """Discover the endpoints (DNC groups) and get an access token. Raises
    ``CxoneAuthError`` (logged in words first) when CXone refuses the credentials."""
    try:
        if isinstance(run.target, DncGroupsTarget):
            endpoints = await discover_endpoints(run.target, cxone.issuer_url, cxone.access_key_id)
            run.target.adopt_endpoints(endpoints)
        await fetch_token(run.target)
    except CxoneAuthError:
        run.counters.ended = "credentials refused"
        get_run_logger().error(
            "CXone refused the credentials (check DNC_CXONE_CLIENT_ID, DNC_CXONE_CLIENT_SECRET, "
            "DNC_CXONE_ACCESS_KEY_ID, DNC_CXONE_ACCESS_KEY_SECRET): nothing was pushed; every "
            "change stays pending"
        )
        raise


def retry_limits(sync: SyncSettings, cxone: CxoneSettings) -> RetryLimits:
    """The queue's retry limits from the settings (times in ms)."""
    return RetryLimits(
        max_attempts=sync.retry_max_attempts,
        max_age_ms=sync.retry_max_age_s * 1000,
        base_ms=round(sync.retry_backoff_base_s * 1000),
        cap_ms=round(sync.retry_backoff_cap_s * 1000),
        retry_after_cap_ms=round(cxone.retry_after_cap_s * 1000),
    )
