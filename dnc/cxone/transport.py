"""One CXone request: bearer token, pacing, error conversion, classification, bounded retries.

httpx errors become ``dnc.cxone.errors`` here and are raised ``from None`` on purpose: an httpx
exception holds its request, Authorization header included, and anything that pickles the
exception (Prefect persists task failures) would write the token to disk.

Classification (RFC 9110 status semantics): 2xx and the caller's accepted statuses are
answers; 401 is retried once with a fresh token, then ``CxoneAuthError``; 429, 408 and 5xx,
timeouts and connection errors are transient (``Retry-After`` honoured, capped); every other
4xx is permanent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from dnc.backoff import backoff_delay_s, parse_retry_after
from dnc.cxone.errors import (
    CxoneAuthError,
    CxoneConnectionError,
    CxonePermanentError,
    CxoneRateLimited,
    CxoneServerError,
    CxoneTimeout,
    CxoneTransientError,
)
from dnc.cxone.pacing import Pacer
from dnc.cxone.tokens import Mint, TokenCache
from dnc.masking import redact
from dnc.settings import CxoneSettings

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")
AFTER_UNANSWERED = "after_unanswered_attempt"
"""Attribute set (true) on the error ``request`` raises when an earlier attempt of the same
request went unanswered after it may have reached CXone (a read or write timeout): what it
asked may have been applied, whatever the last attempt's error says."""


def after_unanswered_attempt(exc: BaseException) -> bool:
    """Whether ``exc`` ended a request one of whose attempts may have been applied unanswered
    (a timeout that may have reached CXone, then or earlier)."""
    if isinstance(exc, CxoneTimeout) and exc.maybe_sent:
        return True
    return bool(getattr(exc, AFTER_UNANSWERED, False))


