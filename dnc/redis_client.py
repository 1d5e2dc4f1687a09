"""The Redis client: a bounded pool to one server, or to the primary Sentinel names."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from dnc.redis_settings import RedisSettings


def open_redis(settings: RedisSettings) -> aioredis.Redis:
    """An asyncio Redis client with a bounded pool; the caller closes it (``aclose()``).

    With ``settings.sentinels``, the client asks Sentinel for the current primary of
    ``settings.sentinel_master`` and follows it across failovers (a command in flight during
    one fails as ``StoreUnavailable``, so the receiver answers 503 and the caller retries).
    """
    if settings.sentinels:
        return _sentinel_client(settings)
    return aioredis.Redis.from_url(
        settings.url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        max_connections=settings.max_connections,
        health_check_interval=30,
    )


def _sentinel_client(settings: RedisSettings) -> aioredis.Redis:
    """A client of the primary Sentinel names for ``settings.sentinel_master``.

    The URL is read as redis-py's ``from_url`` reads it (user, password, database, query
    options such as ``ssl_ca_certs``/``ssl_cert_reqs``) except for its host and port, which
    Sentinel supplies; ``rediss://`` makes every connection to the primary TLS. The sentinels
    get ``sentinel_username``/``sentinel_password`` and TLS as ``sentinel_uses_tls()`` says,
    with the URL's ``ssl_*`` options."""
    options: dict[str, Any] = dict(parse_url(settings.url))
    primary_tls = options.pop("connection_class", None) is SSLConnection
    for address_part in ("host", "port", "path"):
        options.pop(address_part, None)
    tls_options = {name: value for name, value in options.items() if name.startswith("ssl_")}
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        "username": settings.sentinel_username or None,
        "password": settings.sentinel_password.get_secret_value() or None,
    }
    if settings.sentinel_uses_tls():
        sentinel_kwargs |= {"ssl": True, **tls_options}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves __init__ untyped
        settings.sentinel_addresses(), sentinel_kwargs=sentinel_kwargs
    )
    primary_kwargs: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "health_check_interval": 30,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
    }
    primary_kwargs |= options  # the URL's query wins, as with from_url
    primary_kwargs["connection_class"] = (
        SentinelManagedSSLConnection if primary_tls else SentinelManagedConnection
    )
    client: _SentinelRedis = sentinel.master_for(
        settings.sentinel_master, redis_class=_SentinelRedis, **primary_kwargs
    )
    client.sentinel_manager = sentinel
    return client


class _SentinelRedis(aioredis.Redis):
    """A client of the Sentinel-found primary that also closes its Sentinel connections."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()
