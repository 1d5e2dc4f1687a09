"""The audit store, the system of record (``DNC_AUDIT_*``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dnc.setting_values import split_list

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
        "(GET /v1/numbers/{number}); intake secrets may read it too. Comma-separated (several "
        "during a rotation), each at least 16 characters.",
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
