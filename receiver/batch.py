"""``POST /v1/events:batch``: many events in one request, each judged as ``POST /v1/events``
judges one.

The request is authenticated as a single event's (a bearer secret, or an HMAC signature over
the whole body), its body read under ``DNC_RECEIVER_MAX_BATCH_BODY_BYTES`` and the body
deadline, its content type checked once the caller is authenticated (``application/json``: an
array of event objects; ``application/x-ndjson``: one object per line), and its events
counted against ``DNC_RECEIVER_MAX_BATCH_EVENTS``. Then every event is judged and the
accepted ones recorded (``receiver.batch_events``); the answer comes only once Redis holds
every accepted event and every refusal:

- 202 ``{"results": [...], "accepted": n, "rejected": 0}`` when every event was accepted;
- 207, the same body, when any was refused (each refusal in ``results`` with its
  ``httpStatus``, 422 or 409, and kept in the rejected stream with the event's own JSON);
- 503 with Retry-After for the whole batch when Redis fails, for the events or for keeping a
  refusal (a resend is safe: what was recorded is found as ``duplicate``);
- whole-request refusals as a single event's: 401, 405, 408, 413 (``body_too_large``, or
  ``too_many_events`` with ``limit``), 415, 400 ``malformed_body``, 422 ``empty_batch``.

One log line per batch, with counts only (no number, no eventId).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dnc.errors import StoreError, StoreUnavailable
from dnc.intake import IntakePolicy
from dnc.settings import ReceiverSettings
from receiver.admission import Admission
from receiver.asgi import Receive, Scope, Send
from receiver.batch_events import judge, record, rejection_entries
from receiver.batch_payload import (
    EmptyBatch,
    TooManyEvents,
    batch_media_type,
    split_batch,
)
from receiver.event_answers import warning_counts
from receiver.lazy_store import LazyStore
from receiver.metrics import ReceiverMetrics
from receiver.outcome import Outcome
from receiver.payload import MalformedBody, UnsupportedMediaType
from receiver.rejections import Rejections
from receiver.responses import answer

log = logging.getLogger("dnc.receiver")


class BatchEvents:
    """The batch route of one app: bodies up to ``settings.max_batch_body_bytes`` holding at
    most ``settings.max_batch_events`` events, each read with ``policy``; the request admitted
    by ``admission``, the events recorded through ``stores``, refusals kept through
    ``rejections``, counted in ``metrics``. Build once per app; ``handle`` serves one
    request."""

    def __init__(
        self,
        settings: ReceiverSettings,
        policy: IntakePolicy,
        stores: LazyStore,
        admission: Admission,
        rejections: Rejections,
        metrics: ReceiverMetrics,
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._stores = stores
        self._admission = admission
        self._rejections = rejections
        self._metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request to the batch path (any method: not POST is 405)."""
        process = self._process(scope, receive)
        await answer(scope, send, self._metrics, process, message="batch request", per_event=True)

    async def _process(self, scope: Scope, receive: Receive) -> Outcome:
        limit = self._settings.max_batch_body_bytes
        post = await self._admission.authenticate_post(scope, receive, limit)
        if isinstance(post, Outcome):
            return post
        try:
            kind, charset = batch_media_type(
                post.headers.get(b"content-type"), post.headers.get(b"content-encoding")
            )
        except UnsupportedMediaType as exc:
            return await self._rejections.reject(
                scope, 415, "unsupported_media_type", str(exc), body=post.body, sender=post.sender
            )
        return await self._events(scope, kind, charset, post.body, post.sender)

    async def _events(
        self, scope: Scope, kind: str, charset: str, body: bytes, sender: str
    ) -> Outcome:
        reject = self._rejections.reject
        limit = self._settings.max_batch_events
        try:
            batch = split_batch(kind, charset, body, limit)
        except MalformedBody as exc:
            return await reject(scope, 400, "malformed_body", str(exc), body=body, sender=sender)
        except EmptyBatch as exc:
            return await reject(scope, 422, "empty_batch", str(exc), body=body, sender=sender)
        except TooManyEvents as exc:
            outcome = await reject(
                scope, 413, "too_many_events", str(exc), body=body, sender=sender
            )
            if outcome.status == 413:
                outcome.body.update({"limit": exc.limit, "events": exc.count})
            return outcome
        now_ms = int(time.time() * 1000)
        judged, accepted = judge(batch, self._policy, now_ms, sender)
        counts: dict[str, Any] = {"events": len(batch.items), "sender": sender}
        store = self._stores.get()
        try:
            fresh = await record(store, judged, accepted)
        except StoreError as exc:
            return self._rejections.store_trouble(exc, counts)
        reasons, naive = warning_counts(fresh, sender, self._metrics)
        try:
            await store.count_warnings(reasons, naive)
        except StoreError:
            self._metrics.redis_errors.labels("unavailable").inc()
            log.error("could not count a batch's warnings in redis")
        if judged.refusals:
            base = {
                "method": str(scope["method"]),
                "path": str(scope["path"])[:256],
                "receivedMs": str(now_ms),
                "sender": sender,
            }
            excerpt = self._settings.rejected_excerpt_bytes
            entries = rejection_entries(batch, judged.refusals, base, excerpt)
            try:
                await store.record_rejections(entries)
            except StoreError:
                # A refusal that cannot be kept for audit: the sender resends the batch.
                trouble = StoreUnavailable("rejected stream unavailable")
                return self._rejections.store_trouble(trouble, counts)
        for (name, reason), count in judged.outcomes.items():
            self._metrics.requests.labels(name, reason).inc(count)
        status = 207 if judged.refusals else 202
        statuses = judged.outcomes
        counts |= {
            "accepted": judged.accepted,
            "rejected": len(judged.refusals),
            **{
                name: sum(n for (o, _), n in statuses.items() if o == name)
                for name in ("queued", "duplicate", "superseded")
            },
        }
        return Outcome(status, judged.body(), "batch", "", (), counts)
