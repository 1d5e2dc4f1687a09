"""Redis's eviction policy must be ``noeviction``: the check itself, the receiver's
``/readyz``, ``dnc-sync check`` and the sync flow's start all refuse anything else (unless
``DNC_REDIS_ALLOW_EVICTION=true``, which logs a WARNING instead).

fakeredis answers neither INFO nor CONFIG, so these tests run a throwaway redis-server of
their own (the policy is server-wide: changing the session's shared Redis could disturb
other tests) and set its policy with CONFIG SET."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from typer.testing import CliRunner

from dnc.errors import StoreUnavailable
from dnc.intake import IntakePolicy
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.redis_policy import EvictionPolicyError, read_eviction_policy, require_noeviction
from dnc.settings import ReceiverSettings, RedisSettings
from dnc.store import EventStore, StoreLimits
from dnc_sync.cli import app as cli_app
from receiver.app import ReceiverApp
from tests.conftest import BEARER, free_port

pytestmark = [pytest.mark.redis, pytest.mark.socket]
FIX = "CONFIG SET maxmemory-policy noeviction"
UNREACHABLE = "redis://127.0.0.1:1/0"  # port 1: nothing listens, refused at once


@pytest.fixture(scope="module")
def policy_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server of this module's own, started with ``noeviction``."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/ensure-redis)"
    port, workdir = free_port(), tmp_path_factory.mktemp("policy-redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "no redis-server"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def set_policy(policy_redis: str) -> Iterator[Callable[[str], None]]:
    """Set the module's Redis to a ``maxmemory-policy``; ``noeviction`` again afterwards."""
    client = redis.Redis.from_url(policy_redis)

    def set_to(policy: str) -> None:
        client.config_set("maxmemory-policy", policy)

    try:
        yield set_to
    finally:
        set_to("noeviction")
        client.close()


