"""Sandbox settings (``DNC_SANDBOX_*``): what is fixed at start, and the knobs tests turn.

``FaultConfig`` holds what may change while the sandbox runs (``POST /_sandbox/faults``);
``SandboxSettings`` adds what is fixed at start (bind address, credentials, tenant, groups) and
reads all of it from the environment. Lists are read as JSON (``["a","b"]``) or as a
comma-separated string. The credential defaults are fixed development values, so
``dnc-sync sandbox`` runs with no configuration; they protect nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dnc.settings import split_list

RetryAfterMode = Literal["seconds", "http-date", "none"]

_GROUP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NUMBER = re.compile(r"^\+?([0-9]{7,15})$")


class FaultConfig(BaseModel):
    """Behaviour that may change at run time: latency, rate limit, injected faults, token
    lifetime, and how a contact conflict is reported. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(
        default=0, ge=0, le=60_000, description="Added to every API and token call, ms."
    )
    delete_latency_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description="Added to every DNC-group DELETE (an opt-in's expiry), after the other "
        "faults and before its records are expired, ms; not cut short when the client gives "
        "up, so the expiry lands late (a slow write the client abandoned).",
    )
    rate_limit_rps: float = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Token-bucket rate limit over API and token calls, requests per second "
        "(burst: one second's worth, at least 1); 0 turns it off, otherwise at least 1/60 "
        "(one a minute).",
    )
    retry_after_mode: RetryAfterMode = Field(
        default="seconds",
        description='Retry-After of a 429: "seconds" (integer delta), "http-date" '
        '(IMF-fixdate) or "none" (no header).',
    )
    error_rate: float = Field(
        default=0, ge=0, le=1, description="Fraction of API and token calls answered 500/502/503."
    )
    timeout_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Fraction of API and token calls that hang for hang_s, then answer 504.",
    )
    lost_reply_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Fraction of successful API calls whose answer is lost: a write is "
        "applied (a read answered), then the call hangs for hang_s and answers 504 (the "
        "dangerous timeout).",
    )
    hang_s: float = Field(
        default=45,
        ge=0,
        le=600,
        description="How long a timeout fault hangs, seconds (longer than the client's "
        "default 30 s read timeout).",
    )
    failing_numbers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Numbers (digits or E.164; 10 digits also match +1) that fail: a "
        "per-record temporary failure in DNC groups, a 503 for an outbound contacts batch "
        "holding one.",
    )
    rejected_numbers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Numbers (digits or E.164; 10 digits also match +1) that DNC groups refuse "
        "for good: a per-record 'Invalid phone number.' inside the 2xx, as CXone answers a "
        "number it will not take (the sync dead-letters it).",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        description="Seed of the fault random generator (None: from the OS), so runs repeat.",
    )
    token_ttl_s: int = Field(
        default=3_600, ge=1, le=86_400, description="Lifetime of issued access tokens, seconds."
    )
    conflict_names_number: bool = Field(
        default=True,
        description="Whether a contacts 409 names the conflicting phoneNumber beside its "
        "existingRecordId.",
    )

    @field_validator("rate_limit_rps")
    @classmethod
    def _sane_rate(cls, value: float) -> float:
        if 0 < value < 1 / 60:
            raise ValueError("rate_limit_rps must be 0 (off) or at least 1/60 (one a minute)")
        return value

    @field_validator("failing_numbers", "rejected_numbers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("failing_numbers", "rejected_numbers")
    @classmethod
    def _digits(cls, value: list[str]) -> list[str]:
        digits = []
        for number in value:
            match = _NUMBER.match(number.strip())
            if match is None:
                raise ValueError(f"{number!r} is not 7-15 digits with an optional leading +")
            digits.append(match.group(1))
        return digits

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultConfig:
        if self.error_rate + self.timeout_rate > 1:
            raise ValueError("error_rate + timeout_rate must be at most 1")
        return self

    def faults(self) -> FaultConfig:
        """Only the run-time fields, as a plain ``FaultConfig`` (drops any subclass fields)."""
        return FaultConfig.model_validate(self.model_dump(include=set(FaultConfig.model_fields)))


class SandboxSettings(BaseSettings, FaultConfig):
    """The local CXone sandbox (``DNC_SANDBOX_*``): every ``FaultConfig`` field plus the
    bind address, both adapters' credentials, the tenant and its DNC groups."""

    model_config = SettingsConfigDict(
        env_prefix="DNC_SANDBOX_", extra="ignore", hide_input_in_errors=True
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="Bind address.")
    port: int = Field(default=8090, ge=1, le=65_535, description="Bind port.")
    client_id: str = Field(
        default="sandbox-cxone-client-id",
        min_length=1,
        max_length=256,
        description="CXone application client id (HTTP Basic user at /auth/token).",
    )
    client_secret: SecretStr = Field(
        default=SecretStr("sandbox-cxone-client-secret-0123456789"),
        min_length=16,
        description="CXone application client secret (HTTP Basic password at /auth/token).",
    )
    access_key_id: str = Field(
        default="SANDBOXACCESSKEYID000001",
        min_length=1,
        max_length=256,
        description="CXone access key id (username of the password grant).",
    )
    access_key_secret: SecretStr = Field(
        default=SecretStr("sandbox-access-key-secret-0123456789"),
        min_length=16,
        description="CXone access key secret (password of the password grant).",
    )
    tenant_id: str = Field(
        default="11111111-2222-4333-8444-555555555555",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Tenant id put in tokens and answered by /.well-known/cxone-configuration.",
    )
    dnc_group_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["1001"],
        min_length=1,
        description="DNC groups that exist; any other group id is a 404.",
    )
    api_version: int = Field(
        default=33,
        ge=1,
        le=999,
        description="CXone Admin API version advertised (paths accept any vNN.0).",
    )
    state_file: str = Field(
        default="",
        max_length=4096,
        description="Where DNC group records and outbound contacts are kept across restarts "
        "(JSON, written every few seconds and at shutdown); empty: memory only.",
    )
    outbound_client_id: str = Field(
        default="sandbox-outbound-client-id",
        min_length=1,
        max_length=256,
        description="Outbound contacts API client id (client_credentials at /oauth/token).",
    )
    outbound_client_secret: SecretStr = Field(
        default=SecretStr("sandbox-outbound-client-secret-0123456789"),
        min_length=16,
        description="Outbound contacts API client secret.",
    )

    @field_validator("dnc_group_ids", mode="before")
    @classmethod
    def _split_groups(cls, value: object) -> object:
        return split_list(value)

    @field_validator("dnc_group_ids")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        for group_id in value:
            if not _GROUP_ID.match(group_id):
                raise ValueError(f"{group_id!r} is not 1-64 letters, digits, '_' or '-'")
        return value
