"""The receiver as a plain ASGI callable: routing, lifespan, and the event request pipeline.

``POST /v1/events`` (alias ``/webhook``): authenticate (a signature once the body is read),
read the body under a cap and a deadline, check content type, decode, validate and normalise
(``dnc.intake``), record atomically in Redis (``dnc.store``), and only then answer 202. Every
refusal has its own status and a JSON body naming the reason, and is appended to the rejected
stream. Redis trouble is a 503 with Retry-After, so CXone's automatic retry delivers the event
again. What is refused before the app (bad HTTP, slow or oversize heads) is
``receiver.protocol``'s.

An opt-out for a number whose subscriber has other E.164 forms is recorded under each of them
in the same script call as the event itself (``AcceptedEvent.events``,
``EventStore.record_group``): the answer is the event's own status, with ``aliases`` listing
each other form and what recording it there did.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Engine

from dnc.audit.lag import backlog, lag_reason, oldest_age_s
from dnc.errors import EventValidationError, FieldProblem, StoreError, StoreUnavailable
from dnc.intake import AcceptedEvent, IntakePolicy, build_event, under_derived_id
from dnc.keys import RedisKeys
from dnc.masking import mask_number, redact
from dnc.reconcile.report import load_last
from dnc.redis_policy import EvictionPolicyError, require_noeviction
from dnc.settings import AuditSettings, ReceiverSettings, RedisSettings
from dnc.store import EventStore, RecordStatus, StoreLimits, open_redis
from receiver.asgi import (
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    Receive,
    Scope,
    Send,
    collect_headers,
    read_body,
    send_bytes,
    send_json,
)
from receiver.auth import (
    SIGNATURE_HEADER,
    SIGNATURE_TIMESTAMP_HEADER,
    Authenticator,
    refusal_reason,
)
from receiver.batch_payload import BATCH_PATH
from receiver.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from receiver.metrics import ReceiverMetrics
from receiver.numbers import NUMBERS_PREFIX, NumberReads
from receiver.openapi import EVENT_PATHS, build_document
from receiver.payload import (
    DuplicateField,
    MalformedBody,
    UnsupportedMediaType,
    decode_fields,
    media_type,
)

log = logging.getLogger("dnc.receiver")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one event request ended: HTTP ``status`` and JSON ``body``, the metrics labels
    ``outcome``/``reason``, extra ``headers``, and log-safe ``log_fields``."""

    status: int
    body: dict[str, Any]
    outcome: str
    reason: str = ""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    log_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuthenticatedPost:
    """A POST whose caller authenticated (``ReceiverApp.authenticate_post``): ``sender``
    (``bearer-<n>``, ``hmac-<n>``), the request's ``headers`` of interest (lower-case names)
    and its whole ``body``."""

    sender: str
    headers: Mapping[bytes, bytes]
    body: bytes


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What ``receiver.protocol`` enforces on a connection: ``header_timeout_s`` seconds to
    send a request line and headers, ``max_header_bytes`` bytes for them, and
    ``body_timeout_s`` seconds for the rest of a body this app answered before reading it."""

    header_timeout_s: float
    max_header_bytes: int
    body_timeout_s: float


class ConfigurationError(ValueError):
    """The receiver's settings cannot work together (raised at construction)."""


