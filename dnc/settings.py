"""Settings, one pydantic-settings class per area, read from ``DNC_<AREA>_...`` variables.

Validation errors never echo the input (``hide_input_in_errors``): a bad value may be, or sit
beside, a secret (a list of secrets, a Redis URL with a password).

Build each once at an entry point (CLI command, ASGI factory) and pass it down; tests build
them with keyword arguments. Lists (secrets) are read as JSON (``["a","b"]``) or as a
comma-separated string. A secret of ``CxoneSettings`` and ``ReceiverSettings`` may instead come
from a Prefect Secret block named by its ``*_BLOCK`` variable (``dnc.secret_blocks``).
"""

from __future__ import annotations

import json
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dnc.e164 import is_supported_region
from dnc.intake import IntakePolicy
from dnc.secret_blocks import BLOCK_NAME_PATTERN, fill_from_block
from dnc.timestamps import UnknownTimeZone, time_zone


def split_list(value: object) -> object:
    """A JSON list or a comma-separated string as a list; anything else unchanged (for list
    settings read from one environment variable)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _long_enough(value: list[SecretStr]) -> list[SecretStr]:
    if any(len(secret.get_secret_value()) < 16 for secret in value):
        raise ValueError("each secret must be at least 16 characters")
    return value


SecretList = Annotated[
    list[SecretStr], NoDecode, BeforeValidator(split_list), AfterValidator(_long_enough)
]
"""Secrets of at least 16 characters each, given as a list, a JSON list or a comma-separated
string (the receiver's, from the environment or from a Secret block)."""

_SECRET_LIST: TypeAdapter[list[SecretStr]] = TypeAdapter(SecretList)


def _not_empty(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise ValueError("the secret is empty")
    return value


_SECRET: TypeAdapter[SecretStr] = TypeAdapter(Annotated[SecretStr, AfterValidator(_not_empty)])
"""One secret from a Secret block: a non-empty string."""


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


class IntakeSettings(BaseSettings):
    """How events are judged, whatever door they come through (``DNC_INTAKE_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_INTAKE_", extra="ignore", hide_input_in_errors=True
    )

    default_region: str = Field(
        default="US",
        description='ISO 3166-1 alpha-2 region for numbers without a country code, or "none" '
        "to accept only numbers written with one.",
    )
    max_future_skew_s: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="How far after receipt an opt-in's event time may be, seconds; later is "
        "refused. Any event time after receipt is recorded as the receipt time (the time sent "
        "is kept), and an opt-out is never refused for it.",
    )
    metadata_max_bytes: int = Field(
        default=4096,
        ge=0,
        le=32_768,
        description="Cap on the metadata object as JSON, bytes; over it, an opt-in is refused "
        "and an opt-out kept without it.",
    )
    naive_time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone (America/New_York) in which a timestamp or expiresAt "
        "written without a zone is read (checked at start-up). A local time that occurs "
        "twice (clocks go back) is read as the earlier instant, or the later for an opt-out's "
        "timestamp, so a later opt-out cannot lose to an earlier opt-in; one skipped (clocks "
        "go forward) with the offset before the change. Such events are counted by sender in "
        "dnc-sync status.",
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.lower() == "none":
            return "none"
        if not is_supported_region(value):
            raise ValueError(f"{value!r} is not a region with a numbering plan")
        return value.upper()

    @field_validator("naive_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            time_zone(value)
        except UnknownTimeZone as exc:
            raise ValueError(str(exc)) from None
        return value

    def policy(self) -> IntakePolicy:
        """The ``IntakePolicy`` these settings describe."""
        return IntakePolicy(
            default_region=None if self.default_region == "none" else self.default_region,
            max_future_skew_s=self.max_future_skew_s,
            metadata_max_bytes=self.metadata_max_bytes,
            naive_time_zone=self.naive_time_zone,
        )


class ReceiverSettings(BaseSettings):
    """The HTTP receiver (``DNC_RECEIVER_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_RECEIVER_", extra="ignore", hide_input_in_errors=True
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="Bind address.")
    port: int = Field(default=8080, ge=1, le=65_535, description="Bind port.")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    bearer_secrets: SecretList = Field(
        default_factory=list,
        description="Accepted `Authorization: Bearer` secrets (several during a rotation), "
        "each at least 16 characters.",
    )
    hmac_secrets: SecretList = Field(
        default_factory=list,
        description="Keys for `X-Signature: sha256=<hex>` body signatures (several during a "
        "rotation), each at least 16 characters.",
    )
    bearer_secrets_block: str = Field(
        default="",
        pattern=BLOCK_NAME_PATTERN,
        description="Prefect Secret block holding the bearer secrets (a JSON list, or one "
        "string), read at start-up instead of DNC_RECEIVER_BEARER_SECRETS (not both); empty: "
        "none.",
    )
    hmac_secrets_block: str = Field(
        default="",
        pattern=BLOCK_NAME_PATTERN,
        description="Prefect Secret block holding the HMAC keys (a JSON list, or one string), "
        "read at start-up instead of DNC_RECEIVER_HMAC_SECRETS (not both); empty: none.",
    )
    signature_window_s: int = Field(
        default=300,
        ge=1,
        le=3_600,
        description="Replay window for signed requests (X-Signature-Timestamp), seconds.",
    )
    auth_disabled: bool = Field(
        default=False,
        description="Take events without authentication (logs a warning at start-up); "
        "per-number history (GET /v1/numbers/{number}) still needs an intake bearer secret or "
        "a DNC_AUDIT_READ_SECRETS one.",
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1_024, le=1_048_576, description="Request body cap, bytes."
    )
    max_batch_events: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Most events in one POST /v1/events:batch request; more: 413 naming the limit.",
    )
    max_batch_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        le=67_108_864,
        description="Request body cap of POST /v1/events:batch, bytes (the single-event cap "
        "DNC_RECEIVER_MAX_BODY_BYTES does not apply to it).",
    )
    body_timeout_s: float = Field(
        default=10.0,
        ge=0.05,
        le=300,
        description="Time a request body may take to arrive in full once the headers are in, "
        "seconds; a slower body is answered 408 and its connection closed.",
    )
    header_timeout_s: float = Field(
        default=10.0,
        ge=0.05,
        le=300,
        description="Time a connection may take to send a request line and headers (from "
        "connecting, or from the first byte of a next request), seconds; then 408 and close.",
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1_024,
        le=1_048_576,
        description="Cap on a request's line and headers together, bytes; over it: 431 and close.",
    )
    retry_after_s: int = Field(
        default=5, ge=1, le=3_600, description="Retry-After sent with 503, seconds."
    )
    rejected_excerpt_bytes: int = Field(
        default=4_096,
        ge=0,
        le=65_536,
        description="How much of a refused body is kept in the rejected stream, bytes.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="Log level of the receiver's JSON log lines: DEBUG, INFO, WARNING or ERROR.",
    )

    block_secrets: ClassVar[tuple[str, ...]] = ("bearer_secrets", "hmac_secrets")
    """The secrets that a ``<name>_block`` setting may read from a Prefect Secret block."""

    @model_validator(mode="after")
    def _secrets_from_blocks(self) -> ReceiverSettings:
        for field in self.block_secrets:
            fill_from_block(self, field, _SECRET_LIST)
        return self


