"""Shared fixtures: a real redis-server for the session, fakeredis stores, an in-process client,
a real PostgreSQL server for the audit store.

The real Redis is ``DNC_TEST_REDIS_URL`` when set (``.ci/run`` starts one), otherwise a
throwaway ``redis-server`` this session starts on a free loopback port and stops at the end.
Each test gets its own key namespace, so tests never see each other's keys.

PostgreSQL works the same way: ``DNC_TEST_POSTGRES_URL`` when set, otherwise a throwaway
cluster (``scripts/pg-throwaway``) when the server binaries are installed, otherwise the
PostgreSQL tests skip (fail under ``DNC_REQUIRE_POSTGRES=1``). Each test gets its own database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import httpx
import pytest
import redis
import redis.asyncio as aioredis
import sqlalchemy
from sqlalchemy import Engine

from dnc.intake import IntakePolicy
from dnc.keys import RedisKeys
from dnc.settings import ReceiverSettings, RedisSettings
from dnc.store import EventStore, StoreLimits
from receiver.app import ReceiverApp

BEARER = "test-bearer-secret-0123456789"
HMAC_KEY = "test-hmac-secret-0123456789abcdef"
SHARED_CASES = Path(__file__).resolve().parents[1].parent / "shared" / "cases"
PG_THROWAWAY = Path(__file__).resolve().parents[1] / "scripts" / "pg-throwaway"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ok(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Wait until GET ``url`` answers 200 from the server process ``proc``; raise if the
    process exits or ``timeout_s`` seconds pass."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s} s")


def _wait_for_redis(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url)
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server for this session."""
    given = os.environ.get("DNC_TEST_REDIS_URL")
    if given:
        _wait_for_redis(given, 5)
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: `apt-get install -y redis-server`, or set "
            "DNC_TEST_REDIS_URL to a Redis the tests may write to"
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxmemory-policy",
            "noeviction",  # what the receiver, the sync and `dnc-sync check` require
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(url, 10)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def namespace() -> str:
    """A key namespace no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def real_redis(redis_url: str, namespace: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client to the real Redis; this test's keys are deleted afterwards."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match="{" + namespace + "}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """A fakeredis server; set ``.connected = False`` to simulate an outage."""
    return fakeredis.FakeServer()


@pytest.fixture
def fake_redis(fake_server: fakeredis.FakeServer) -> aioredis.Redis:
    """An asyncio fakeredis client on ``fake_server``."""
    return fakeredis.FakeAsyncRedis(server=fake_server)


@pytest.fixture(params=["fake", "real"])
def any_redis(request: pytest.FixtureRequest) -> aioredis.Redis:
    """The same test against fakeredis and against the real redis-server."""
    name = "fake_redis" if request.param == "fake" else "real_redis"
    client: aioredis.Redis = request.getfixturevalue(name)
    return client


def make_store(client: aioredis.Redis, namespace: str = "dnc") -> EventStore:
    """An ``EventStore`` on ``client`` with default limits."""
    return EventStore(client, RedisKeys(namespace), StoreLimits())


def make_app(store: EventStore, **settings: object) -> ReceiverApp:
    """A receiver on ``store``, authenticating with ``BEARER`` and ``HMAC_KEY`` unless
    ``settings`` say otherwise (keyword arguments of ``ReceiverSettings``). ``/readyz``
    accepts any eviction policy with a warning: fakeredis reports none (the refusal is
    ``tests/test_redis_policy.py``'s, on a real redis-server)."""
    values: dict[str, object] = {"bearer_secrets": [BEARER], "hmac_secrets": [HMAC_KEY]}
    values.update(settings)
    policy = IntakePolicy(default_region="US")
    redis_settings = RedisSettings(allow_eviction=True)
    return ReceiverApp(ReceiverSettings(**values), policy, redis_settings, store=store)


def make_client(app: ReceiverApp, *, auth: bool = True) -> httpx.AsyncClient:
    """An in-process client for ``app`` (``httpx.ASGITransport``), bearer-authenticated."""
    headers = {"Authorization": f"Bearer {BEARER}"} if auth else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://receiver", headers=headers
    )


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    """URL of a CXone sandbox (``dnc-sync sandbox``) served for the session over a real
    socket, with its development defaults (no ``DNC_*`` variable reaches it). Tests reset its
    state and faults through ``POST /_sandbox/reset``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnc_sync", "sandbox", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/healthz", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _postgres_installed() -> bool:
    """Whether PostgreSQL's server binaries are here (Debian keeps them off PATH)."""
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or bool(shutil.which("initdb"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL server's ``dnc_audit_test`` database for this
    session: ``DNC_TEST_POSTGRES_URL`` when set (``.ci/run`` starts one), otherwise a throwaway
    cluster on a free loopback port, stopped and deleted at the end. Skips when PostgreSQL is
    not installed, fails instead under ``DNC_REQUIRE_POSTGRES=1``."""
    given = os.environ.get("DNC_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if not _postgres_installed():
        why = "PostgreSQL is not installed (scripts/ensure-postgres installs it)"
        if os.environ.get("DNC_REQUIRE_POSTGRES") == "1":
            pytest.fail(why)
        pytest.skip(why)
    # Not tmp_path_factory: its 0700 directories keep out the postgres user that the cluster
    # runs as under root, and its long paths can overflow the unix socket path limit.
    workdir = tempfile.mkdtemp(prefix="dnc-pg-")
    try:
        started = subprocess.run(
            [str(PG_THROWAWAY), "start", workdir, str(free_port())],
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(f"scripts/pg-throwaway start failed:\n{started.stderr}")
        yield started.stdout.strip()
    finally:
        subprocess.run([str(PG_THROWAWAY), "stop", workdir], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def audit_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test against the audit store's two databases: a fresh SQLite file in
    ``tmp_path``, and a fresh empty PostgreSQL database on ``postgres_url``'s server, dropped
    afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.sqlite3"
        return
    server_url = sqlalchemy.make_url(request.getfixturevalue("postgres_url"))
    name = "dnc_t_" + uuid.uuid4().hex[:16]
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(audit_database_url: str) -> Iterator[Engine]:
    """An audit store engine on a fresh, migrated database (``audit_database_url``: SQLite
    and PostgreSQL), disposed after the test."""
    from dnc.audit.database import open_engine, upgrade

    engine = open_engine(audit_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the slowest tests first (``tests/scheduling.py``)."""
    from tests.scheduling import longest_first

    longest_first(items)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, absent without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Share the suite between xdist workers by module (``tests/scheduling.py``)."""
    from tests.scheduling import ModuleScheduling

    return ModuleScheduling(config, log)
