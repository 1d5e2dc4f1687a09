"""Redis Sentinel with TLS and authentication: a ``rediss://`` URL means TLS to the primary
Sentinel names (and, unless ``DNC_REDIS_SENTINEL_TLS`` says otherwise, to the sentinels), with
the URL's ``ssl_*`` options; the sentinels get their own username and password.

The unit tests read the connection classes and arguments the client's pools would use (no
socket); the last test runs a TLS-only primary (plain port disabled) and a TLS-only sentinel
that requires a password, and talks to both through ``open_redis``."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection

from dnc.settings import RedisSettings
from dnc.store import open_redis
from tests.conftest import free_port

MASTER = "dnc-tls"


def _sentinel_pool_kwargs(client: redis.asyncio.Redis) -> tuple[type, dict[str, object]]:
    manager = getattr(client, "sentinel_manager")  # noqa: B009  # set by open_redis
    pool = manager.sentinels[0].connection_pool
    return pool.connection_class, dict(pool.connection_kwargs)


async def test_rediss_means_tls_to_the_primary_and_the_sentinels() -> None:
    settings = RedisSettings(
        url="rediss://app:primary-pw@ignored:6379/3?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required",
        sentinels=["s1:26379", "s2:26379"],
        sentinel_username="watcher",
        sentinel_password="sentinel-pw",
    )
    client = open_redis(settings)
    try:
        pool = client.connection_pool
        assert issubclass(pool.connection_class, SentinelManagedSSLConnection)
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "primary-pw", 3)
        assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"]) == ("/etc/ca.pem", "required")
        assert "host" not in kwargs and "port" not in kwargs  # those come from Sentinel
        sentinel_class, sentinel_kwargs = _sentinel_pool_kwargs(client)
        assert issubclass(sentinel_class, SSLConnection)
        assert sentinel_kwargs["username"] == "watcher"
        assert sentinel_kwargs["password"] == "sentinel-pw"
        assert sentinel_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
        # the primary's credentials are not sent to the sentinels, nor theirs to the primary
        assert "primary-pw" not in sentinel_kwargs.values()
        assert "sentinel-pw" not in kwargs.values()
    finally:
        await client.aclose()


async def test_redis_means_plain_connections_and_no_sentinel_credentials() -> None:
    client = open_redis(RedisSettings(url="redis://:pw@ignored:6379/0", sentinels=["s1:26379"]))
    try:
        pool = client.connection_pool
        assert pool.connection_class is SentinelManagedConnection
        assert pool.connection_kwargs["password"] == "pw"
        sentinel_class, sentinel_kwargs = _sentinel_pool_kwargs(client)
        assert not issubclass(sentinel_class, SSLConnection)
        assert sentinel_kwargs.get("password") is None
        assert sentinel_kwargs.get("username") is None
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "sentinel_tls", "primary_tls", "sentinels_tls"),
    [
        ("rediss://ignored:6379/0", False, True, False),  # plain sentinels, TLS primary
        ("redis://ignored:6379/0", True, False, True),  # TLS sentinels, plain primary
    ],
)
async def test_sentinel_tls_can_differ_from_the_primary(
    url: str, sentinel_tls: bool, primary_tls: bool, sentinels_tls: bool
) -> None:
    client = open_redis(RedisSettings(url=url, sentinels=["s1:26379"], sentinel_tls=sentinel_tls))
    try:
        primary_class = client.connection_pool.connection_class
        assert issubclass(primary_class, SentinelManagedSSLConnection) is primary_tls
        sentinel_class, _ = _sentinel_pool_kwargs(client)
        assert issubclass(sentinel_class, SSLConnection) is sentinels_tls
    finally:
        await client.aclose()


def test_sentinel_tls_defaults_to_the_url_scheme() -> None:
    assert RedisSettings(url="rediss://h:1/0").sentinel_uses_tls()
    assert not RedisSettings(url="redis://h:1/0").sentinel_uses_tls()
    assert not RedisSettings(url="rediss://h:1/0", sentinel_tls=False).sentinel_uses_tls()


def test_sentinels_need_a_tcp_url() -> None:
    with pytest.raises(ValueError, match="unix://"):
        RedisSettings(url="unix:///run/redis.sock", sentinels=["s1:26379"])


def test_the_sentinel_password_is_not_echoed() -> None:
    settings = RedisSettings(sentinel_password="sentinel-pw")
    assert "sentinel-pw" not in repr(settings)


# -- a real TLS primary and a real TLS sentinel --------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1/localhost and its key, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "redis.crt", folder / "redis.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _wait_tls(
    proc: subprocess.Popen[bytes], log: Path, port: int, ca: Path, password: str, what: str
) -> None:
    client = redis.Redis(
        port=port, ssl=True, ssl_ca_certs=str(ca), password=password, socket_timeout=1
    )
    deadline = time.monotonic() + 10
    try:
        while True:
            if proc.poll() is not None:
                text = log.read_text(errors="replace")
                if "tls" in text.lower():
                    pytest.skip(f"this redis-server cannot serve TLS ({what}): {text[-300:]}")
                raise RuntimeError(f"{what} exited with {proc.returncode}: {text[-500:]}")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, f"{what} did not answer over TLS in 10 s"
                time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def tls_sentinel(tmp_path: Path) -> Iterator[dict[str, object]]:
    """A TLS-only primary (``--port 0``: no plain port) with a password, and a TLS-only
    sentinel with a password of its own monitoring it."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/ensure-redis)"
    cert, key = _self_signed(tmp_path)
    primary_port, sentinel_port = free_port(), free_port()
    tls = ["--tls-cert-file", str(cert), "--tls-key-file", str(key),
           "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with (tmp_path / "primary.log").open("wb") as sink:
            procs.append(
                subprocess.Popen(
                    [server, "--port", "0", "--tls-port", str(primary_port), *tls,
                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(tmp_path), "--requirepass", "primary-pw",
                     "--maxmemory-policy", "noeviction"],
                    stdout=sink, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        _wait_tls(procs[0], tmp_path / "primary.log", primary_port, cert, "primary-pw", "primary")
        conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
        conf.write_text(
            f"port 0\ntls-port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {cert}\n"
            "tls-auth-clients no\ntls-replication yes\nrequirepass sentinel-pw\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 1\n"
            f"sentinel auth-pass {MASTER} primary-pw\n"
        )
        with (tmp_path / "sentinel.log").open("wb") as sink:
            procs.append(
                subprocess.Popen(
                    [server, str(conf), "--sentinel"], stdout=sink, stderr=subprocess.STDOUT
                )
            )
        _wait_tls(
            procs[1], tmp_path / "sentinel.log", sentinel_port, cert, "sentinel-pw", "sentinel"
        )
        yield {"primary": primary_port, "sentinel": sentinel_port, "ca": cert}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.mark.redis
@pytest.mark.socket
async def test_the_client_talks_tls_to_a_tls_only_primary_found_through_sentinel(
    tls_sentinel: dict[str, object],
) -> None:
    ca = str(tls_sentinel["ca"])
    settings = RedisSettings(
        url=f"rediss://:primary-pw@ignored:1/0?ssl_ca_certs={quote(ca)}",
        sentinels=[f"127.0.0.1:{tls_sentinel['sentinel']}"],
        sentinel_master=MASTER,
        sentinel_password="sentinel-pw",
        socket_timeout_s=2,
        connect_timeout_s=1,
    )
    client = open_redis(settings)
    try:
        await client.set("tls-probe", "over-tls")
        assert await client.get("tls-probe") == b"over-tls"
    finally:
        await client.aclose()
    # the write reached the primary itself (its only port speaks TLS)
    direct = redis.Redis(
        port=int(str(tls_sentinel["primary"])), ssl=True, ssl_ca_certs=ca, password="primary-pw"
    )
    try:
        assert direct.get("tls-probe") == b"over-tls"
    finally:
        direct.close()
