"""``GET /v1/numbers/{number}``: one number's state and timeline (``dnc.audit.history``).

Read by holders of an intake bearer secret (``DNC_RECEIVER_BEARER_SECRETS``) or of a read-only
one (``DNC_AUDIT_READ_SECRETS``), compared in constant time over every secret of both lists
(``receiver.auth``), always: ``DNC_RECEIVER_AUTH_DISABLED=true`` opens event intake, never
anyone's history (with no secret of either list, every read is refused). The app refuses
anyone else with intake's 401, kept in the rejected stream. The path's number (already
URL-decoded by the server, never decoded twice) is read like intake, in ``?region=`` or the
intake policy's default region. The audit store's engine is opened on the first read and kept
for the app's life; database work runs in a worker thread.
Answers: 200 ``NumberHistory.as_dict()``, 422 for an unreadable number, region or limit (kept
in the rejected stream like every refusal of the app, without the number field, so it is in
no number's timeline), 503 with Retry-After when Redis or the audit store cannot answer (or
the store is not there or not migrated: a read never creates it). Log lines carry the number
masked (``***0123``), never whole.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from dnc.audit.database import AuditStoreNotReady, open_engine
from dnc.audit.history import DEFAULT_LIMIT, number_history, read_number
from dnc.e164 import PhoneNumberProblem, is_supported_region
from dnc.errors import FieldProblem, StoreError, StoreUnavailable
from dnc.keys import RedisKeys
from dnc.masking import mask_number
from dnc.settings import AuditSettings
from receiver.asgi import Scope, Send, send_json
from receiver.auth import Authenticator
from receiver.metrics import ReceiverMetrics

NUMBERS_PREFIX = "/v1/numbers/"
MAX_LIMIT = 1_000
"""Most timeline entries one request may ask for (``?limit=``)."""

log = logging.getLogger("dnc.receiver")

Keep = Callable[[int, dict[str, Any]], Awaitable[bool]]
"""Keeps a refusal (HTTP status, JSON body) in the rejected stream; returns whether Redis took
it (``receiver.rejections.Rejections.keep``)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One read's HTTP ``status``, JSON ``body``, extra ``headers`` and log-safe
    ``log_fields``."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[bytes, bytes], ...] = ()
    log_fields: dict[str, Any] | None = None


