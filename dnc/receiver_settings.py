"""The HTTP receiver (``DNC_RECEIVER_*``): binding, secrets, limits, timeouts."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dnc.secret_blocks import BLOCK_NAME_PATTERN, fill_from_block
from dnc.setting_values import SECRET_LIST, SecretList


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
            fill_from_block(self, field, SECRET_LIST)
        return self
