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
        if self.disabled:
            return True
        if not authorization or not self._bearer:
            return False
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        matched = False
        for secret in self._bearer:
            matched |= hmac.compare_digest(token, secret)
        return matched

    def signature_ok(
        self, signature: bytes | None, timestamp: bytes | None, body: bytes, now_s: float
    ) -> bool:
        """Whether ``signature`` (``sha256=<hex>``) signs ``timestamp.body`` with one of the
        HMAC secrets and ``timestamp`` (epoch s) is within the window around ``now_s``."""
        if not signature or not timestamp or not self._hmac:
            return False
        if not (timestamp.isdigit() and len(timestamp) <= 12):
            return False
        if abs(now_s - int(timestamp)) > self._window_s:
            return False
        scheme, _, provided = signature.strip().partition(b"=")
        if scheme.lower() != b"sha256":
            return False
        provided = provided.strip().lower()
        signed = timestamp + b"." + body
        matched = False
        for secret in self._hmac:
            expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode()
            matched |= hmac.compare_digest(provided, expected)
        return matched


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
