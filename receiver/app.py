"""The receiver as a plain ASGI callable: lifespan and routing.

``POST /v1/events`` (alias ``/webhook``): authenticate (``receiver.admission``), then judge
and record the event (``receiver.event_intake``); ``POST /v1/events:batch`` is
``receiver.batch``'s and ``GET /v1/numbers/{number}`` ``receiver.numbers``'. Every refusal
has its own status and a JSON body naming the reason, and is appended to the rejected stream
(``receiver.rejections``). Redis trouble is a 503 with Retry-After, so CXone's automatic retry
delivers the event again. Each answer is written, observed and logged by
``receiver.responses``. What is refused before the app (bad HTTP, slow or oversize heads) is
``receiver.protocol``'s.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Engine

from dnc.errors import StoreError
from dnc.intake import IntakePolicy
from dnc.settings import AuditSettings, ReceiverSettings, RedisSettings
from dnc.store import EventStore
from receiver.admission import Admission, AuthenticatedPost
from receiver.asgi import Receive, Scope, Send, collect_headers, send_bytes, send_json
from receiver.batch import BatchEvents
from receiver.batch_payload import BATCH_PATH
from receiver.event_intake import EventIntake
from receiver.lazy_store import LazyStore
from receiver.limits import ConnectionLimits
from receiver.metrics import ReceiverMetrics
from receiver.numbers import NUMBERS_PREFIX, NumberReads
from receiver.openapi import EVENT_PATHS, build_document
from receiver.outcome import Outcome
from receiver.probes import Probes
from receiver.rejections import Rejections
from receiver.responses import answer, finish

__all__ = [
    "AuthenticatedPost",
    "ConfigurationError",
    "ConnectionLimits",
    "Outcome",
    "ReceiverApp",
]

log = logging.getLogger("dnc.receiver")

_AUTHORIZATION = frozenset({b"authorization"})
_READ_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_ALLOW_GET = ((b"allow", b"GET"),)
_ALLOW_READ = ((b"allow", b"GET, HEAD"),)  # the read paths answer HEAD as GET


class ConfigurationError(ValueError):
    """The receiver's settings cannot work together (raised at construction)."""


class ReceiverApp:
    """The ASGI application. Build once per process with settings; pass ``store`` to share an
    existing ``EventStore`` (tests), otherwise one is opened at lifespan start-up (or on the
    first request when the server runs no lifespan) and closed at shutdown. ``audit`` (default:
    from ``DNC_AUDIT_*``) and ``audit_engine`` serve ``GET /v1/numbers/{number}``
    (``receiver.numbers``), which always needs an intake bearer or a read secret, even with
    ``auth_disabled``. Raises ``ConfigurationError`` when no intake secret is set and
    authentication is not disabled."""

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
        self._stores = LazyStore(redis_settings, store)
        self.metrics = metrics = ReceiverMetrics()
        self._rejections = rejections = Rejections(
            self._stores,
            metrics,
            excerpt_bytes=settings.rejected_excerpt_bytes,
            retry_after_s=settings.retry_after_s,
        )
        self._admission = admission = Admission(settings, rejections)
        parts = (settings, policy, self._stores, admission, rejections, metrics)
        self._intake = EventIntake(*parts)
        self._batch = BatchEvents(*parts)
        audit = audit or AuditSettings()
        self._probes = Probes(
            self._stores,
            metrics,
            audit,
            allow_eviction=redis_settings.allow_eviction,
            retry_after=rejections.retry_after,
        )
        self._numbers = NumberReads(
            audit,
            [s.get_secret_value().encode() for s in settings.bearer_secrets],
            policy.default_region,
            retry_after_s=settings.retry_after_s,
            metrics=metrics,
            engine=audit_engine,
        )
        self._openapi = to_json(build_document())

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
        store = self._stores.get()
        try:
            await store.ping()
        except StoreError:
            log.warning(
                "redis is not reachable at start-up; events get 503 until it is",
                extra={"fields": {"namespace": store.keys.namespace}},
            )

    async def shutdown(self) -> None:
        """Close the Redis pool this app opened and flush buffered log lines."""
        await self._stores.close()
        self._numbers.close()
        for handler in log.handlers:
            handler.flush()

    # -- routing ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path in EVENT_PATHS:
            await answer(scope, send, self.metrics, self._intake.process(scope, receive))
        elif path == BATCH_PATH:
            await self._batch.handle(scope, receive, send)
        elif path.startswith(NUMBERS_PREFIX):
            await self._number(scope, send)
        elif scope["method"] not in ("GET", "HEAD") and path in _READ_PATHS:
            outcome = await self._rejections.reject(
                scope, 405, "method_not_allowed", "use GET", headers=_ALLOW_READ
            )
            await finish(send, self.metrics, outcome, time.perf_counter())
        elif path == "/healthz":
            await send_json(send, 200, {"status": "alive"})
        elif path == "/readyz":
            await self._probes.ready(send)
        elif path == "/metrics":
            await self._probes.scrape(send)
        elif path == "/openapi.json":
            await send_bytes(send, 200, self._openapi, b"application/json")
        else:
            outcome = await self._rejections.reject(scope, 404, "not_found", "no such path")
            await finish(send, self.metrics, outcome, time.perf_counter())

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
            outcome = await self._rejections.reject(
                scope, 405, "method_not_allowed", "use GET", headers=_ALLOW_GET
            )
        elif sender is None or doubled:
            outcome = await self._admission.unauthorized(scope, found, doubled)
        else:
            reader, rejections = sender, self._rejections

            async def keep(status: int, payload: dict[str, Any]) -> bool:
                # A GET has no body: b"" marks the refusal as an authenticated caller's.
                return await rejections.keep(scope, status, payload, b"", {"sender": reader})

            store = self._stores.get()
            await self._numbers.answer(scope, send, store._client, store.keys, sender, keep)
            return
        await finish(send, self.metrics, outcome, started)
