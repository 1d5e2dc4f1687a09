"""Who may write: the front of every write route (method, credentials, body under its cap
and deadline) and the 401 that says nothing more than "missing or wrong credentials"."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from dnc.settings import ReceiverSettings
from receiver.asgi import BodyTimeout, BodyTooLarge, Receive, Scope, collect_headers, read_body
from receiver.auth import (
    SIGNATURE_HEADER,
    SIGNATURE_TIMESTAMP_HEADER,
    Authenticator,
    refusal_reason,
)
from receiver.outcome import Outcome
from receiver.rejections import Rejections

_EVENT_HEADERS = frozenset(
    {
        b"authorization",
        b"content-type",
        b"content-encoding",
        SIGNATURE_HEADER,
        SIGNATURE_TIMESTAMP_HEADER,
    }
)
_CLOSE = ((b"connection", b"close"),)


@dataclass(frozen=True, slots=True)
class AuthenticatedPost:
    """A POST whose caller authenticated (``Admission.authenticate_post``): ``sender``
    (``bearer-<n>``, ``hmac-<n>``), the request's ``headers`` of interest (lower-case names)
    and its whole ``body``."""

    sender: str
    headers: Mapping[bytes, bytes]
    body: bytes


class Admission:
    """Authentication of write requests with the intake secrets of ``settings`` (bearer and
    HMAC, or none with ``auth_disabled``); refusals go through ``rejections``."""

    def __init__(self, settings: ReceiverSettings, rejections: Rejections) -> None:
        self._auth = Authenticator(
            [s.get_secret_value().encode() for s in settings.bearer_secrets],
            [s.get_secret_value().encode() for s in settings.hmac_secrets],
            settings.signature_window_s,
            disabled=settings.auth_disabled,
        )
        self._body_timeout_s = settings.body_timeout_s
        self._signature_window_s = settings.signature_window_s
        self._rejections = rejections

    async def authenticate_post(
        self, scope: Scope, receive: Receive, max_body_bytes: int
    ) -> AuthenticatedPost | Outcome:
        """The front of every write route (``/v1/events``, ``/v1/events:batch``): 405 unless
        POST; the sender from a bearer secret (two ``Authorization`` headers: none), else from
        an HMAC signature over the body; the body read under ``max_body_bytes`` and the body
        deadline. Returns the refusal (405, 401, 413, 408) as an ``Outcome``."""
        if scope["method"] != "POST":
            return await self._rejections.reject(
                scope, 405, "method_not_allowed", "use POST", headers=((b"allow", b"POST"),)
            )
        found, repeated = collect_headers(scope, _EVENT_HEADERS)
        sender = self._auth.bearer_sender(found.get(b"authorization"))
        doubled = sender is not None and not self._auth.disabled and b"authorization" in repeated
        if doubled:
            sender = None  # two Authorization headers: which one counts is ambiguous
        if sender is None and SIGNATURE_HEADER not in found:
            return await self.unauthorized(scope, found, doubled)
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
                return await self.unauthorized(scope, found, doubled)
        return AuthenticatedPost(sender, found, body)

    async def _read(self, scope: Scope, receive: Receive, cap: int) -> bytes | Outcome:
        """The body, or the refusal of one over ``cap`` bytes (413) or too slow (408)."""
        timeout_s = self._body_timeout_s
        try:
            return await read_body(scope, receive, cap, timeout_s)
        except BodyTooLarge:
            return await self._rejections.reject(
                scope, 413, "body_too_large", f"body is over {cap} bytes"
            )
        except BodyTimeout:
            return await self._rejections.reject(
                scope,
                408,
                "body_timeout",
                f"the body did not arrive within {timeout_s:g} s",
                headers=_CLOSE,  # the rest of a trickled body is not worth reading
            )

    async def unauthorized(
        self, scope: Scope, found: Mapping[bytes, bytes], doubled: bool
    ) -> Outcome:
        """401 saying nothing more; the rejected stream and the log get which check failed.
        ``found``: the request's headers of interest; ``doubled``: it sent two
        ``Authorization`` headers."""
        why = refusal_reason(
            found.get(b"authorization"),
            found.get(SIGNATURE_HEADER),
            found.get(SIGNATURE_TIMESTAMP_HEADER),
            time.time(),
            self._signature_window_s,
            repeated_authorization=doubled,
        )
        return await self._rejections.reject(
            scope,
            401,
            "unauthorized",
            "missing or wrong credentials",
            headers=((b"www-authenticate", b"Bearer"),),
            audit={"authReason": why},
        )