class ReceiverApp:
    """The ASGI application. Build once per process with settings; pass ``store`` to share an
    existing ``EventStore`` (tests), otherwise one is opened at lifespan start-up (or on the
    first request when the server runs no lifespan) and closed at shutdown. ``audit`` (default:
    from ``DNC_AUDIT_*``) and ``audit_engine`` serve ``GET /v1/numbers/{number}``
    (``receiver.numbers``), which always needs an intake bearer or a read secret, even with
    ``auth_disabled``."""

    def __init__(
        self,
        settings: ReceiverSettings,
        policy: IntakePolicy,
        redis_settings: RedisSettings,
        store: EventStore | None = None,
        *,
        audit: AuditSettings | None = None,
        audit_engine: Engine | None = None,
    ) -> None:
        if not settings.auth_disabled and not (settings.bearer_secrets or settings.hmac_secrets):
            raise ConfigurationError(
                "no DNC_RECEIVER_BEARER_SECRETS or DNC_RECEIVER_HMAC_SECRETS configured; set "
                "one, or set DNC_RECEIVER_AUTH_DISABLED=true to run without authentication"
            )
        self._settings = settings
        self._policy = policy
        self._redis_settings = redis_settings
        self._store = store
        self._owns_store = store is None
        self._auth = Authenticator(
            [s.get_secret_value().encode() for s in settings.bearer_secrets],
            [s.get_secret_value().encode() for s in settings.hmac_secrets],
            settings.signature_window_s,
            disabled=settings.auth_disabled,
        )
        self.metrics = ReceiverMetrics()
        audit = audit or AuditSettings()
        self._audit_settings = audit
        self._numbers = NumberReads(
            audit,
            [s.get_secret_value().encode() for s in settings.bearer_secrets],
            policy.default_region,
            retry_after_s=settings.retry_after_s,
            metrics=self.metrics,
            engine=audit_engine,
        )
        self._openapi = to_json(build_document())
        self._retry_after = ((b"retry-after", str(settings.retry_after_s).encode()),)
        from receiver.batch import BatchEvents  # receiver.batch builds on this module

        self._batch = BatchEvents(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point: ``http`` and ``lifespan`` scopes; WebSockets are refused."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":  # refused before the handshake: HTTP 403
            await send({"type": "websocket.close", "code": 1008})

    @property
    def connection_limits(self) -> ConnectionLimits:
        """What ``receiver.protocol`` enforces before a request reaches this app."""
        settings = self._settings
        return ConnectionLimits(
            settings.header_timeout_s, settings.max_header_bytes, settings.body_timeout_s
        )

    def connection_refused(self, status: int, error: str) -> None:
        """Count and log a request that ``receiver.protocol`` refused before it reached this
        app (not valid HTTP, headers over the cap or too slow). It is not recorded in the
        rejected stream: nothing of it was authenticated or even parsed."""
        self.metrics.requests.labels("rejected", error).inc()
        log.warning(
            "request refused before the app", extra={"fields": {"status": status, "reason": error}}
        )

    # -- lifespan ---------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the Redis pool (if not injected) and say how the receiver is configured."""
        if self._settings.auth_disabled:
            log.warning(
                "authentication is disabled (DNC_RECEIVER_AUTH_DISABLED=true): anyone "
                "who can reach this port can change DNC state"
            )
        store = self._get_store()
        try:
            await store.ping()
        except StoreError:
            log.warning(
                "redis is not reachable at start-up; events get 503 until it is",
                extra={"fields": {"namespace": store.keys.namespace}},
            )

    async def shutdown(self) -> None:
        """Close the Redis pool this app opened and flush buffered log lines."""
        if self._owns_store and self._store is not None:
            await self._store.close()
            self._store = None
        self._numbers.close()
        for handler in log.handlers:
            handler.flush()

    def _get_store(self) -> EventStore:
        if self._store is None:
            client = open_redis(self._redis_settings)
            self._store = EventStore(
                client,
                RedisKeys(self._redis_settings.namespace),
                StoreLimits.from_settings(self._redis_settings),
            )
        return self._store

    # -- routing ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path in EVENT_PATHS:
            await self._events(scope, receive, send)
        elif path == BATCH_PATH:
            await self._batch.handle(scope, receive, send)
        elif path.startswith(NUMBERS_PREFIX):
            await self._number(scope, send)
        elif scope["method"] not in ("GET", "HEAD") and path in _READ_PATHS:
            outcome = await self._reject(
                scope, 405, "method_not_allowed", "use GET", headers=((b"allow", b"GET"),)
            )
            await self._finish(send, outcome, time.perf_counter())
        elif path == "/healthz":
            await send_json(send, 200, {"status": "alive"})
        elif path == "/readyz":
            await self._ready(send)
        elif path == "/metrics":
            await self._observe_archive()
            await send_bytes(send, 200, self.metrics.render(), METRICS_CONTENT_TYPE)
        elif path == "/openapi.json":
            await send_bytes(send, 200, self._openapi, b"application/json")
        else:
            outcome = await self._reject(scope, 404, "not_found", "no such path")
            await self._finish(send, outcome, time.perf_counter())

    async def _observe_archive(self) -> None:
        """Set the archive gauges from Redis before a scrape; a Redis failure leaves the last
        values and is counted (the scrape still answers)."""
        store = self._get_store()
        try:
            waiting = await backlog(store._client, store.keys)
        except StoreError:
            self.metrics.redis_errors.labels("unavailable").inc()
            return
        oldest = oldest_age_s(waiting, int(time.time() * 1000))
        entries = sum(count for count, _ in waiting.values())
        audit = self._audit_settings
        why = lag_reason(entries, oldest, audit.archive_lag_max_entries, audit.archive_lag_max_s)
        self.metrics.observe_archive(waiting, oldest, why is not None)
        try:
            last = await load_last(store._client, store.keys)
        except StoreError:
            self.metrics.redis_errors.labels("unavailable").inc()
            return
        if last is not None:
            self.metrics.observe_reconcile(last.drift, last.finished_ms, last.complete)

    async def _ready(self, send: Send) -> None:
        """Ready when Redis answers and will not evict keys (``dnc.redis_policy``)."""
        store = self._get_store()
        try:
            await store.ping()
            await require_noeviction(
                store._client, allow_eviction=self._redis_settings.allow_eviction, logger=log
            )
        except EvictionPolicyError as exc:
            log.error("not ready: %s", exc)
            await send_json(send, 503, _error("redis_eviction_policy", str(exc)))
            return
        except StoreError:
            self.metrics.redis_errors.labels("unavailable").inc()
            await send_json(
                send, 503, _error("redis_unavailable", "redis is not reachable"), self._retry_after
            )
            return
        await send_json(send, 200, {"status": "ready"})

    async def _number(self, scope: Scope, send: Send) -> None:
        """``GET /v1/numbers/{number}`` (``receiver.numbers``); refused as intake refuses, and
        always authenticated (personal data: ``auth_disabled`` does not open it). The route's
        422 is kept in the authenticated rejected stream with its sender, without the number
        field (it belongs to no number's timeline)."""
        started = time.perf_counter()
        found, repeated = collect_headers(scope, _AUTHORIZATION)
        sender = self._numbers.sender(found.get(b"authorization"))
        doubled = sender is not None and b"authorization" in repeated
        if scope["method"] != "GET":
            outcome = await self._reject(
                scope, 405, "method_not_allowed", "use GET", headers=((b"allow", b"GET"),)
            )
        elif sender is None or doubled:
            outcome = await self._unauthorized(scope, found, doubled)
        else:
            reader = sender

            async def keep(status: int, payload: dict[str, Any]) -> bool:
                # A GET has no body: b"" marks the refusal as an authenticated caller's.
                return await self._keep_rejection(scope, status, payload, b"", {"sender": reader})

            store = self._get_store()
            await self._numbers.answer(scope, send, store._client, store.keys, sender, keep)
            return
        await self._finish(send, outcome, started)

    # -- the event pipeline -----------------------------------------------------------------

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.answer(scope, send, self._process(scope, receive))

    async def answer(
        self,
        scope: Scope,
        send: Send,
        process: Awaitable[Outcome],
        *,
        message: str = "event request",
        per_event: bool = False,
    ) -> None:
        """Run a write route's ``process`` and answer its outcome (``_finish``, log line
        ``message``); a client gone is counted and not answered, an exception is a 500.
        ``per_event``: a 202/207's events were counted one by one, so its request is not
        observed again in the latency histogram (the batch route)."""
        started = time.perf_counter()
        try:
            outcome = await process
        except ClientGone:
            self.metrics.observe("client_gone", "", time.perf_counter() - started)
            return
        except Exception:
            log.exception("internal error", extra={"fields": {"path": scope["path"]}})
            outcome = Outcome(
                500, _error("internal_error", "internal error"), "error", "internal_error"
            )
        observe = not (per_event and outcome.status in (202, 207))
        await self._finish(send, outcome, started, message, observe=observe)

    async def _process(self, scope: Scope, receive: Receive) -> Outcome:
        post = await self.authenticate_post(scope, receive, self._settings.max_body_bytes)
        if isinstance(post, Outcome):
            return post
        # Only an authenticated caller learns what the body should look like.
        try:
            kind, charset = media_type(
                post.headers.get(b"content-type"), post.headers.get(b"content-encoding")
            )
        except UnsupportedMediaType as exc:
            # Authenticated: keep the body for audit (and answer 503 if it cannot be kept).
            return await self._reject(
                scope, 415, "unsupported_media_type", str(exc), body=post.body, sender=post.sender
            )
        return await self._accept(scope, kind, charset, post.body, post.sender)

    async def authenticate_post(
        self, scope: Scope, receive: Receive, max_body_bytes: int
    ) -> AuthenticatedPost | Outcome:
        """The front of every write route (``/v1/events``, ``/v1/events:batch``): 405 unless
        POST; the sender from a bearer secret (two ``Authorization`` headers: none), else from
        an HMAC signature over the body; the body read under ``max_body_bytes`` and the body
        deadline. Returns the refusal (405, 401, 413, 408) as an ``Outcome``."""
        if scope["method"] != "POST":
            return await self._reject(
                scope, 405, "method_not_allowed", "use POST", headers=((b"allow", b"POST"),)
            )
        found, repeated = collect_headers(scope, _EVENT_HEADERS)
        sender = self._auth.bearer_sender(found.get(b"authorization"))
        doubled = sender is not None and not self._auth.disabled and b"authorization" in repeated
        if doubled:
            sender = None  # two Authorization headers: which one counts is ambiguous
        if sender is None and SIGNATURE_HEADER not in found:
            return await self._unauthorized(scope, found, doubled)
        body = await self._read(scope, receive, max_body_bytes)
        if isinstance(body, Outcome):
            return body
        if sender is None:
            sender = self._auth.signature_sender(
                found.get(SIGNATURE_HEADER),
                found.get(SIGNATURE_TIMESTAMP_HEADER),
                body,
                time.time(),
            )
            if sender is None:
                return await self._unauthorized(scope, found, doubled)
        return AuthenticatedPost(sender, found, body)

    async def _read(self, scope: Scope, receive: Receive, cap: int) -> bytes | Outcome:
        """The body, or the refusal of one over ``cap`` bytes (413) or too slow (408)."""
        settings = self._settings
        try:
            return await read_body(scope, receive, cap, settings.body_timeout_s)
        except BodyTooLarge:
            return await self._reject(scope, 413, "body_too_large", f"body is over {cap} bytes")
        except BodyTimeout:
            return await self._reject(
                scope,
                408,
                "body_timeout",
                f"the body did not arrive within {settings.body_timeout_s:g} s",
                headers=_CLOSE,  # the rest of a trickled body is not worth reading
            )

    async def _unauthorized(
        self, scope: Scope, found: Mapping[bytes, bytes], doubled: bool
    ) -> Outcome:
        """401 saying nothing more; the rejected stream and the log get which check failed."""
        why = refusal_reason(
            found.get(b"authorization"),
            found.get(SIGNATURE_HEADER),
            found.get(SIGNATURE_TIMESTAMP_HEADER),
            time.time(),
            self._settings.signature_window_s,
            repeated_authorization=doubled,
        )
        return await self._reject(
            scope,
            401,
            "unauthorized",
            "missing or wrong credentials",
            headers=((b"www-authenticate", b"Bearer"),),
            audit={"authReason": why},
        )

    async def _accept(
        self, scope: Scope, kind: str, charset: str, body: bytes, sender: str
    ) -> Outcome:
        try:
            decoded = decode_fields(kind, charset, body)
        except MalformedBody as exc:
            return await self._reject(
                scope, 400, "malformed_body", str(exc), body=body, sender=sender
            )
        except DuplicateField as exc:
            problem = FieldProblem(exc.field, "duplicate", str(exc))
            return await self._reject(
                scope,
                422,
                "invalid_event",
                "one or more fields are missing or invalid",
                problems=[problem],
                body=body,
                sender=sender,
            )
        fields = decoded.fields
        try:
            now_ms = int(time.time() * 1000)
            accepted = build_event(fields, self._policy, now_ms, sender=sender)
        except EventValidationError as exc:
            return await self._reject(
                scope,
                422,
                "invalid_event",
                "one or more fields are missing or invalid",
                problems=exc.problems,
                body=body,
                raw_number=fields.get("phoneNumber"),
                sender=sender,
            )
        return await self._record(scope, accepted, decoded.warnings, body, sender)

    async def _record(
        self,
        scope: Scope,
        accepted: AcceptedEvent,
        body_warnings: tuple[str, ...],
        body: bytes,
        sender: str,
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
            status, *alias_statuses = await self._get_store().record_group(accepted.events)
            rekeyed = under_derived_id(accepted) if status is RecordStatus.ID_CONFLICT else None
            if rekeyed is not None:  # an opt-out is kept whatever its eventId says
                accepted, event = rekeyed, rekeyed.event
                fields["eventId"] = event.eventId
                status, *alias_statuses = await self._get_store().record_group(accepted.events)
        except StoreError as exc:
            return self._store_trouble(exc, fields)
        if status is RecordStatus.ID_CONFLICT:
            problem = FieldProblem(
                "eventId", "reused", "eventId was already used for a different event"
            )
            return await self._reject(
                scope,
                409,
                "id_conflict",
                problem.message,
                problems=[problem],
                body=body,
                raw_number=event.e164,
                sender=sender,
            )
        if status is not RecordStatus.DUPLICATE:
            await self._count_warnings(accepted, sender)
        payload: dict[str, Any] = {
            "status": status.value,
            "eventId": event.eventId,
            "warnings": [*body_warnings, *accepted.warnings],
        }
        if accepted.dropped:
            payload["dropped"] = [p.as_dict() for p in accepted.dropped]
        if accepted.notes:
            payload["notes"] = [p.as_dict() for p in accepted.notes]
        if accepted.alias_events:
            payload["aliases"] = [
                {"e164": alias.e164, "status": alias_status.value}
                for alias, alias_status in zip(accepted.alias_events, alias_statuses, strict=True)
            ]
        return Outcome(202, payload, status.value, "", (), fields)

    async def _count_warnings(self, accepted: AcceptedEvent, sender: str) -> None:
        """Count a recorded event's dropped fields and adjusted readings in the metrics and
        in Redis for ``dnc-sync status``; the event is recorded either way (a counter that
        cannot be written is logged, not a reason to refuse)."""
        reasons = accepted.warning_reasons
        if not reasons:
            return
        for problem in (*accepted.dropped, *accepted.notes):
            self.metrics.event_warnings.labels(problem.field, problem.reason).inc()
        naive = {sender: 1} if accepted.naive_time else {}
        if naive:
            self.metrics.naive_times.labels(sender).inc()
        try:
            await self._get_store().count_warnings(Counter(reasons), naive)
        except StoreError:
            self.metrics.redis_errors.labels("unavailable").inc()
            log.error("could not count an event's warnings in redis")

    def _store_trouble(self, exc: StoreError, fields: dict[str, Any]) -> Outcome:
        """503 with Retry-After: CXone's automatic retry will deliver the event again."""
        kind = "unavailable" if isinstance(exc, StoreUnavailable) else "error"
        self.metrics.redis_errors.labels(kind).inc()
        error = f"redis_{kind}"
        return Outcome(
            503, _error(error, "try again later"), "unavailable", error, self._retry_after, fields
        )

    # -- refusals and the end of a request --------------------------------------------------

    async def _reject(
        self,
        scope: Scope,
        status: int,
        error: str,
        message: str,
        *,
        problems: list[FieldProblem] | None = None,
        body: bytes | None = None,
        raw_number: object = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        audit: Mapping[str, str] | None = None,
        sender: str | None = None,
    ) -> Outcome:
        """Refuse with ``status``/``error``/``message`` (and ``problems``), keeping the refusal
        in the rejected stream with ``audit`` fields beside it (never sent to the caller) and
        the authenticated ``sender`` (``StoredEvent.sender``) when known."""
        payload = _error(error, message)
        if problems:
            payload["problems"] = [p.as_dict() for p in problems]
        reason = ",".join(sorted({p.reason for p in problems})) if problems else error
        number = mask_number(raw_number if isinstance(raw_number, str) else None)
        kept_fields = dict(audit or {})
        if sender is not None:
            kept_fields["sender"] = sender
        if isinstance(raw_number, str):  # the audit store looks rejections up by number
            kept_fields["phoneNumber"] = raw_number[:64]
        kept = await self._keep_rejection(scope, status, payload, body, kept_fields)
        if not kept and body is not None:
            # An authenticated refusal that cannot be kept for audit: ask the sender to retry
            # (Studio does) rather than let the event vanish with a 4xx.
            return self._store_trouble(
                StoreUnavailable("rejected stream unavailable"), {"number": number}
            )
        return Outcome(
            status,
            payload,
            "rejected",
            f"{error}:{reason}" if problems else reason,
            headers,
            {"number": number, **(audit or {})},
        )

    async def _keep_rejection(
        self,
        scope: Scope,
        status: int,
        payload: dict[str, Any],
        body: bytes | None,
        audit: Mapping[str, str] | None = None,
    ) -> bool:
        """Append the refusal to the rejected stream; the body excerpt only when the caller
        authenticated (an unauthenticated body is not trusted enough to keep). Returns
        whether Redis took it."""
        entry = {
            "status": str(status),
            "error": str(payload["error"]),
            "detail": to_json(payload.get("problems", payload["message"])).decode(),
            "method": str(scope["method"]),
            "path": str(scope["path"])[:256],
            "receivedMs": str(int(time.time() * 1000)),
            **(audit or {}),
        }
        if body is not None:
            cap = self._settings.rejected_excerpt_bytes
            entry["body"] = body[:cap].decode("utf-8", "replace")
            entry["bodyTruncated"] = str(len(body) > cap).lower()
        try:
            # A kept body means an authenticated caller; the rest go to a stream of their own.
            await self._get_store().record_rejection(entry, authenticated=body is not None)
        except StoreError:
            self.metrics.redis_errors.labels("unavailable").inc()
            log.error(
                "could not keep a rejection in redis",
                extra={"fields": {"status": status, "error": payload["error"]}},
            )
            return False
        return True

    async def _finish(
        self,
        send: Send,
        outcome: Outcome,
        started: float,
        message: str = "event request",
        *,
        observe: bool = True,
    ) -> None:
        await send_json(send, outcome.status, outcome.body, outcome.headers)
        elapsed = time.perf_counter() - started
        if observe:
            self.metrics.observe(outcome.outcome, outcome.reason, elapsed)
        level = _LOG_LEVELS[outcome.status // 100]
        if log.isEnabledFor(level):
            fields = {
                "status": outcome.status,
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "latency_ms": round(elapsed * 1000, 3),
                **outcome.log_fields,
            }
            log.log(level, message, extra={"fields": fields})


# One line per request outcome: accepted at INFO, refused (4xx) at WARNING, our or Redis's
# trouble (5xx) at ERROR; so WARNING keeps every problem and drops the happy path.
_LOG_LEVELS = {2: logging.INFO, 4: logging.WARNING, 5: logging.ERROR}
_EVENT_HEADERS = frozenset(
    {
        b"authorization",
        b"content-type",
        b"content-encoding",
        SIGNATURE_HEADER,
        SIGNATURE_TIMESTAMP_HEADER,
    }
)
_AUTHORIZATION = frozenset({b"authorization"})
_READ_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_CLOSE = ((b"connection", b"close"),)


def _error(error: str, message: str) -> dict[str, Any]:
    return {"error": error, "message": message}
