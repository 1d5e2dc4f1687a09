"""One CXone request: bearer token, pacing, error conversion, classification, bounded retries.

Errors are converted and classified by ``dnc.cxone.http_errors`` (never chained to httpx's,
which hold the token). A 401 is retried once with a fresh token, then ``CxoneAuthError``;
429, 408 and 5xx, timeouts and connection errors are transient, retried up to
``RetryPolicy.max_attempts`` (``Retry-After`` honoured, capped); every other 4xx is permanent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx

from dnc.backoff import backoff_delay_s
from dnc.cxone.errors import CxoneAuthError, CxoneTimeout, CxoneTransientError
from dnc.cxone.http_errors import (
    check_status,
    describe,
    error_text,
    parse_token_response,
    send_plain,
)
from dnc.cxone.pacing import Pacer
from dnc.cxone.tokens import Mint, TokenCache
from dnc.cxone_settings import CxoneSettings

__all__ = [
    "AFTER_UNANSWERED",
    "CxoneTransport",
    "Fence",
    "Reply",
    "RetryPolicy",
    "Sleep",
    "after_unanswered_attempt",
    "build_transport",
    "check_status",
    "describe",
    "error_text",
    "parse_token_response",
    "send_plain",
]

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
