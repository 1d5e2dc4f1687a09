"""Redis high availability: the store finds the primary through Sentinel and follows it
across a failover (real redis-server primary, replica and sentinel processes)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dnc.errors import StoreUnavailable
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.settings import RedisSettings
from dnc.store import EventStore, RecordStatus, StoreLimits, open_redis
from tests.conftest import free_port
from tests.stored import state_value_sync

pytestmark = [pytest.mark.redis, pytest.mark.socket]
MASTER = "dnc-primary"


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)


def ping(port: int) -> redis.Redis:
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return client
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes] | int]]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/ensure-redis)"
    ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
    # --dir: a replica's full sync writes dump.rdb there, not into the checkout
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
              "--maxmemory-policy", "noeviction"]  # fmt: skip
    procs = [
        start([server, "--port", str(ports["primary"]), *common], tmp_path / "primary.log"),
        start(
            [server, "--port", str(ports["replica"]), *common,
             "--replicaof", "127.0.0.1", str(ports["primary"])],
            tmp_path / "replica.log",
        ),
    ]  # fmt: skip
    ping(ports["primary"])
    replica = ping(ports["replica"])
    deadline = time.monotonic() + 10
    while replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.05)
    conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
    conf.write_text(
        f"port {ports['sentinel']}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {ports['primary']} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 500\n"
        f"sentinel failover-timeout {MASTER} 5000\n"
    )
    procs.append(start([server, str(conf), "--sentinel"], tmp_path / "sentinel.log"))
    ping(ports["sentinel"])
    try:
        yield {**ports, "primary_process": procs[0]}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def opt_out(number: str) -> StoredEvent:
    ms = int(time.time() * 1000)
    return StoredEvent(
        eventId=derive_event_id(f"{number}|optOut|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=Action.OPT_OUT,
        eventMs=ms,
        receivedMs=ms,
    )


async def test_store_follows_the_primary_across_a_failover(
    ha: dict[str, subprocess.Popen[bytes] | int],
) -> None:
    settings = RedisSettings(
        url="redis://ignored:6379/0",
        sentinels=[f"127.0.0.1:{ha['sentinel']}"],
        sentinel_master=MASTER,
        socket_timeout_s=1,
        connect_timeout_s=0.5,
    )
    client = open_redis(settings)
    keys = RedisKeys("ha")
    store = EventStore(client, keys, StoreLimits())
    try:
        assert await store.record(opt_out("+12025550101")) is RecordStatus.QUEUED
        replica = redis.Redis(port=ha["replica"])
        deadline = time.monotonic() + 10
        while state_value_sync(replica, keys, "+12025550101") is None:
            assert time.monotonic() < deadline, "the replica never received the event"
            await asyncio.sleep(0.05)
        primary = ha["primary_process"]
        assert isinstance(primary, subprocess.Popen)
        primary.kill()  # SIGKILL: the primary dies without a goodbye
        primary.wait()
        refused = 0
        deadline = time.monotonic() + 30
        while True:
            try:
                status = await store.record(opt_out("+12025550102"))
                break
            except StoreUnavailable:  # what the receiver turns into 503 + Retry-After
                refused += 1
                assert time.monotonic() < deadline, "no new primary within 30 s"
                await asyncio.sleep(0.2)
        assert status is RecordStatus.QUEUED
        assert refused > 0  # the failover was seen, not skipped
        assert replica.info("replication")["role"] == "master"
        assert state_value_sync(replica, keys, "+12025550101") is not None
        assert state_value_sync(replica, keys, "+12025550102") is not None
    finally:
        await client.aclose()


def test_sentinel_addresses_are_validated() -> None:
    assert RedisSettings(sentinels="a:1, [::1]:26379").sentinel_addresses() == [
        ("a", 1),
        ("::1", 26379),
    ]
    with pytest.raises(ValueError, match="host:port"):
        RedisSettings(sentinels="no-port")


async def test_an_event_counts_as_recorded_only_once_replicas_confirm_it(
    ha: dict[str, subprocess.Popen[bytes] | int],
) -> None:
    client = open_redis(RedisSettings(url=f"redis://127.0.0.1:{ha['primary']}/0"))
    keys = RedisKeys("wait")
    one = EventStore(client, keys, StoreLimits(wait_replicas=1, wait_timeout_ms=2_000))
    two = EventStore(client, keys, StoreLimits(wait_replicas=2, wait_timeout_ms=200))
    try:
        assert await one.record(opt_out("+12025550101")) is RecordStatus.QUEUED
        # Confirmed by the replica before the answer: it is already there.
        assert state_value_sync(redis.Redis(port=ha["replica"]), keys, "+12025550101")
        with pytest.raises(StoreUnavailable, match="1 of 2 replicas"):
            await two.record(opt_out("+12025550102"))  # there is only one replica
    finally:
        await client.aclose()


def test_wait_timeout_must_be_shorter_than_the_socket_timeout() -> None:
    with pytest.raises(ValueError, match="WAIT_TIMEOUT_MS must be shorter"):
        RedisSettings(wait_replicas=1, wait_timeout_ms=2_000, socket_timeout_s=2)
    RedisSettings(wait_replicas=0, wait_timeout_ms=2_000, socket_timeout_s=2)  # unused: fine
