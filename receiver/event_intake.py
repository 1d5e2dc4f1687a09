"""``POST /v1/events``: one event from an authenticated request to its outcome.

Check the content type, decode, validate and normalise (``dnc.intake``), record atomically in
Redis (``dnc.store``) and only then answer 202. An opt-out for a number whose subscriber has
other E.164 forms is recorded under each of them in the same script call as the event itself
(``AcceptedEvent.events``, ``EventStore.record_group``): the answer is the event's own status,
with ``aliases`` listing each other form and what recording it there did.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dnc.errors import EventValidationError, FieldProblem, StoreError
from dnc.intake import AcceptedEvent, IntakePolicy, build_event, under_derived_id
from dnc.masking import mask_number, redact
from dnc.settings import ReceiverSettings
from dnc.store import RecordStatus
from receiver.admission import Admission, AuthenticatedPost
from receiver.asgi import Receive, Scope
from receiver.event_answers import INVALID_MESSAGE, REUSED, accepted_body, warning_counts
from receiver.lazy_store import LazyStore
from receiver.metrics import ReceiverMetrics
from receiver.outcome import Outcome
from receiver.payload import (
    DuplicateField,
    MalformedBody,
    UnsupportedMediaType,
    decode_fields,
    media_type,
)
from receiver.rejections import Rejections

log = logging.getLogger("dnc.receiver")


class EventIntake:
    """The event route of one app: bodies up to ``settings.max_body_bytes``, read with
    ``policy``, admitted by ``admission``, recorded through ``stores``, refused through
    ``rejections``, counted in ``metrics``."""

    def __init__(
        self,
        settings: ReceiverSettings,
        policy: IntakePolicy,
        stores: LazyStore,
        admission: Admission,
        rejections: Rejections,
        metrics: ReceiverMetrics,
    ) -> None:
        self._max_body_bytes = settings.max_body_bytes
        self._policy = policy
        self._stores = stores
        self._admission = admission
        self._rejections = rejections
        self._metrics = metrics

    async def process(self, scope: Scope, receive: Receive) -> Outcome:
        """Judge and record one event request; every refusal is an ``Outcome`` too (raises
        ``receiver.asgi.ClientGone`` when the caller left before its body arrived)."""
        post = await self._admission.authenticate_post(scope, receive, self._max_body_bytes)
        if isinstance(post, Outcome):
            return post
        # Only an authenticated caller learns what the body should look like.
        try:
            kind, charset = media_type(
                post.headers.get(b"content-type"), post.headers.get(b"content-encoding")
            )
        except UnsupportedMediaType as exc:
            # Authenticated: keep the body for audit (and answer 503 if it cannot be kept).
            return await self._rejections.reject(
                scope, 415, "unsupported_media_type", str(exc), body=post.body, sender=post.sender
            )
        return await self._accept(scope, kind, charset, post)

    async def _accept(
        self, scope: Scope, kind: str, charset: str, post: AuthenticatedPost
    ) -> Outcome:
        body, sender = post.body, post.sender
        try:
            decoded = decode_fields(kind, charset, body)
        except MalformedBody as exc:
            return await self._rejections.reject(
                scope, 400, "malformed_body", str(exc), body=body, sender=sender
            )
        except DuplicateField as exc:
            problem = FieldProblem(exc.field, "duplicate", str(exc))
            return await self._rejections.reject(
                scope,
                422,
                "invalid_event",
                INVALID_MESSAGE,
                problems=[problem],
                body=body,
                sender=sender,
            )
        fields = decoded.fields
        try:
            now_ms = int(time.time() * 1000)
            accepted = build_event(fields, self._policy, now_ms, sender=sender)
        except EventValidationError as exc:
            return await self._rejections.reject(
                scope,
                422,
                "invalid_event",
                INVALID_MESSAGE,
                problems=exc.problems,
                body=body,
                raw_number=fields.get("phoneNumber"),
                sender=sender,
            )
        return await self._record(scope, accepted, decoded.warnings, post)

    async def _record(
        self,
        scope: Scope,
        accepted: AcceptedEvent,
        body_warnings: tuple[str, ...],
        post: AuthenticatedPost,
    ) -> Outcome:
        event = accepted.event
        # A derived id is our own hash; a caller's id may carry a number: mask its digits.
        event_id = event.eventId if event.eventIdDerived else redact(event.eventId)
        fields: dict[str, Any] = {"eventId": event_id, "number": mask_number(event.e164)}
        if accepted.dropped:
            fields["dropped"] = ",".join(f"{p.field}:{p.reason}" for p in accepted.dropped)
        if accepted.alias_events:
            fields["aliases"] = len(accepted.alias_events)
        try:
            # One script call for the event and its alias copies: all recorded, or none.
            status, *alias_statuses = await self._stores.get().record_group(accepted.events)
            rekeyed = under_derived_id(accepted) if status is RecordStatus.ID_CONFLICT else None
            if rekeyed is not None:  # an opt-out is kept whatever its eventId says
                accepted, event = rekeyed, rekeyed.event
                fields["eventId"] = event.eventId
                status, *alias_statuses = await self._stores.get().record_group(accepted.events)
        except StoreError as exc:
            return self._rejections.store_trouble(exc, fields)
        if status is RecordStatus.ID_CONFLICT:
            return await self._id_conflict(scope, event.e164, post)
        if status is not RecordStatus.DUPLICATE:
            await self._count_warnings(accepted, post.sender)
        payload = accepted_body(accepted, status, alias_statuses, body_warnings)
        return Outcome(202, payload, status.value, "", (), fields)

    async def _id_conflict(self, scope: Scope, e164: str, post: AuthenticatedPost) -> Outcome:
        """409: the eventId was already used for a different event (``e164``: the event's
        number, kept beside the refusal). An opt-out with its caller's id never gets here: it
        is recorded under its derived id instead."""
        return await self._rejections.reject(
            scope,
            409,
            "id_conflict",
            REUSED.message,
            problems=[REUSED],
            body=post.body,
            raw_number=e164,
            sender=post.sender,
        )

    async def _count_warnings(self, accepted: AcceptedEvent, sender: str) -> None:
        """Count a recorded event's dropped fields and adjusted readings in the metrics and
        in Redis for ``dnc-sync status``; the event is recorded either way (a counter that
        cannot be written is logged, not a reason to refuse)."""
        if not (accepted.dropped or accepted.notes):
            return
        reasons, naive = warning_counts([accepted], sender, self._metrics)
        try:
            await self._stores.get().count_warnings(reasons, naive)
        except StoreError:
            self._metrics.redis_errors.labels("unavailable").inc()
            log.error("could not count an event's warnings in redis")