class CxoneSettings(BaseSettings):
    """The CXone target and how the client treats it (``DNC_CXONE_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_CXONE_", extra="ignore", hide_input_in_errors=True
    )

    adapter: Literal["dnc-groups", "outbound-contacts"] = Field(
        default="dnc-groups",
        description="dnc-groups: CXone's DNC-group API (real tenants); outbound-contacts: the "
        "/api/v2/outbound/contacts upsert contract.",
    )
    issuer_url: str = Field(
        default="https://cxone.niceincontact.com",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="OpenID issuer for discovery (FedRAMP and other clouds use another host).",
    )
    api_version: int = Field(
        default=33,
        ge=1,
        le=99,
        description="Admin API version: paths use /inContactAPI/services/v<N>.0/.",
    )
    dnc_group_id: str = Field(
        default="", max_length=64, description="The DNC group that opt-outs are written to."
    )
    client_id: str = Field(default="", max_length=256, description="OAuth client id.")
    client_secret: SecretStr = Field(default=SecretStr(""), description="OAuth client secret.")
    access_key_id: str = Field(
        default="", max_length=256, description="CXone access key id (dnc-groups adapter)."
    )
    access_key_secret: SecretStr = Field(
        default=SecretStr(""), description="CXone access key secret (dnc-groups adapter)."
    )
    client_secret_block: str = Field(
        default="",
        pattern=BLOCK_NAME_PATTERN,
        description="Prefect Secret block holding the OAuth client secret, read at start-up "
        "(each flow run) instead of DNC_CXONE_CLIENT_SECRET (not both); empty: none.",
    )
    access_key_secret_block: str = Field(
        default="",
        pattern=BLOCK_NAME_PATTERN,
        description="Prefect Secret block holding the access key secret, read at start-up "
        "(each flow run) instead of DNC_CXONE_ACCESS_KEY_SECRET (not both); empty: none.",
    )
    phone_format: Literal["auto", "e164-digits"] = Field(
        default="auto",
        description="Numbers sent to a DNC group: auto = national 10 digits for +1, E.164 "
        "digits without + for others; e164-digits = always digits without +.",
    )
    contacts_base_url: str = Field(
        default="", description="https://<domain> of the outbound-contacts API."
    )
    custom_list_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="customListIds sent with every outbound contact."
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="Numbers per API call.")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Connect, seconds.")
    read_timeout_s: float = Field(default=30.0, gt=0, le=600, description="Read, seconds.")
    write_timeout_s: float = Field(default=30.0, gt=0, le=600, description="Write, seconds.")
    pool_timeout_s: float = Field(
        default=5.0, gt=0, le=600, description="Wait for a pooled connection, seconds."
    )
    max_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries of one call on transient failures."
    )
    backoff_base_s: float = Field(
        default=0.5, ge=0, le=60, description="First backoff step, seconds (full jitter)."
    )
    backoff_cap_s: float = Field(default=30.0, ge=0, le=3600, description="Backoff cap, seconds.")
    retry_after_cap_s: float = Field(
        default=120.0, ge=0, le=3600, description="Longest Retry-After honoured, seconds."
    )
    rate_limit_rps: float = Field(
        default=10.0, ge=0, le=10_000, description="Requests per second to CXone (0 = no limit)."
    )
    max_concurrency: int = Field(
        default=4, ge=1, le=256, description="Requests in flight to CXone at once."
    )
    token_skew_s: float = Field(
        default=30.0, ge=0, le=600, description="Replace a token this long before expiry, s."
    )
    send_trace: bool = Field(
        default=False,
        description="Test stacks only: send the X-Dnc-Sync-Trace header (each record's number "
        "and event time, UTC ms) with every write, for the sandbox's write journal.",
    )

    @field_validator("custom_list_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return split_list(value)

    block_secrets: ClassVar[tuple[str, ...]] = ("client_secret", "access_key_secret")
    """The secrets that a ``<name>_block`` setting may read from a Prefect Secret block."""

    @model_validator(mode="after")
    def _secrets_from_blocks(self) -> CxoneSettings:
        for field in self.block_secrets:
            fill_from_block(self, field, _SECRET)
        return self


class SyncSettings(BaseSettings):
    """The sync flow (``DNC_SYNC_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_SYNC_", extra="ignore", hide_input_in_errors=True
    )

    claim_size: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description="Numbers claimed per loop of a run (many full batches per loop).",
    )
    time_budget_s: float = Field(
        default=25.0,
        gt=0,
        le=3_600,
        description="A run stops claiming after this many seconds (keep it under the "
        "schedule interval).",
    )
    lease_ttl_s: int = Field(
        default=120,
        ge=5,
        le=3_600,
        description="Sync lease lifetime, seconds; renewed every third of it, freed if a run "
        "dies; at least the CXone attempt bound (connect + pool + write + read timeouts) + "
        "DNC_SYNC_FENCE_MARGIN_S + 1, checked by dnc-sync check and each sync run (dnc.fence).",
    )
    lag_limit_s: int = Field(
        default=3_600,
        ge=1,
        le=30 * 86_400,
        description="A change waiting longer than this since it was received fails the run "
        "and emits dnc.sync.lagging, seconds.",
    )
    push_retries: int = Field(
        default=3, ge=0, le=20, description="Prefect retries of a batch on transient failures."
    )
    push_retry_delay_s: float = Field(
        default=2.0, ge=0, le=600, description="First Prefect retry delay of a batch, seconds."
    )
    fence_margin_s: float = Field(
        default=5.0,
        ge=0.5,
        le=600,
        description="Safety margin of the lease fence, seconds: an HTTP attempt to CXone "
        "starts only while the lease outlives the attempt's bound plus this margin.",
    )
    retry_max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Pushes of one number that CXone answers 'try again later' before it "
        "is dead-lettered with the last reason.",
    )
    retry_max_age_s: int = Field(
        default=21_600,
        ge=1,
        le=30 * 86_400,
        description="A number retried for longer than this since its first temporary "
        "failure is dead-lettered with the last reason, seconds.",
    )
    retry_backoff_base_s: float = Field(
        default=30.0,
        ge=0,
        le=3_600,
        description="Wait before a number that failed temporarily is claimed again, "
        "seconds; doubles per attempt (equal jitter), at most retry_backoff_cap_s; a failed "
        "batch waits the base alone.",
    )
    retry_backoff_cap_s: float = Field(
        default=1_800.0,
        ge=0,
        le=86_400,
        description="Longest wait between two pushes of a failing number, seconds.",
    )
    gather_ms: int = Field(
        default=250,
        ge=0,
        le=10_000,
        description="In a run that keeps draining, a claim that found less than a full batch is "
        "followed by at least this long before the next claim, so one batch carries what "
        "arrives meanwhile (fewer API calls and Prefect task runs for a trickle), ms.",
    )
    remove_foreign_records: bool = Field(
        default=False,
        description="Let an opt-in remove a DNC record this service did not create (not in "
        "the ownership ledger, dnc.ownership). Off: such an opt-in is not sent (not_owned), "
        "the record stays and reconciliation reports it.",
    )


