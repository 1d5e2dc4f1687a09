"""Where events are kept: Redis, directly or through Sentinel (``DNC_REDIS_*``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dnc.setting_values import split_list


class RedisSettings(BaseSettings):
    """Where events are kept (``DNC_REDIS_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_REDIS_", extra="ignore", hide_input_in_errors=True
    )

    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis URL (redis://, rediss:// or unix://); with sentinels, its host "
        "and port are ignored: its user, password, database number, TLS (rediss://) and "
        "ssl_* query options (ssl_ca_certs, ssl_cert_reqs, ...) apply to the primary "
        "Sentinel names (unix:// is refused with sentinels).",
        min_length=8,
    )
    sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Redis Sentinel addresses host:port (comma-separated); when set, the "
        "primary is found through them and followed across failovers.",
    )
    sentinel_master: str = Field(
        default="mymaster",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Name of the monitored primary in Sentinel (sentinel monitor <name> ...).",
    )
    sentinel_tls: bool | None = Field(
        default=None,
        description="Talk TLS to the sentinels (with the URL's ssl_* options); unset: as "
        "the URL (rediss:// yes, redis:// no).",
    )
    sentinel_username: str = Field(
        default="",
        max_length=256,
        description="Username (Redis ACL) for the sentinels; empty: none.",
    )
    sentinel_password: SecretStr = Field(
        default=SecretStr(""),
        description="Password for the sentinels (their requirepass or ACL user); empty: "
        "none. The URL's password is for the primary only.",
    )
    namespace: str = Field(
        default="dnc",
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="Key namespace; becomes the hash tag {namespace} of every key.",
    )
    socket_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="Per-command socket timeout, seconds."
    )
    connect_timeout_s: float = Field(
        default=1.0, gt=0, le=60, description="TCP connect timeout, seconds."
    )
    max_connections: int = Field(
        default=64, ge=1, le=10_000, description="Connection-pool size per process."
    )
    idempotency_ttl_s: int = Field(
        default=7 * 86_400,
        ge=60,
        le=90 * 86_400,
        description="How long an eventId is remembered for duplicate detection, seconds; the "
        "default is 7 days.",
    )
    rejected_stream_max_len: int = Field(
        default=100_000,
        ge=1_000,
        le=100_000_000,
        description="Approximate cap on the stream of unauthenticated refusals, entries (a "
        "flood from anyone must not fill Redis; entries trimmed before the archive copied "
        "them are recorded as a gap). The audit, rejected and applications streams have no "
        "cap: only the archive trims them, after copying (dnc.audit).",
    )

    wait_replicas: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Replicas that must confirm each event (Redis WAIT) before the receiver "
        "answers 2xx; otherwise 503 and the caller retries. 0: the primary alone.",
    )
    wait_timeout_ms: int = Field(
        default=1_000, ge=1, le=60_000, description="How long to wait for them, ms."
    )
    allow_eviction: bool = Field(
        default=False,
        description="Run even when Redis's maxmemory-policy is not noeviction (a WARNING at "
        "each check instead of a refusal). Evicted keys are lost opt-outs, leases and "
        "duplicate detection: leave false.",
    )

    @field_validator("sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        return split_list(value)

    @field_validator("sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65_536:
                raise ValueError(f"{address!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _wait_shorter_than_socket_timeout(self) -> RedisSettings:
        if self.wait_replicas and self.wait_timeout_ms >= self.socket_timeout_s * 1000:
            raise ValueError(
                "DNC_REDIS_WAIT_TIMEOUT_MS must be shorter than DNC_REDIS_SOCKET_TIMEOUT_S, "
                "or the socket gives up before WAIT answers"
            )
        return self

    @model_validator(mode="after")
    def _sentinels_need_tcp(self) -> RedisSettings:
        if self.sentinels and self._scheme() not in ("redis", "rediss"):
            raise ValueError(
                "DNC_REDIS_URL must be redis:// or rediss:// with DNC_REDIS_SENTINELS "
                "(Sentinel names a TCP primary; unix:// cannot reach it)"
            )
        return self

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``sentinels`` as (host, port) pairs."""
        pairs = [address.rpartition(":") for address in self.sentinels]
        return [(host.strip("[]"), int(port)) for host, _, port in pairs]

    def sentinel_uses_tls(self) -> bool:
        """Whether connections to the sentinels use TLS: ``sentinel_tls``, or when unset,
        whether the URL is ``rediss://``."""
        if self.sentinel_tls is not None:
            return self.sentinel_tls
        return self._scheme() == "rediss"

    def _scheme(self) -> str:
        return self.url.partition("://")[0].lower()
