"""The token cache: reuse, skew, single-flight refresh, invalidation."""

from __future__ import annotations

import asyncio

import pytest

from dnc.cxone.errors import CxoneTransientError
from dnc.cxone.tokens import TokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Minter:
    def __init__(self, ttl_s: float = 3600, fail: int = 0) -> None:
        self.count = 0
        self.ttl_s = ttl_s
        self.fail = fail

    async def __call__(self) -> tuple[str, float]:
        self.count += 1
        await asyncio.sleep(0.01)
        if self.count <= self.fail:
            raise CxoneTransientError("token endpoint -> 503")
        return f"token-{self.count}", self.ttl_s


async def test_token_is_reused_until_expiry_minus_skew() -> None:
    clock, mint = Clock(), Minter()
    cache = TokenCache(mint, skew_s=30, clock=clock)
    assert await cache.get() == "token-1"
    clock.now += 3569
    assert await cache.get() == "token-1"
    clock.now += 1
    assert await cache.get() == "token-2"
    assert cache.mints == mint.count == 2


async def test_skew_is_capped_for_short_lived_tokens() -> None:
    clock, mint = Clock(), Minter(ttl_s=10)
    cache = TokenCache(mint, skew_s=30, clock=clock)
    await cache.get()
    clock.now += 4.9
    assert await cache.get() == "token-1"  # used for half its life, not minted every call
    clock.now += 0.2
    assert await cache.get() == "token-2"


async def test_concurrent_callers_share_one_mint() -> None:
    mint = Minter()
    cache = TokenCache(mint, clock=Clock())
    tokens = await asyncio.gather(*(cache.get() for _ in range(50)))
    assert set(tokens) == {"token-1"} and mint.count == 1


async def test_failed_mint_reaches_every_waiter_and_the_next_call_retries() -> None:
    mint = Minter(fail=1)
    cache = TokenCache(mint, clock=Clock())
    results = await asyncio.gather(*(cache.get() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, CxoneTransientError) for r in results) and mint.count == 1
    assert await cache.get() == "token-2"


async def test_invalidate_only_drops_the_refused_token() -> None:
    mint = Minter()
    cache = TokenCache(mint, clock=Clock())
    await cache.get()
    cache.invalidate("some-older-token")
    assert await cache.get() == "token-1"
    cache.invalidate("token-1")
    assert await cache.get() == "token-2"


def test_token_value_is_not_in_repr() -> None:
    from dnc.cxone.tokens import AccessToken

    assert "hunter2" not in repr(AccessToken("hunter2", 1.0))


@pytest.mark.parametrize("waiters", [1, 8])
async def test_cancelled_waiter_does_not_cancel_the_mint(waiters: int) -> None:
    mint = Minter()
    cache = TokenCache(mint, clock=Clock())
    first = asyncio.create_task(cache.get())
    others = [asyncio.create_task(cache.get()) for _ in range(waiters)]
    await asyncio.sleep(0)
    first.cancel()
    assert {await t for t in others} == {"token-1"} and mint.count == 1


async def test_pacer_below_one_request_per_second() -> None:
    from dnc.cxone.pacing import Pacer

    pacer = Pacer(0.5, max_concurrency=4)
    async with pacer:
        pass
    second = asyncio.ensure_future(pacer.__aenter__())
    done, _ = await asyncio.wait({second}, timeout=0.3)
    assert not done  # the next slot is about 2 s away, and nothing crashed
    second.cancel()
