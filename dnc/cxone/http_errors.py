"""CXone's answers as our errors: httpx exceptions and HTTP statuses become ``dnc.cxone.errors``.

httpx errors are raised ``from None`` on purpose: an httpx exception holds its request,
Authorization header included, and anything that pickles the exception (Prefect persists task
failures) would write the token to disk.

Classification (RFC 9110 status semantics): 2xx and the caller's accepted statuses are
answers; 401 is ``CxoneAuthError``; 429, 408 and 5xx, timeouts and connection errors are
transient (``Retry-After`` kept); every other 4xx is permanent.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import httpx

from dnc.backoff import parse_retry_after
from dnc.cxone.errors import (
    CxoneAuthError,
    CxoneConnectionError,
    CxonePermanentError,
    CxoneRateLimited,
    CxoneServerError,
    CxoneTimeout,
    CxoneTransientError,
)
from dnc.masking import redact


def describe(method: str, url: str) -> str:
    """``"POST /path"``: how a request is named in messages (no host, no query string)."""
    return f"{method} {urlsplit(url).path}"


async def send_plain(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send one request with httpx errors converted. Raises ``CxoneTimeout`` (``maybe_sent``
    for read and write timeouts, when the request may have reached CXone) or
    ``CxoneConnectionError``. The httpx exception is neither chained nor left as context."""
    error: CxoneTransientError
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        maybe_sent = isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)
        error = CxoneTimeout(
            f"{describe(method, url)}: {type(exc).__name__}", maybe_sent=maybe_sent
        )
    except httpx.TransportError as exc:
        error = CxoneConnectionError(f"{describe(method, url)}: {type(exc).__name__}")
    raise error  # outside the except block: no __context__ holding the request


def check_status(response: httpx.Response, accept: Collection[int] = ()) -> None:
    """Raise the error a status means, unless it is 2xx or in ``accept``. A server's
    ``Retry-After`` is kept as it was said (callers cap what they sleep)."""
    status = response.status_code
    if 200 <= status < 300 or status in accept:
        return
    what = f"{describe(response.request.method, str(response.request.url))} -> {status}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        raise CxoneRateLimited(f"{what} (rate limited)", retry_after)
    if status >= 500:
        raise CxoneServerError(what, retry_after)
    if status == 408:
        raise CxoneTimeout(what, retry_after)
    if status == 401:
        raise CxoneAuthError(f"{what}: CXone refused the access token")
    raise CxonePermanentError(f"{what}: {error_text(response)}", status)


def error_text(response: httpx.Response) -> str:
    """The error a CXone answer gives (``error``/``message``/``error_description``), redacted."""
    try:
        body = response.json()
    except ValueError:
        return redact(response.text)
    if isinstance(body, dict):
        parts = [
            str(body[key]) for key in ("error", "error_description", "message") if body.get(key)
        ]
        return redact("; ".join(parts))
    return ""


def parse_token_response(response: httpx.Response) -> tuple[str, float]:
    """``(access_token, expires_in_s)`` from a token endpoint's answer. 400/401/403 raise
    ``CxoneAuthError`` (credentials); 5xx, 429 raise ``CxoneTransientError``."""
    status = response.status_code
    if status in (400, 401, 403):
        raise CxoneAuthError(
            f"the token endpoint refused the credentials ({status} {error_text(response)}): "
            "check the client id/secret, the access key, and the issuer"
        )
    if status == 429 or status >= 500:
        raise CxoneTransientError(f"token endpoint -> {status}")
    if status != 200:
        raise CxonePermanentError(f"token endpoint -> {status}", status)
    try:
        body = response.json()
        token, expires_in = body["access_token"], float(body.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError):
        raise CxonePermanentError("token endpoint answer has no access_token", status) from None
    if not isinstance(token, str) or not token:
        raise CxonePermanentError("token endpoint answer has no access_token", status)
    return token, expires_in