class ReconcileSettings(BaseSettings):
    """The reconciliation flow (``DNC_RECONCILE_*``): reading CXone back (``dnc.reconcile``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_RECONCILE_", extra="ignore", hide_input_in_errors=True
    )

    page_size: int = Field(
        default=1_000,
        ge=1,
        le=1_000,
        description="Records per listing call (top); API calls = ceil(records / page_size).",
    )
    page_concurrency: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Listing calls in flight at once (the CXone rate limit still paces them).",
    )
    time_budget_s: float = Field(
        default=3_600.0,
        gt=0,
        le=86_400,
        description="A run stops paging after this many seconds and reports itself "
        "incomplete (no missing-record findings), seconds.",
    )
    lease_wait_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How long a run keeps trying to take the sync lease (a sync run holds it "
        "most of the time on a short interval), seconds.",
    )
    sample_size: int = Field(
        default=20,
        ge=0,
        le=1_000,
        description="Masked numbers shown per drift class in the report.",
    )
    verify_limit: int = Field(
        default=1_000,
        ge=0,
        le=100_000,
        description="Opt-outs found missing from the listing that are looked up one by one "
        "before they are reported (a listing pages by offset, so a record deleted mid-run "
        "can hide another); past this many, the rest are reported unconfirmed.",
    )


_AUDIT_BACKENDS = frozenset({"sqlite", "postgresql"})
"""The databases the audit store runs on (``dnc.audit.database``)."""


class AuditSettings(BaseSettings):
    """The audit store, the system of record (``DNC_AUDIT_*``; ``dnc.audit``)."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_AUDIT_", extra="ignore", hide_input_in_errors=True
    )

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///.data/audit.sqlite3"),
        description="SQLAlchemy URL of the audit store: sqlite:///PATH (the embedded default, "
        "relative to the working folder; make run sets it to its data folder) or "
        "postgresql+psycopg://USER:PASSWORD@HOST/DB. Secret: it may hold a password.",
    )
    retention_days: int = Field(
        default=1_830,
        ge=1,
        le=36_500,
        description="Records older than this are purged by the archive flow (the purge is "
        "itself recorded), days; the default is about five years.",
    )
    archive_batch: int = Field(
        default=5_000,
        ge=1,
        le=100_000,
        description="Stream entries copied per database transaction by the archive.",
    )
    archive_time_budget_s: float = Field(
        default=50.0,
        gt=0,
        le=3_600,
        description="An archive run stops copying after this many seconds (keep it under the "
        "schedule interval); the next run goes on.",
    )
    archive_lag_max_entries: int = Field(
        default=200_000,
        ge=1,
        le=1_000_000_000,
        description="Unarchived stream entries beyond which status, /metrics and the archive "
        "run report a lagging archive (nothing is dropped).",
    )
    archive_lag_max_s: int = Field(
        default=900,
        ge=1,
        le=30 * 86_400,
        description="An unarchived stream entry older than this also means a lagging archive "
        "(a stopped archive on a quiet system), seconds.",
    )
    read_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer secrets that may only read per-number history "
        "(GET /v1/numbers/{number}); intake secrets may read it too.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        """Refuse now, naming why, a URL the audit store cannot be opened with (never echoing
        it: it may hold a password)."""
        try:
            url = make_url(value.get_secret_value())
            port, backend = url.port, url.get_backend_name()
        except ArgumentError:
            raise ValueError(
                "DNC_AUDIT_DATABASE_URL is not a URL SQLAlchemy can read (write "
                "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB)"
            ) from None
        except ValueError:  # int() of the port: its message would quote the URL
            raise ValueError("DNC_AUDIT_DATABASE_URL has a port that is not a number") from None
        if port is not None and not 1 <= port <= 65_535:
            raise ValueError("DNC_AUDIT_DATABASE_URL has a port outside 1-65535")
        if backend not in _AUDIT_BACKENDS:
            raise ValueError(
                "DNC_AUDIT_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL (the "
                "audit store runs on SQLite or PostgreSQL only)"
            )
        return value

    @field_validator("read_secrets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("read_secrets")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(secret.get_secret_value()) < 16 for secret in value):
            raise ValueError("each secret must be at least 16 characters")
        return value