@pytest.fixture
async def client(policy_redis: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(policy_redis)
    yield connection
    await connection.aclose()


# -- the check --------------------------------------------------------------------------------


async def test_noeviction_passes(client: aioredis.Redis) -> None:
    assert await require_noeviction(client, allow_eviction=False) == "noeviction"


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl", "allkeys-lru", "allkeys-lfu"])
async def test_any_other_policy_is_refused_with_the_fix(
    client: aioredis.Redis, set_policy: Callable[[str], None], policy: str
) -> None:
    set_policy(policy)
    with pytest.raises(EvictionPolicyError, match=FIX) as refused:
        await require_noeviction(client, allow_eviction=False)
    assert refused.value.policy == policy
    assert policy in str(refused.value)
    assert "parameter group" in str(refused.value)


async def test_allow_eviction_warns_instead_of_refusing(
    client: aioredis.Redis, set_policy: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    set_policy("allkeys-lru")
    with caplog.at_level(logging.WARNING, logger="dnc.redis"):
        assert await require_noeviction(client, allow_eviction=True) == "allkeys-lru"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "allkeys-lru" in warnings[0].getMessage()


async def test_config_get_is_the_fallback_when_info_is_refused(
    client: aioredis.Redis, policy_redis: str, set_policy: Callable[[str], None]
) -> None:
    set_policy("volatile-lru")
    # As on managed Redis where a command is not allowed: an ACL user without INFO ...
    await client.acl_setuser(
        "no-info", enabled=True, passwords=["+pw-no-info"], commands=["-@all", "+config|get"]
    )
    # ... and one allowed neither INFO nor CONFIG GET.
    await client.acl_setuser(
        "no-config", enabled=True, passwords=["+pw-no-config"], commands=["-@all", "+ping"]
    )
    url = policy_redis.replace("redis://", "redis://{user}:pw-{user}@")
    no_info = aioredis.Redis.from_url(url.format(user="no-info"))
    no_config = aioredis.Redis.from_url(url.format(user="no-config"))
    try:
        assert await read_eviction_policy(no_info) == "volatile-lru"
        assert await read_eviction_policy(no_config) is None
        with pytest.raises(EvictionPolicyError, match="cannot read Redis's maxmemory-policy"):
            await require_noeviction(no_config, allow_eviction=False)
    finally:
        await no_info.aclose()
        await no_config.aclose()
        await client.acl_deluser("no-info", "no-config")


async def test_unreachable_redis_is_unavailable_not_a_policy_problem() -> None:
    unreachable = aioredis.Redis.from_url(UNREACHABLE, socket_connect_timeout=1)
    try:
        with pytest.raises(StoreUnavailable):
            await require_noeviction(unreachable, allow_eviction=False)
    finally:
        await unreachable.aclose()


# -- the receiver's readiness -----------------------------------------------------------------


def _receiver(client: aioredis.Redis, **redis_settings: object) -> httpx.AsyncClient:
    store = EventStore(client, RedisKeys("policy"), StoreLimits())
    receiver = ReceiverApp(
        ReceiverSettings(bearer_secrets=[BEARER]),
        IntakePolicy(),
        RedisSettings(**redis_settings),  # type: ignore[arg-type]
        store=store,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), base_url="http://r")


async def test_readyz_refuses_an_evicting_redis(
    client: aioredis.Redis, set_policy: Callable[[str], None]
) -> None:
    async with _receiver(client) as http:
        assert (await http.get("/readyz")).status_code == 200
        set_policy("volatile-lru")
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"] == "redis_eviction_policy"
        assert "volatile-lru" in response.json()["message"]
        assert FIX in response.json()["message"]
        set_policy("noeviction")
        assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_readyz_with_allow_eviction_is_ready_and_warns(
    client: aioredis.Redis, set_policy: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    set_policy("allkeys-lru")
    async with _receiver(client, allow_eviction=True) as http:
        with caplog.at_level(logging.WARNING):
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
    warnings = [r for r in caplog.records if "allkeys-lru" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)


# -- dnc-sync check ---------------------------------------------------------------------------


@pytest.fixture
def check_env(monkeypatch: pytest.MonkeyPatch, policy_redis: str) -> pytest.MonkeyPatch:
    for key, value in {
        "DNC_REDIS_URL": policy_redis,
        "DNC_RECEIVER_BEARER_SECRETS": "0123456789abcdef0123",
        "DNC_CXONE_CLIENT_ID": "client",
        "DNC_CXONE_CLIENT_SECRET": "client-secret-value",
        "DNC_CXONE_ACCESS_KEY_ID": "KEYID",
        "DNC_CXONE_ACCESS_KEY_SECRET": "access-key-secret-value",
        "DNC_CXONE_DNC_GROUP_ID": "1001",
    }.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_check_refuses_an_evicting_redis(
    check_env: pytest.MonkeyPatch, set_policy: Callable[[str], None]
) -> None:
    assert CliRunner().invoke(cli_app, ["check"]).exit_code == 0
    set_policy("allkeys-lru")
    result = CliRunner().invoke(cli_app, ["check"])
    assert result.exit_code == 2
    assert "allkeys-lru" in result.output and FIX in result.output


def test_check_with_allow_eviction_passes_with_a_warning(
    check_env: pytest.MonkeyPatch, set_policy: Callable[[str], None]
) -> None:
    set_policy("volatile-ttl")
    check_env.setenv("DNC_REDIS_ALLOW_EVICTION", "true")
    result = CliRunner().invoke(cli_app, ["check"])
    assert result.exit_code == 0
    assert "warning" in result.output and "volatile-ttl" in result.output


def test_check_says_when_redis_is_unreachable(check_env: pytest.MonkeyPatch) -> None:
    check_env.setenv("DNC_REDIS_URL", UNREACHABLE)
    result = CliRunner().invoke(cli_app, ["check"])
    assert result.exit_code == 3
    assert "not reachable" in result.output
    no_redis = CliRunner().invoke(cli_app, ["check", "--no-redis"])
    assert (no_redis.exit_code, no_redis.output.splitlines()[-1]) == (0, "configuration OK")


# -- the sync flow ----------------------------------------------------------------------------


async def test_the_sync_refuses_to_start_before_taking_the_lease(
    check_env: pytest.MonkeyPatch, set_policy: Callable[[str], None]
) -> None:
    from flows import sync as sync_module

    lease_attempts: list[object] = []

    class LeaseTaken(Exception):
        """What the flow would meet had it gone as far as the lease."""

    async def acquire_lease(self: PendingQueue, *args: object, **kwargs: object) -> object:
        lease_attempts.append(args)
        raise LeaseTaken  # whatever the lease's signature and answer: nothing further runs

    check_env.setattr(PendingQueue, "acquire_lease", acquire_lease)
    # the flow's own function, without Prefect's engine: no run context, so a plain logger
    check_env.setattr(sync_module, "get_run_logger", lambda: logging.getLogger("test.sync"))
    check_env.setenv("DNC_CXONE_ISSUER_URL", "http://127.0.0.1:1")
    set_policy("volatile-lru")
    with pytest.raises(EvictionPolicyError, match=FIX):
        await sync_module.sync_dnc.fn()
    assert lease_attempts == []
