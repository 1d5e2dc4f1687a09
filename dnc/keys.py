"""Every Redis key name, in one place, by role.

All keys of one namespace share the hash tag ``{<namespace>}`` so that the multi-key Lua
scripts run unchanged on Redis Cluster (one slot); high availability comes from replicas or
Sentinel, not from spreading these keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnc.number_slots import (  # the per-number buckets' arithmetic, kept by itself
    BUCKET_DIGITS,
    bucket_suffixes,
    number_from_slot,
    number_slot,
)

__all__ = ["BUCKET_DIGITS", "RedisKeys", "bucket_suffixes", "number_from_slot", "number_slot"]


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key names for one namespace (default ``dnc``; tests use their own to stay apart)."""

    namespace: str = "dnc"

    @property
    def tag(self) -> str:
        """The hash tag every key starts with, e.g. ``{dnc}``."""
        return "{" + self.namespace + "}"

    @property
    def pending(self) -> str:
        """ZSET: member = E.164, score = receive time (UTC ms) of the oldest change of that
        number not yet applied (first come, first synced; the sync lag is measured from it).
        No TTL: a member leaves only when CXone acknowledged its latest state."""
        return f"{self.tag}:pending"

    @property
    def latest(self) -> str:
        """HASH: E.164 -> JSON ``StoredEvent`` of the latest known event, as written before
        states became compact (``dnc.state``): read for a number whose ``watermark`` value is
        a bare watermark, deleted when the number's next queued event writes its compact
        state. Nothing new is written here. No TTL."""
        return f"{self.tag}:latest"

    @property
    def state_prefix(self) -> str:
        """What each state bucket's name starts with: ``{ns}:state:``, then the number's last
        four digits (``number_slot``). Each bucket is a HASH: the digits before them ->
        the number's state, ``"<watermark> <received offset> [<id token>]"`` (``dnc.state``);
        the watermark rules are those of the legacy ``watermark`` hash below. No TTL, no
        bound (a late, older event must stay superseded). About 45 bytes per number at 1M
        while the buckets are listpacks (``bench/memory.py``; ``BUCKET_DIGITS``)."""
        return f"{self.tag}:state:"

    def state(self, e164: str) -> tuple[str, str]:
        """(bucket key, field) of ``e164``'s state (``state_prefix``)."""
        suffix, field = number_slot(e164)
        return self.state_prefix + suffix, field

    @property
    def state_long(self) -> str:
        """HASH: E.164 -> the state of a number whose state is over 64 bytes (a long caller
        ``eventId``), kept out of its bucket so that the bucket stays a listpack
        (``dnc.number_hash.MAX_VALUE_BYTES``). A number's state is in its bucket or here,
        never both. No TTL."""
        return f"{self.tag}:state-long"

    @property
    def watermark(self) -> str:
        """Legacy HASH, written before states were bucketed (``state_prefix``), still read
        while it exists (the later state wins when a number is also in its bucket or
        ``state_long``): a number's entry leaves it when the number's next queued event is
        recorded. E.164 -> the number's state:
        ``"<watermark> <received offset> [<id token>]"``
        (``dnc.state``: the latest event, compactly), or a bare watermark written before
        states were compact (its event JSON then in ``latest``). The watermark is
        ``"<event ms>:<action>"`` of the latest known event, or
        ``"<event ms>:optOut:<expiry ms>"`` when it is an opt-out that lapses (times: UTC epoch
        ms). The expiry is part of it so that two opt-outs of the same millisecond with
        different protection differ: the sync's compare-and-delete compares the whole value.
        (Before expiries were part of it, an expiring opt-out was ``"<event ms>:optOut"``;
        readers accept both.) No TTL, no bound: it outlives the pending entry so that a late,
        older event stays superseded, and intake accepts any event time since 2000, so no
        watermark ever stops mattering. About 90 bytes per number (``bench/memory.py``)."""
        return f"{self.tag}:watermark"

    @property
    def replication_touch(self) -> str:
        """STRING: a counter the record script increments when the receiver waits for replica
        confirmation (``WAIT``) after a call that wrote nothing else (every event a duplicate),
        so that ``WAIT`` has a write of this connection to wait for. No TTL (one small
        counter); its value means nothing."""
        return f"{self.tag}:replication-touch"

    @property
    def audit(self) -> str:
        """STREAM: every queued, superseded or duplicate event (``status``, ``event`` JSON).
        No cap: the archive trims it once copied into the audit store (``dnc.audit``)."""
        return f"{self.tag}:audit"

    @property
    def applications(self) -> str:
        """STREAM: one entry per number the sync pushed to CXone: ``outcome`` (acknowledged,
        dead_lettered, deferred, changed; abandoned: sent before the lease was lost),
        ``settledMs`` (UTC ms) and ``application`` (JSON ``dnc.applications.ApplicationRecord``:
        what CXone was asked and answered), appended by the settle script (abandoned ones by
        ``PendingQueue.record_abandoned``). No cap: the archive trims it once copied."""
        return f"{self.tag}:applications"

    @property
    def rejected(self) -> str:
        """STREAM: refused requests of authenticated callers (their body kept) and refused
        import rows, with the reason. No cap (only secret holders can add to it): the archive
        trims it once copied into the audit store (``dnc.audit``)."""
        return f"{self.tag}:rejected"

    @property
    def rejected_unauthenticated(self) -> str:
        """STREAM: refusals of callers not (yet) authenticated (401, 404, 405, and 408/413
        before the body was read), without any body; capped (``~`` MAXLEN,
        ``DNC_REDIS_REJECTED_STREAM_MAX_LEN``) because anyone can add to it, and on its own so
        that a flood of them cannot evict the authenticated record. The archive copies it and
        records as a gap what the cap trimmed first."""
        return f"{self.tag}:rejected-unauthenticated"

    @property
    def rejection_counts(self) -> str:
        """HASH: ``"auth:<reason>"`` / ``"anon:<reason>"`` -> refusals kept, of authenticated
        callers (and import rows) and of callers without a valid secret, by reason
        (``dnc.rejection_reasons``). No TTL: counts since the key was last deleted; they
        outlive the rejected streams, which the archive trims."""
        return f"{self.tag}:rejection-counts"

    @property
    def archive_lease(self) -> str:
        """STRING: the token of the archive run allowed to copy the streams (one at a time:
        its count of entries lost before archiving needs it); TTL = the run's time budget
        plus a minute (``dnc.audit.archive``)."""
        return f"{self.tag}:archive-lease"

    @property
    def sync_lease(self) -> str:
        """STRING: the token of the sync run allowed to claim; TTL = lease TTL (settings), so a
        run that dies releases it by itself."""
        return f"{self.tag}:sync-lease"

    @property
    def sync_lease_history(self) -> str:
        """HASH: how the last lease ended: ``holder``, ``expiresMs`` (Redis clock, UTC ms),
        ``released`` ("1" when released, "0" while held or once expired), ``fenceUntilMs`` (no
        write before it: the takeover grace, ``dnc.fence``). No TTL (one small hash)."""
        return f"{self.tag}:sync-lease-history"

    @property
    def sync_wake(self) -> str:
        """LIST: at most one ``"1"``, pushed by intake when it queues a change (and by a run
        that wants the lease); the run that drains blocks on it (``BLPOP``) instead of polling.
        A token nobody took only makes the next drain look once more."""
        return f"{self.tag}:sync-wake"

    @property
    def sync_successor(self) -> str:
        """STRING: the lease token of a sync run waiting to take over the drain; TTL a few
        seconds, refreshed while it waits. The holder hands over between two claims."""
        return f"{self.tag}:sync-successor"

    @property
    def owned_prefix(self) -> str:
        """What each ownership-ledger bucket's name starts with: ``{ns}:owned:``, then the
        number's last four digits (``number_slot``). Each bucket is a HASH: the digits
        before them -> compact ``dnc.ownership.OwnedRecord`` (``OwnedRecord.encode``; JSON
        entries written before are still read) of a DNC record this service created (or
        adopted): record id, when (UTC ms), by which run, its expiry. The ownership
        ledger: an opt-in removes a record only when it is here. No TTL: an entry leaves when
        this service's opt-in removed the record (or found it gone)."""
        return f"{self.tag}:owned:"

    def owned_entry(self, e164: str) -> tuple[str, str]:
        """(bucket key, field) of ``e164``'s ownership-ledger entry (``owned_prefix``)."""
        suffix, field = number_slot(e164)
        return self.owned_prefix + suffix, field

    @property
    def owned_long(self) -> str:
        """HASH: E.164 -> an ownership-ledger entry over 64 bytes (a long record id), kept
        out of its bucket as ``state_long`` is. No TTL."""
        return f"{self.tag}:owned-long"

    @property
    def owned(self) -> str:
        """Legacy HASH of the ownership ledger, written before it was bucketed
        (``owned_prefix``), still read while it exists (a number's bucket or ``owned_long``
        entry wins): E.164 -> the same entries. An entry leaves it when the ledger next
        writes that number. A sync of the version before buckets writes only here, so no old
        sync worker may run once a new one has (docs/operating.md: Upgrading)."""
        return f"{self.tag}:owned"

    @property
    def adds_in_flight(self) -> str:
        """HASH: E.164 -> when (UTC ms) this service first sent an opt-out for it whose answer
        it has not had yet; an add of ours may have landed. Deleted when the number's push has
        a final answer (``dnc.ownership``). No TTL."""
        return f"{self.tag}:adds-in-flight"

    @property
    def ownership_since(self) -> str:
        """STRING: when (UTC ms) the sync first kept the ownership ledger (set once, by the
        first push that recorded ownership): events received before it were synced without
        a ledger, which is what ``--adopt`` may claim. No TTL."""
        return f"{self.tag}:ownership-since"

    @property
    def ownership_adopted(self) -> str:
        """STRING: JSON of the one-time adoption (``dnc-sync reconcile --adopt``): when (UTC
        ms) and how many records were adopted. No TTL."""
        return f"{self.tag}:ownership-adopted"

    @property
    def reconcile_last(self) -> str:
        """STRING: JSON ``dnc.reconcile.report.ReconcileReport`` of the last reconciliation
        (for ``dnc-sync status`` and ``/metrics``). No TTL (one small value)."""
        return f"{self.tag}:reconcile-last"

    @property
    def dead_letters(self) -> str:
        """HASH: E.164 -> JSON {reason, event, deadAtMs} of numbers CXone refused for good. No
        TTL: they stay until requeued."""
        return f"{self.tag}:dead-letters"

    @property
    def deferred(self) -> str:
        """ZSET: member = E.164 waiting out a retry backoff after a temporary failure, score =
        when it may be claimed again (UTC ms); the claim puts due ones back in ``pending``. No
        TTL: a member leaves when claimed again, applied or dead-lettered."""
        return f"{self.tag}:deferred"

    @property
    def retry_state(self) -> str:
        """HASH: E.164 -> ``"<attempts>:<waiting since ms>:<first counted failure ms, 0 before
        one>"`` of a number that failed temporarily (UTC ms); deleted when it is applied or
        dead-lettered."""
        return f"{self.tag}:retry-state"

    @property
    def warnings(self) -> str:
        """HASH: ``"<field>:<reason>"`` -> how many recorded events (duplicates not counted)
        had that optional field dropped (an opt-out kept without it) or that field read with
        an adjustment (``timestamp:after_receipt``, ``timestamp:no_time_zone``...). No TTL:
        counts since the key was last deleted."""
        return f"{self.tag}:warnings"

    @property
    def naive_times(self) -> str:
        """HASH: sender (``bearer-<n>``/``hmac-<n>``: the position of the credential in its
        setting, ``unknown`` without authentication, ``import``) -> how many recorded events
        it sent with a timestamp without a time zone. No TTL, like ``warnings``."""
        return f"{self.tag}:naive-times"

    def clamped(self, event_id: str) -> str:
        """STRING per idempotency key of an event whose time was after receipt ->
        ``"<E.164>|<action>|<sent ms>|<recorded ms>"`` (UTC ms): the receipt time its first
        delivery was recorded at, so a retry (clamped to a later receipt) is the same event.
        TTL = idempotency TTL."""
        return f"{self.tag}:clamped:{event_id}"

    def event_id(self, event_id: str) -> str:
        """STRING per idempotency key -> the event fingerprint; TTL = idempotency TTL
        (settings, default 7 days). Written before ``ids`` replaced it; still read (as a
        lookup of the id) until the last one expires."""
        return f"{self.tag}:event-id:{event_id}"

    @property
    def ids_width(self) -> str:
        """STRING: the width (ms) of the idempotency buckets (``ids``), set once (SET NX) by
        the first store that records a caller's id, from its TTL; every store reads it, so a
        changed ``DNC_REDIS_IDEMPOTENCY_TTL_S`` (or a rolling deploy with two values) still
        finds the ids already kept. No TTL."""
        return f"{self.tag}:ids-width"

    def ids(self, width_ms: int, index: int, shard: str) -> str:
        """HASH: 16-byte BLAKE2b of an idempotency key -> 16-byte BLAKE2b of the event's
        fingerprint, for the ids first used in ``[index * width_ms, (index + 1) * width_ms)``
        (UTC ms) whose hash starts with ``shard`` (3 hex digits). PEXPIREAT = the bucket's
        start plus two widths plus the idempotency TTL (``dnc.state.IdBuckets``). Only ids
        that need it: a caller's, or one derived from a time after receipt."""
        return f"{self.tag}:ids:{width_ms}:{index}:{shard}"
