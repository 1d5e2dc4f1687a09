"""The CXone target and how the client treats it (``DNC_CXONE_*``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dnc.secret_blocks import BLOCK_NAME_PATTERN, fill_from_block
from dnc.setting_values import SECRET, split_list


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
            fill_from_block(self, field, SECRET)
        return self
