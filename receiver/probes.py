"""What operators poll: ``GET /readyz`` (Redis answers and will not evict keys) and
``GET /metrics`` (the archive and reconciliation gauges, read from Redis at each scrape)."""

from __future__ import annotations

import logging
import time

from dnc.audit.lag import backlog, lag_reason, oldest_age_s
from dnc.errors import StoreError
from dnc.reconcile.report import load_last
from dnc.redis_policy import EvictionPolicyError, require_noeviction
from dnc.settings import AuditSettings
from receiver.asgi import Send, send_bytes, send_json
from receiver.lazy_store import LazyStore
from receiver.metrics import CONTENT_TYPE, ReceiverMetrics
from receiver.outcome import error_body

log = logging.getLogger("dnc.receiver")


class Probes:
    """Readiness and the metrics scrape of one app: the store from ``stores``, eviction
    allowed or not by ``allow_eviction``, gauges in ``metrics`` judged against ``audit``'s
    archive lag limits, and ``retry_after`` (the header) on a 503."""

    def __init__(
        self,
        stores: LazyStore,
        metrics: ReceiverMetrics,
        audit: AuditSettings,
        *,
        allow_eviction: bool,
        retry_after: tuple[tuple[bytes, bytes], ...],
    ) -> None:
        self._stores = stores
        self._metrics = metrics
        self._audit = audit
        self._allow_eviction = allow_eviction
        self._retry_after = retry_after

    async def ready(self, send: Send) -> None:
        """Answer ``/readyz``: 200 when Redis answers and will not evict keys
        (``dnc.redis_policy``); 503 otherwise (with Retry-After when Redis is unreachable)."""
        store = self._stores.get()
        try:
            await store.ping()
            await require_noeviction(store._client, allow_eviction=self._allow_eviction, logger=log)
        except EvictionPolicyError as exc:
            log.error("not ready: %s", exc)
            await send_json(send, 503, error_body("redis_eviction_policy", str(exc)))
            return
        except StoreError:
            self._metrics.redis_errors.labels("unavailable").inc()
            body = error_body("redis_unavailable", "redis is not reachable")
            await send_json(send, 503, body, self._retry_after)
            return
        await send_json(send, 200, {"status": "ready"})

    async def scrape(self, send: Send) -> None:
        """Answer ``/metrics``: the gauges refreshed from Redis, then every metric."""
        await self._observe_archive()
        await send_bytes(send, 200, self._metrics.render(), CONTENT_TYPE)

    async def _observe_archive(self) -> None:
        """Set the archive gauges from Redis before a scrape; a Redis failure leaves the last
        values and is counted (the scrape still answers)."""
        store = self._stores.get()
        metrics = self._metrics
        try:
            waiting = await backlog(store._client, store.keys)
        except StoreError:
            metrics.redis_errors.labels("unavailable").inc()
            return
        oldest = oldest_age_s(waiting, int(time.time() * 1000))
        entries = sum(count for count, _ in waiting.values())
        audit = self._audit
        why = lag_reason(entries, oldest, audit.archive_lag_max_entries, audit.archive_lag_max_s)
        metrics.observe_archive(waiting, oldest, why is not None)
        try:
            last = await load_last(store._client, store.keys)
        except StoreError:
            metrics.redis_errors.labels("unavailable").inc()
            return
        if last is not None:
            metrics.observe_reconcile(last.drift, last.finished_ms, last.complete)
