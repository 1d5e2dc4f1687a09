"""Refusals and how they are kept: every refusal is appended to a rejected stream in Redis
before it is answered, and Redis trouble is a 503 with Retry-After."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json

from dnc.errors import FieldProblem, StoreError, StoreUnavailable
from dnc.masking import mask_number
from receiver.asgi import Scope
from receiver.lazy_store import LazyStore
from receiver.metrics import ReceiverMetrics
from receiver.outcome import Outcome, error_body

log = logging.getLogger("dnc.receiver")


class Rejections:
    """The app's refusals: kept through ``stores`` (an authenticated caller's body cut to
    ``excerpt_bytes`` bytes), Redis failures counted in ``metrics``, and 503s sent with
    ``Retry-After: retry_after_s`` (``retry_after``, the header as sent)."""

    def __init__(
        self,
        stores: LazyStore,
        metrics: ReceiverMetrics,
        *,
        excerpt_bytes: int,
        retry_after_s: int,
    ) -> None:
        self._stores = stores
        self._metrics = metrics
        self._excerpt_bytes = excerpt_bytes
        self.retry_after = ((b"retry-after", str(retry_after_s).encode()),)

    async def reject(
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
        the authenticated ``sender`` (``StoredEvent.sender``) when known. A refusal with a
        ``body`` (an authenticated caller's) that cannot be kept is a 503 instead."""
        payload = error_body(error, message)
        if problems:
            payload["problems"] = [p.as_dict() for p in problems]
        reason = ",".join(sorted({p.reason for p in problems})) if problems else error
        number = mask_number(raw_number if isinstance(raw_number, str) else None)
        kept_fields = dict(audit or {})
        if sender is not None:
            kept_fields["sender"] = sender
        if isinstance(raw_number, str):  # the audit store looks rejections up by number
            kept_fields["phoneNumber"] = raw_number[:64]
        kept = await self.keep(scope, status, payload, body, kept_fields)
        if not kept and body is not None:
            # An authenticated refusal that cannot be kept for audit: ask the sender to retry
            # (Studio does) rather than let the event vanish with a 4xx.
            return self.store_trouble(
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

    async def keep(
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
            cap = self._excerpt_bytes
            entry["body"] = body[:cap].decode("utf-8", "replace")
            entry["bodyTruncated"] = str(len(body) > cap).lower()
        try:
            # A kept body means an authenticated caller; the rest go to a stream of their own.
            await self._stores.get().record_rejection(entry, authenticated=body is not None)
        except StoreError:
            self._metrics.redis_errors.labels("unavailable").inc()
            log.error(
                "could not keep a rejection in redis",
                extra={"fields": {"status": status, "error": payload["error"]}},
            )
            return False
        return True

    def store_trouble(self, exc: StoreError, fields: dict[str, Any]) -> Outcome:
        """503 with Retry-After: CXone's automatic retry will deliver the event again.
        Counts the failure (``unavailable`` or ``error``); ``fields`` go to the log line."""
        kind = "unavailable" if isinstance(exc, StoreUnavailable) else "error"
        self._metrics.redis_errors.labels(kind).inc()
        error = f"redis_{kind}"
        return Outcome(
            503,
            error_body(error, "try again later"),
            "unavailable",
            error,
            self.retry_after,
            fields,
        )
