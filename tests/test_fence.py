"""The lease fence (``dnc.fence``, ``dnc/lua/lease.lua``, ``CxoneTransport`` with a fence).

The scenario of the review: run A holds the lease and sends an opt-in's DELETE that CXone is
slow to apply; a Redis blip fails A's renewals and its lease expires; an opt-out for the same
number arrives and run B takes the lease and POSTs it; A's DELETE must not land after B's
POST. The fake CXone below applies a DELETE one second after it arrived, whether or not the
client is still waiting (as a real server does), and journals every applied write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
import redis.asyncio as aioredis

from dnc.cxone.errors import CxoneTimeout
from dnc.cxone.transport import build_transport
from dnc.errors import StoreUnavailable
from dnc.fence import LeaseFence, LeaseUnconfirmed, attempt_bound_s, check_lease_timing
from dnc.keys import RedisKeys
from dnc.pending import LeaseLost, PendingQueue
from dnc.settings import CxoneSettings, SyncSettings

URL = "https://cxone.test/inContactAPI/services/v33.0/dnc-groups/1001/records"


def fast_cxone(**overrides: object) -> CxoneSettings:
    """Client settings with a 0.6 s attempt bound and no pacing or backoff waits."""
    values: dict[str, object] = {
        "connect_timeout_s": 0.1,
        "pool_timeout_s": 0.1,
        "write_timeout_s": 0.1,
        "read_timeout_s": 0.3,
        "rate_limit_rps": 0,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.1,
        "max_attempts": 20,
    }
    return CxoneSettings(**(values | overrides))  # type: ignore[arg-type]


async def mint() -> tuple[str, float]:
    return "access-token", 3600.0


def fence_of(renew: Callable[[], Awaitable[bool]], ttl_s: float, bound_s: float) -> LeaseFence:
    return LeaseFence(renew, ttl_s=ttl_s, bound_s=bound_s, margin_s=0.2)


# -- the timing rule --------------------------------------------------------------------------


def test_timing_rule_refuses_a_lease_shorter_than_one_attempt() -> None:
    cxone = CxoneSettings()  # 5 + 5 + 30 + 30 = 70 s per attempt
    assert attempt_bound_s(cxone) == 70
    assert check_lease_timing(SyncSettings(), cxone) == []  # 120 s >= 70 + 5 + 1
    [problem] = check_lease_timing(SyncSettings(lease_ttl_s=60), cxone)
    assert "DNC_SYNC_LEASE_TTL_S=60" in problem and "76" in problem


# -- lease.lua: the takeover grace --------------------------------------------------------------


@pytest.fixture
def queue(any_redis: aioredis.Redis, namespace: str) -> PendingQueue:
    return PendingQueue(any_redis, RedisKeys(namespace))


async def test_a_released_lease_is_taken_over_at_once(queue: PendingQueue) -> None:
    assert (await queue.acquire_lease("a", 10_000, 5_000)).wait_ms == 0
    await queue.release_lease("a")
    grant = await queue.acquire_lease("b", 10_000, 5_000)
    assert grant.held and grant.wait_ms == 0


async def test_an_expired_lease_makes_its_successor_wait_the_grace(queue: PendingQueue) -> None:
    assert await queue.acquire_lease("a", 50, 5_000)
    await asyncio.sleep(0.2)  # expired, never released (the holder died or was cut off)
    grant = await queue.acquire_lease("b", 10_000, 5_000)
    assert grant.held
    assert 0 < grant.wait_ms <= 5_000


async def test_the_grace_is_handed_on_to_the_next_holder(queue: PendingQueue) -> None:
    await queue.acquire_lease("a", 50, 5_000)
    await asyncio.sleep(0.2)
    assert (await queue.acquire_lease("b", 10_000, 5_000)).wait_ms > 0
    await queue.release_lease("b")  # b gave up before the grace ended
    grant = await queue.acquire_lease("c", 10_000, 5_000)
    assert grant.held and grant.wait_ms > 0  # a's requests may still land


async def test_the_holder_reacquiring_waits_nothing(queue: PendingQueue) -> None:
    await queue.acquire_lease("a", 10_000, 5_000)
    grant = await queue.acquire_lease("a", 10_000, 5_000)
    assert grant.held and grant.wait_ms == 0


# -- the fence itself ------------------------------------------------------------------------


async def test_admit_renews_when_the_lease_would_not_outlive_the_attempt() -> None:
    renewals: list[int] = []

    async def renew() -> bool:
        renewals.append(1)
        return True

    fence = fence_of(renew, ttl_s=2.0, bound_s=1.0)
    fence.acquired(fence.now() - 1.5, 0)  # 0.5 s left: less than 1.0 + 0.2
    deadline = await fence.admit()
    assert renewals == [1]
    assert fence.expires_at - fence.now() > 1.5
    assert deadline - fence.now() <= 1.0


async def test_admit_refuses_once_the_lease_is_taken() -> None:
    async def renew() -> bool:
        return False

    fence = fence_of(renew, ttl_s=2.0, bound_s=1.0)
    fence.acquired(fence.now() - 1.5, 0)
    with pytest.raises(LeaseLost):
        await fence.admit()
    assert fence.lost
    with pytest.raises(LeaseLost):  # and stays refused
        await fence.admit()


async def test_a_redis_blip_is_transient_until_the_lease_may_have_expired() -> None:
    async def renew() -> bool:
        raise StoreUnavailable("redis unavailable: ConnectionError")

    fence = fence_of(renew, ttl_s=2.0, bound_s=1.0)
    fence.acquired(fence.now() - 1.5, 0)  # still 0.5 s of lease: maybe ours
    with pytest.raises(LeaseUnconfirmed):
        await fence.admit()
    assert not fence.lost
    fence.acquired(fence.now() - 2.5, 0)  # may have expired: someone else may hold it
    with pytest.raises(LeaseLost):
        await fence.admit()
    assert fence.lost


async def test_the_heartbeat_keeps_trying_after_a_failed_renewal() -> None:
    answers = iter([StoreUnavailable("blip"), StoreUnavailable("blip"), True, True, True])

    async def renew() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fence = fence_of(renew, ttl_s=0.3, bound_s=0.05)
    fence.acquired(fence.now(), 0)
    heartbeat = asyncio.create_task(fence.keep())
    await asyncio.sleep(0.5)
    heartbeat.cancel()
    assert not fence.lost  # two failed renewals, then it was renewed again


async def test_a_run_past_its_deadline_stops_renewing_the_lease() -> None:
    # However a run got stuck, its heartbeat must not keep the lease for ever.
    renewals: list[float] = []

    async def renew() -> bool:
        renewals.append(fence.now())
        return True

    fence = fence_of(renew, ttl_s=0.3, bound_s=0.05)
    fence.acquired(fence.now(), 0)
    until = fence.now() + 0.25
    heartbeat = asyncio.create_task(fence.keep(until=until))
    await asyncio.wait_for(heartbeat, timeout=5)  # it returns by itself
    assert fence.lost and renewals and all(at < until for at in renewals)  # then let go
    with pytest.raises(LeaseLost):
        await fence.admit()


async def test_no_attempt_starts_after_the_lease_was_lost() -> None:
    timeline: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeline.append("sent")
        return httpx.Response(503)

    renewals = iter([True, False])

    async def renew() -> bool:
        held = next(renewals)
        timeline.append(f"renewed:{held}")
        return held

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        transport = build_transport(client, mint, fast_cxone(max_attempts=10))
        fence = fence_of(renew, ttl_s=0.85, bound_s=attempt_bound_s(fast_cxone()))
        fence.acquired(fence.now(), 0)
        transport.fence = fence
        with pytest.raises(LeaseLost):
            await transport.request("DELETE", URL, json_body={"dncGroupRecords": []})
    # 503s are retried (10 attempts allowed) until a renewal is refused: nothing after it
    assert fence.lost and timeline[-1] == "renewed:False", timeline
    assert "sent" in timeline and len(timeline) < 10


async def test_an_attempt_is_cut_off_at_the_fence_deadline() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async def renew() -> bool:
        return True

    cxone = fast_cxone(read_timeout_s=30, max_attempts=1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        transport = build_transport(client, mint, cxone)
        fence = fence_of(renew, ttl_s=60, bound_s=0.3)  # the fence's bound, not httpx's 30 s
        fence.acquired(fence.now(), 0)
        transport.fence = fence
        started = asyncio.get_running_loop().time()
        with pytest.raises(CxoneTimeout) as caught:
            await transport.request("POST", URL, json_body={})
    assert caught.value.maybe_sent
    assert asyncio.get_running_loop().time() - started < 5


# -- the review's scenario -------------------------------------------------------------------


class SlowDeleteCxone:
    """A fake DNC group: a POST applies at once; a DELETE applies ``delete_lag_s`` after it
    arrived, even when the client gave up (the server does not know), and is never answered
    within the client's read timeout (httpx's mock transport applies no timeouts itself).
    ``journal`` lists the applied writes in order."""

    def __init__(self, delete_lag_s: float) -> None:
        self.delete_lag_s = delete_lag_s
        self.journal: list[str] = []
        self._landing: set[asyncio.Task[None]] = set()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.journal.append("optOut")
            return httpx.Response(200, json={"resultSet": {"recordResults": []}})
        task = asyncio.get_running_loop().create_task(self._land_later())
        self._landing.add(task)
        await asyncio.sleep(0.3)  # no answer within the client's read timeout (0.3 s)
        raise httpx.ReadTimeout("no answer", request=request)

    async def _land_later(self) -> None:
        await asyncio.sleep(self.delete_lag_s)
        self.journal.append("optIn")

    async def settle(self) -> None:
        await asyncio.gather(*self._landing)


async def test_a_run_that_lost_its_lease_cannot_undo_its_successors_opt_out(
    real_redis: aioredis.Redis, namespace: str
) -> None:
    cxone = fast_cxone()  # attempts of at most 0.6 s
    sync = SyncSettings(lease_ttl_s=5, fence_margin_s=0.5)
    grace_ms = int((attempt_bound_s(cxone) + sync.fence_margin_s) * 1000)
    ttl_ms = 2_000
    queue = PendingQueue(real_redis, RedisKeys(namespace))
    server = SlowDeleteCxone(delete_lag_s=0.7)
    a_holds_the_lease = asyncio.Event()

    async def blip() -> bool:  # A's renewals all fail: Redis cannot be reached from A
        raise StoreUnavailable("redis unavailable: ConnectionError")

    async def run_a(client: httpx.AsyncClient) -> None:
        fence = LeaseFence(blip, ttl_ms / 1000, attempt_bound_s(cxone), sync.fence_margin_s)
        sent_at = fence.now()
        grant = await queue.acquire_lease("run-a", ttl_ms, grace_ms)
        assert grant
        fence.acquired(sent_at, grant.wait_ms / 1000)
        a_holds_the_lease.set()
        transport = build_transport(client, mint, cxone)
        transport.fence = fence
        with pytest.raises(LeaseLost):  # A keeps retrying its slow DELETE until it may not
            await transport.request("DELETE", URL, json_body={"dncGroupRecords": []})

    async def run_b(client: httpx.AsyncClient) -> None:
        await a_holds_the_lease.wait()

        async def renew() -> bool:
            return await queue.renew_lease("run-b", ttl_ms)

        fence = LeaseFence(renew, ttl_ms / 1000, attempt_bound_s(cxone), sync.fence_margin_s)
        while True:  # an ad-hoc run polling for the lease
            sent_at = fence.now()
            grant = await queue.acquire_lease("run-b", ttl_ms, grace_ms)
            if grant:
                break
            await asyncio.sleep(0.05)
        fence.acquired(sent_at, grant.wait_ms / 1000)
        transport = build_transport(client, mint, cxone)
        transport.fence = fence
        await transport.request("POST", URL, json_body={"dncGroupRecords": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handle)) as client:
        await asyncio.gather(run_a(client), run_b(client))
        await server.settle()
    assert server.journal[0] == "optIn", server.journal  # A's DELETE landed: a real fault
    assert server.journal[-1] == "optOut", server.journal  # and never after B's opt-out


# -- found by a break-it pass ----------------------------------------------------------------


async def test_a_release_after_an_abandoned_request_hands_the_grace_on(
    queue: PendingQueue,
) -> None:
    # A run that ends (or is SIGTERMed) after giving up on a request that may still land
    await queue.acquire_lease("a", 10_000, 5_000)
    await queue.release_lease("a", grace_ms=5_000)
    grant = await queue.acquire_lease("b", 10_000, 5_000)
    assert grant.held and 0 < grant.wait_ms <= 5_000


async def test_the_old_holders_longer_grace_wins(queue: PendingQueue) -> None:
    # A ran with a 30 s attempt bound, B (another config) with a 1 s one: B waits A's
    assert await queue.acquire_lease("a", 50, 30_000)
    await asyncio.sleep(0.2)
    grant = await queue.acquire_lease("b", 10_000, 1_000)
    assert grant.wait_ms > 1_000


async def test_an_abandoned_attempt_marks_the_fence() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async def renew() -> bool:
        return True

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        transport = build_transport(client, mint, fast_cxone(max_attempts=1))
        fence = fence_of(renew, ttl_s=60, bound_s=0.2)
        fence.acquired(fence.now(), 0)
        transport.fence = fence
        assert fence.release_grace_ms() == 0
        with pytest.raises(CxoneTimeout):
            await transport.request("DELETE", URL, json_body={})
    assert fence.abandoned and fence.release_grace_ms() == 400  # bound + margin


async def test_a_renewal_answered_too_late_admits_nothing() -> None:
    # the process stalled between Redis renewing the lease and reading the answer
    fence: LeaseFence

    async def slow_renew() -> bool:
        fence.clock = lambda: 1_000.0  # the stall: time jumped past the renewed lease
        return True

    fence = fence_of(slow_renew, ttl_s=2.0, bound_s=1.0)
    fence.clock = lambda: 0.0
    fence.acquired(-1.5, 0)  # 0.5 s left: a renewal is needed
    with pytest.raises(LeaseUnconfirmed):
        await fence.admit()