class NumberReads:
    """The route's state: who may read (the intake ``bearer_secrets``, raw bytes, plus
    ``settings``' read secrets, each in an authenticator of its own that is never disabled),
    the intake ``default_region``, the engine (injected, or opened from
    ``settings.database_url`` on first use and disposed by ``close``), ``retry_after_s`` for
    503s, and the app's ``metrics`` (Redis failures are counted there)."""

    def __init__(
        self,
        settings: AuditSettings,
        bearer_secrets: Sequence[bytes],
        default_region: str | None,
        *,
        retry_after_s: int,
        metrics: ReceiverMetrics,
        engine: Engine | None = None,
    ) -> None:
        self._settings = settings
        # Not the app's intake authenticator: that one lets everyone in when disabled.
        self._intake = Authenticator(bearer_secrets, [], 1)
        read = [secret.get_secret_value().encode() for secret in settings.read_secrets]
        self._readers = Authenticator(read, [], 1)
        self._region = default_region
        self._engine = engine
        self._owns_engine = engine is None
        self._retry_after = ((b"retry-after", str(retry_after_s).encode()),)
        self._metrics = metrics

    def sender(self, authorization: bytes | None) -> str | None:
        """Who ``authorization`` (``Bearer <secret>``) is: ``bearer-<n>`` (the n-th intake
        secret), ``read-<n>`` (the n-th read secret), ``None`` for anyone else, whatever
        ``DNC_RECEIVER_AUTH_DISABLED`` says. Both lists are always compared in full."""
        intake = self._intake.bearer_sender(authorization)
        reader = self._readers.bearer_sender(authorization)
        if intake is not None:
            return intake
        return None if reader is None else reader.replace("bearer-", "read-", 1)

    async def answer(
        self,
        scope: Scope,
        send: Send,
        client: aioredis.Redis,
        keys: RedisKeys,
        sender: str,
        keep: Keep | None = None,
    ) -> None:
        """Answer an authenticated ``GET /v1/numbers/{number}`` and log one line. A 422 is
        first given to ``keep`` (the rejected stream); one that cannot be kept is answered
        503 with Retry-After instead, as intake answers an authenticated refusal it cannot
        keep."""
        started = time.perf_counter()
        raw = str(scope["path"])[len(NUMBERS_PREFIX) :]
        try:
            answer = await self._read(raw, scope, client, keys)
            if answer.status == 422 and keep is not None and not await keep(422, answer.body):
                answer = self._unavailable(
                    "redis_unavailable", "the refusal cannot be kept for audit; try again later"
                )
        except Exception:
            log.exception("internal error", extra={"fields": {"path": NUMBERS_PREFIX + "{number}"}})
            answer = Answer(500, _error("internal_error", "internal error"))
        await send_json(send, answer.status, answer.body, answer.headers)
        level = _LOG_LEVELS[answer.status // 100]
        fields = {
            "status": answer.status,
            "number": mask_number(raw),
            "sender": sender,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            **(answer.log_fields or {}),
        }
        log.log(level, "number history request", extra={"fields": fields})

    async def _read(
        self, raw: str, scope: Scope, client: aioredis.Redis, keys: RedisKeys
    ) -> Answer:
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        region, limit, problems = self._options(query)
        e164 = None
        if not problems:
            try:
                e164 = read_number(raw, region)
            except PhoneNumberProblem as exc:
                problems.append(FieldProblem("number", exc.reason, str(exc)))
        if problems or e164 is None:
            body = _error("invalid_request", "the number or an option cannot be read")
            body["problems"] = [p.as_dict() for p in problems]
            return Answer(422, body, log_fields={"reason": ",".join(p.reason for p in problems)})
        try:
            found = await number_history(client, keys, self._get_engine(), e164, limit)
        except StoreError as exc:
            kind = "unavailable" if isinstance(exc, StoreUnavailable) else "error"
            self._metrics.redis_errors.labels(kind).inc()
            return self._unavailable(f"redis_{kind}", "redis cannot be read; try again later")
        except AuditStoreNotReady:
            return self._unavailable(
                "audit_store_not_ready", "the audit store is not migrated (dnc-sync audit migrate)"
            )
        except DBAPIError as exc:
            return self._unavailable(
                "audit_store_unavailable",
                f"the audit store cannot be read ({type(exc.orig).__name__})",
            )
        return Answer(200, found.as_dict(), log_fields={"entries": len(found.timeline)})

    def _options(self, query: dict[str, list[str]]) -> tuple[str | None, int, list[FieldProblem]]:
        """``?region=`` (ISO 3166-1 alpha-2 or ``none``) and ``?limit=`` (1..MAX_LIMIT)."""
        problems = [
            FieldProblem(name, "duplicate", f"{name} is given more than once")
            for name in ("region", "limit")
            if len(query.get(name, [])) > 1
        ]
        if problems:  # which one would count is ambiguous, as for intake's fields
            return self._region, DEFAULT_LIMIT, problems
        region = self._region
        given = query.get("region", [None])[-1]
        if given is not None:
            if given.lower() == "none":
                region = None
            elif is_supported_region(given):
                region = given.upper()
            else:
                problems.append(
                    FieldProblem(
                        "region", "unknown_region", "region is not a region with a numbering plan"
                    )
                )
        limit = DEFAULT_LIMIT
        asked = query.get("limit", [None])[-1]
        if asked is not None:
            if re.fullmatch(r"[0-9]{1,5}", asked) and 1 <= int(asked) <= MAX_LIMIT:
                limit = int(asked)
            else:
                problems.append(
                    FieldProblem(
                        "limit",
                        "out_of_range",
                        f"limit must be a whole number from 1 to {MAX_LIMIT}",
                    )
                )
        return region, limit, problems

    def _unavailable(self, error: str, message: str) -> Answer:
        return Answer(503, _error(error, message), self._retry_after, {"reason": error})

    def _get_engine(self) -> Engine:
        """The engine, opened on first use without creating anything (raises
        ``AuditStoreNotReady`` while a SQLite store is not there; the next read tries again)."""
        if self._engine is None:
            url = self._settings.database_url.get_secret_value()
            self._engine = open_engine(url, create=False)
        return self._engine

    def close(self) -> None:
        """Dispose of the engine this route opened (an injected one is the caller's)."""
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()
            self._engine = None


# As event requests: answered at INFO, refused at WARNING, our or a store's trouble at ERROR.
_LOG_LEVELS = {2: logging.INFO, 4: logging.WARNING, 5: logging.ERROR}


def _error(error: str, message: str) -> dict[str, Any]:
    return {"error": error, "message": message}
