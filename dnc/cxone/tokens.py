"""Access-token cache: reuse until ``expires_in`` minus a skew, one refresh in flight at a time.

CXone issues tokens of about 3600 s and has no refresh grant for access keys: a new token is
minted (NICE CXone developer docs, "Authentication: access keys"). Concurrent callers that find
the token stale share a single mint; a token the API refused is invalidated so the next caller
mints, once, however many requests saw the 401.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Mint = Callable[[], Awaitable[tuple[str, float]]]
"""Returns ``(access_token, expires_in_s)``; raises ``CxoneError`` subclasses."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token and when it stops being used (``refresh_at`` on the monotonic clock, seconds).
    The value never appears in ``repr``."""

    value: str = field(repr=False)
    refresh_at: float


class TokenCache:
    """Hands out a valid access token, minting through ``mint`` when needed.

    ``skew_s``: how long before expiry a token is replaced (capped at half its lifetime, so a
    short-lived token is still used). ``clock``: monotonic seconds (tests pass a fake).
    ``mints`` counts token requests made.
    """

    def __init__(
        self, mint: Mint, skew_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._mint = mint
        self._skew_s = skew_s
        self._clock = clock
        self._token: AccessToken | None = None
        self._inflight: asyncio.Task[str] | None = None
        self.mints = 0

    async def get(self) -> str:
        """A token valid now; raises what ``mint`` raises (to every caller sharing the mint)."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        inflight = self._inflight
        if inflight is None or inflight.done():
            inflight = self._inflight = asyncio.ensure_future(self._refresh())
            inflight.add_done_callback(_retrieve)
        return await asyncio.shield(inflight)

    def invalidate(self, value: str) -> None:
        """Forget ``value`` if it is the current token (the API refused it)."""
        token = self._token
        if token is not None and hmac.compare_digest(token.value.encode(), value.encode()):
            self._token = None

    async def _refresh(self) -> str:
        value, expires_in_s = await self._mint()
        self.mints += 1
        skew = min(self._skew_s, expires_in_s / 2)
        self._token = AccessToken(value, self._clock() + expires_in_s - skew)
        return value


def _retrieve(task: asyncio.Task[str]) -> None:
    """Mark a failed mint's exception as seen when every waiter was cancelled."""
    if not task.cancelled():
        task.exception()
