"""Caller authentication: shared bearer secrets, or an HMAC-SHA256 signature of the raw body.

- ``Authorization: Bearer <secret>`` (RFC 6750 header syntax), any of the configured secrets
  (several are valid during a rotation).
- ``X-Signature: sha256=<hex>`` over ``<X-Signature-Timestamp>.<raw body>`` (HMAC, RFC 2104,
  with SHA-256), the timestamp in UTC epoch seconds and within the replay window.

All comparisons are on bytes with ``hmac.compare_digest`` (constant time, any byte value, so a
non-ASCII header is simply wrong, never a crash), and every configured secret is compared so
the time taken does not tell which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = b"x-signature"
SIGNATURE_TIMESTAMP_HEADER = b"x-signature-timestamp"


class Authenticator:
    """Decides whether a request comes from a caller that holds a secret.

    ``bearer_secrets`` and ``hmac_secrets`` are the raw secrets as bytes; ``window_s`` the
    replay window of signed requests in seconds; ``disabled`` lets every request through.
    """

    def __init__(
        self,
        bearer_secrets: Sequence[bytes],
        hmac_secrets: Sequence[bytes],
        window_s: int,
        disabled: bool = False,
    ) -> None:
        self._bearer = list(bearer_secrets)
        self._hmac = list(hmac_secrets)
        self._window_s = window_s
        self.disabled = disabled

    def bearer_ok(self, authorization: bytes | None) -> bool:
        """Whether ``authorization`` is ``Bearer <one of the secrets>``."""
        return self.bearer_sender(authorization) is not None

    def bearer_sender(self, authorization: bytes | None) -> str | None:
        """Who ``authorization`` (``Bearer <secret>``) authenticates: ``bearer-<n>``, the
        1-based position of the matching secret in ``DNC_RECEIVER_BEARER_SECRETS`` (never the
        secret), ``unknown`` when authentication is disabled, ``None`` when it does not."""
        if self.disabled:
            return UNKNOWN_SENDER
        if not authorization or not self._bearer:
            return None
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        return _matching("bearer", token.strip(), self._bearer)

    def signature_ok(
        self, signature: bytes | None, timestamp: bytes | None, body: bytes, now_s: float
    ) -> bool:
        """Whether ``signature`` (``sha256=<hex>``) signs ``timestamp.body`` with one of the
        HMAC secrets and ``timestamp`` (epoch s) is within the window around ``now_s``."""
        return self.signature_sender(signature, timestamp, body, now_s) is not None

    def signature_sender(
        self, signature: bytes | None, timestamp: bytes | None, body: bytes, now_s: float
    ) -> str | None:
        """Who a valid signature (see ``signature_ok``) comes from: ``hmac-<n>``, the 1-based
        position of the key in ``DNC_RECEIVER_HMAC_SECRETS``; ``None`` when it is not valid."""
        if not signature or not timestamp or not self._hmac:
            return None
        if not (timestamp.isdigit() and len(timestamp) <= 12):
            return None
        if abs(now_s - int(timestamp)) > self._window_s:
            return None
        scheme, _, provided = signature.strip().partition(b"=")
        if scheme.lower() != b"sha256":
            return None
        signed = timestamp + b"." + body
        expected = [
            hmac.new(key, signed, hashlib.sha256).hexdigest().encode() for key in self._hmac
        ]
        return _matching("hmac", provided.strip().lower(), expected)


UNKNOWN_SENDER = "unknown"
"""The sender of events when authentication is disabled."""


def _matching(kind: str, given: bytes, candidates: Sequence[bytes]) -> str | None:
    """``<kind>-<n>`` of the first of ``candidates`` equal to ``given`` (1-based), or ``None``.
    Every candidate is compared in constant time, so the time taken does not tell which."""
    found = 0
    for position, candidate in enumerate(candidates, start=1):
        equal = hmac.compare_digest(given, candidate)
        found = found or (position if equal else 0)
    return f"{kind}-{found}" if found else None


def refusal_reason(
    authorization: bytes | None,
    signature: bytes | None,
    timestamp: bytes | None,
    now_s: float,
    window_s: int,
    repeated_authorization: bool = False,
) -> str:
    """Which check a refused request failed, for the audit trail only (the caller is told
    nothing more than 401): ``repeated_authorization``, ``wrong_bearer_secret``,
    ``not_bearer_scheme``, ``signature_timestamp_invalid``, ``signature_outside_window``
    (check the sender's clock), ``wrong_signature`` or ``no_credentials``. Looks only at the
    shape of what was sent, never at a secret."""
    if repeated_authorization:
        return "repeated_authorization"
    if signature:
        if not timestamp or not (timestamp.isdigit() and len(timestamp) <= 12):
            return "signature_timestamp_invalid"
        if abs(now_s - int(timestamp)) > window_s:
            return "signature_outside_window"
        return "wrong_signature"
    if authorization:
        scheme = authorization.strip().partition(b" ")[0]
        return "wrong_bearer_secret" if scheme.lower() == b"bearer" else "not_bearer_scheme"
    return "no_credentials"


def sign(secret: bytes, timestamp_s: int, body: bytes) -> bytes:
    """The ``X-Signature`` value a sender computes: ``sha256=<hex>`` of ``ts.body``."""
    digest = hmac.new(secret, str(timestamp_s).encode() + b"." + body, hashlib.sha256)
    return b"sha256=" + digest.hexdigest().encode()
