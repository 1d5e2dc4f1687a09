"""Prometheus metrics of the receiver (prometheus-client).

With several uvicorn workers, ``receiver.cli`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start, and ``render`` then aggregates every worker's values (prometheus-client's
multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class ReceiverMetrics:
    """Counters and the latency histogram, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dnc_receiver_requests",
            "Event requests by outcome (queued, duplicate, superseded, rejected, unavailable, "
            "error) and reason.",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dnc_receiver_request_seconds",
            "Event request latency from first byte to response, seconds.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "dnc_receiver_redis_errors",
            "Redis failures seen by the receiver, by kind (unavailable, error).",
            ["kind"],
            registry=self.registry,
        )
        for kind in ("unavailable", "error"):  # at 0 from the start: rate() and alerts see them
            self.redis_errors.labels(kind)
        self.event_warnings = Counter(
            "dnc_receiver_event_warnings",
            "Recorded events (duplicates not counted) with an optional field dropped (an "
            "opt-out kept without it: metadata, expiresAt, region, eventId) or a field read "
            "with an adjustment (timestamp after_receipt, no_time_zone), by field and reason.",
            ["field", "reason"],
            registry=self.registry,
        )
        self.naive_times = Counter(
            "dnc_receiver_naive_times",
            "Recorded events whose timestamp had no time zone (read in "
            "DNC_INTAKE_NAIVE_TIME_ZONE), by sender: bearer-<n> / hmac-<n>, the position of "
            "the credential in its setting, or unknown without authentication.",
            ["sender"],
            registry=self.registry,
        )

        self.unarchived = Gauge(
            "dnc_audit_unarchived_entries",
            "Stream entries not yet copied into the audit store, by stream (events, rejected, "
            "unauthenticated, applications); read from Redis at each scrape.",
            ["stream"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.oldest_unarchived = Gauge(
            "dnc_audit_oldest_unarchived_seconds",
            "How long the oldest stream entry not yet in the audit store has waited, seconds.",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.archive_lagging = Gauge(
            "dnc_audit_archive_lagging",
            "1 when the archive is lagging: more entries wait than "
            "DNC_AUDIT_ARCHIVE_LAG_MAX_ENTRIES, or the oldest has waited longer than "
            "DNC_AUDIT_ARCHIVE_LAG_MAX_S (nothing is dropped; Redis grows), else 0.",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

        self.reconcile_drift = Gauge(
            "dnc_reconcile_drift_numbers",
            "Numbers in each drift class at the last reconciliation (opt_out_missing, "
            "opt_in_record, expiry_differs, not_owned); read from Redis at each scrape.",
            ["drift_class"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.reconcile_finished = Gauge(
            "dnc_reconcile_last_finished_timestamp_seconds",
            "When the last reconciliation finished, UTC epoch seconds (0: none yet).",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.reconcile_complete = Gauge(
            "dnc_reconcile_last_complete",
            "1 when the last reconciliation read every page, else 0.",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

        self._request_children: dict[tuple[str, str], Counter] = {}

    def observe_archive(
        self, unarchived: dict[str, tuple[int, int | None]], oldest_s: float, lagging: bool
    ) -> None:
        """Set the archive gauges from ``dnc.audit.archive.backlog``'s answer (per stream:
        entries waiting, the oldest one's time in UTC ms), the oldest entry's wait
        (``oldest_s``, seconds) and whether that is a lagging archive."""
        for stream, (count, _) in unarchived.items():
            self.unarchived.labels(stream).set(count)
        self.oldest_unarchived.set(oldest_s)
        self.archive_lagging.set(1 if lagging else 0)

    def observe_reconcile(self, drift: dict[str, int], finished_ms: int, complete: bool) -> None:
        """Set the reconciliation gauges from the last report: ``drift`` per class, when it
        finished (UTC ms) and whether it was complete."""
        for name, count in drift.items():
            self.reconcile_drift.labels(name).set(count)
        self.reconcile_finished.set(finished_ms / 1000)
        self.reconcile_complete.set(1 if complete else 0)

    def observe(self, outcome: str, reason: str, seconds: float) -> None:
        """Count one finished request and its latency in seconds."""
        key = (outcome, reason)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(outcome, reason)
        child.inc()
        self.latency.observe(seconds)

    def render(self) -> bytes:
        """The exposition text; every worker's values in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