class Fence(Protocol):
    """Admits one HTTP attempt (``dnc.fence.LeaseFence`` for the sync's lease holder)."""

    abandoned: bool
    """Set by the transport when an admitted attempt ended without an answer."""

    async def admit(self) -> float:
        """Return the ``loop.time()`` deadline by which the attempt must be over, or raise
        (``LeaseLost`` when the caller may not write any more; a transient error to wait)."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of transient failures: ``max_attempts`` in all (1 = no retry), backoff
    ``base_s``/``cap_s`` seconds with full jitter unless ``jitter`` is off, and a server's
    ``Retry-After`` honoured up to ``retry_after_cap_s`` seconds."""

    max_attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 30.0
    retry_after_cap_s: float = 120.0
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer the caller accepted; ``after_timeout`` is true when an earlier attempt of the
    same request timed out (it may have been applied)."""

    response: httpx.Response
    after_timeout: bool = False


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


class CxoneTransport:
    """Authorized, paced, retried requests to the CXone API through an injected httpx client.

    ``calls`` counts HTTP requests sent (for run reports); ``sleep`` and ``rng`` are injectable
    so tests zero the waits and fix the jitter.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        tokens: TokenCache,
        pacer: Pacer,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self.tokens = tokens
        self._pacer = pacer
        self._policy = policy
        self._sleep = sleep
        self._rng = rng
        self.calls = 0
        self.retries = 0
        self.fence: Fence | None = None
        """When set, every attempt is admitted by it first and cut off at its deadline."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: object = None,
        params: dict[str, str] | None = None,
        accept: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send until an accepted answer or ``max_attempts`` transient failures (the last one
        is raised). ``headers`` are sent beside Authorization and Accept. Raises
        ``CxoneAuthError``, ``CxonePermanentError``, ``CxoneTransientError``, and what the
        ``fence`` raises (``LeaseLost``); after an attempt that went unanswered, the error
        says so (``after_unanswered_attempt``)."""
        timed_out = False

        async def attempt() -> Reply:
            nonlocal timed_out
            try:
                response = await self._authorized(method, url, json_body, params, headers)
                check_status(response, accept)
            except CxoneTimeout as exc:
                timed_out = timed_out or exc.maybe_sent
                raise
            return Reply(response, timed_out)

        try:
            return await self.retrying(attempt)
        except Exception as exc:  # what made the last attempt fail, after a lost answer
            if timed_out:
                setattr(exc, AFTER_UNANSWERED, True)
            raise

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` until it returns or ``max_attempts`` transient failures (the last one
        is raised), sleeping the server's Retry-After or a jittered backoff in between."""
        for attempt in range(1, self._policy.max_attempts + 1):
            try:
                return await call()
            except CxoneTransientError as exc:
                if attempt == self._policy.max_attempts:
                    raise
                self.retries += 1
                await self._sleep(self._delay_s(attempt, exc))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _delay_s(self, attempt: int, exc: CxoneTransientError) -> float:
        if exc.retry_after_s is not None:
            return min(exc.retry_after_s, self._policy.retry_after_cap_s)
        policy = self._policy
        return backoff_delay_s(
            attempt, policy.base_s, policy.cap_s, jitter=policy.jitter, rng=self._rng
        )

    async def _authorized(
        self,
        method: str,
        url: str,
        json_body: object,
        params: dict[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        response, token = await self._send(method, url, json_body, params, headers)
        if response.status_code != 401:
            return response
        self.tokens.invalidate(token)  # refused: mint once and try once more
        response, _ = await self._send(method, url, json_body, params, headers)
        if response.status_code == 401:
            raise CxoneAuthError(
                f"{describe(method, url)} -> 401 with a fresh token: check the access key, "
                "its permissions, and the issuer"
            )
        return response

    async def _send(
        self,
        method: str,
        url: str,
        json_body: object,
        params: dict[str, str] | None,
        extra_headers: Mapping[str, str] | None,
    ) -> tuple[httpx.Response, str]:
        async with self._pacer:  # the token is taken after the wait, so it is fresh
            token = await self.tokens.get()
            headers = {**(extra_headers or {})}
            headers |= {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if self.fence is None:
                self.calls += 1
                response = await send_plain(
                    self._client, method, url, json=json_body, params=params, headers=headers
                )
            else:
                response = await self._fenced(method, url, json_body, params, headers)
        return response, token

    async def _fenced(
        self,
        method: str,
        url: str,
        json_body: object,
        params: dict[str, str] | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        """One attempt admitted by the fence and cut off at its deadline: an attempt still
        running then is abandoned as a maybe-sent timeout (it may have reached CXone)."""
        assert self.fence is not None  # noqa: S101 - checked by the caller
        fence = self.fence
        deadline = await fence.admit()
        self.calls += 1
        try:
            async with asyncio.timeout_at(deadline):
                return await send_plain(
                    self._client, method, url, json=json_body, params=params, headers=headers
                )
        except TimeoutError:
            fence.abandoned = True
        except BaseException as exc:  # cancelled (SIGTERM), timed out, connection lost
            # may have reached CXone and land later; a connect or pool timeout never left here
            if not isinstance(exc, CxoneTimeout) or exc.maybe_sent:
                fence.abandoned = True
            raise
        raise CxoneTimeout(f"{describe(method, url)}: cut off at the lease fence", maybe_sent=True)


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


def build_transport(
    client: httpx.AsyncClient,
    mint: Mint,
    settings: CxoneSettings,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> CxoneTransport:
    """A transport with its token cache (``.tokens``), pacing and retry policy from
    ``settings``; ``mint`` gets a new access token."""
    policy = RetryPolicy(
        settings.max_attempts,
        settings.backoff_base_s,
        settings.backoff_cap_s,
        settings.retry_after_cap_s,
    )
    pacer = Pacer(settings.rate_limit_rps, settings.max_concurrency)
    tokens = TokenCache(mint, settings.token_skew_s)
    return CxoneTransport(client, tokens, pacer, policy, sleep=sleep, rng=rng)
