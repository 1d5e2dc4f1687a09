"""What recording events means: a group (all or none), what recording did, the store's limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dnc.events import StoredEvent
from dnc.redis_settings import RedisSettings

Group = tuple[StoredEvent, ...]
"""Events recorded together, all or none (one request's opt-out and its alias copies)."""


class RecordStatus(StrEnum):
    """What recording one event did."""

    QUEUED = "queued"
    """The event is now the latest for its number and the number is pending."""
    SUPERSEDED = "superseded"
    """A newer (or equal-time, at least as compliance-safe) event is already known; kept for
    audit only."""
    DUPLICATE = "duplicate"
    """This eventId was already recorded for the same event; nothing changed. (An id derived
    from the event has no key, ``dnc.state``: its retry is ``duplicate`` while the event is
    still the number's latest, ``superseded`` once a newer one replaced it.)"""
    ID_CONFLICT = "id_conflict"
    """This eventId was already used for a different event; nothing changed."""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Retention limits: idempotency TTL in ms; the approximate cap, in entries, of the one
    capped stream (unauthenticated refusals). The audit, rejected and applications streams are
    not capped: only the archive (``dnc.audit.archive``) trims them, after copying."""

    idempotency_ttl_ms: int = 7 * 86_400_000
    unauthenticated_max_len: int = 100_000
    max_batch: int = 128
    """Most events recorded by one script call (bounds how long one call holds Redis); a
    group that must be recorded whole is never split, so only a group larger than this makes
    a call hold more."""
    wait_replicas: int = 0
    """Replicas that must confirm each write (Redis ``WAIT``) before it counts as recorded;
    0: the primary's word is enough."""
    wait_timeout_ms: int = 1_000
    """How long to wait for those confirmations, ms."""

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> StoreLimits:
        """Limits as configured by ``DNC_REDIS_*``."""
        return cls(
            idempotency_ttl_ms=settings.idempotency_ttl_s * 1000,
            unauthenticated_max_len=settings.rejected_stream_max_len,
            wait_replicas=settings.wait_replicas,
            wait_timeout_ms=settings.wait_timeout_ms,
        )
