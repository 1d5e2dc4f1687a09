"""How events are judged (``DNC_INTAKE_*``): the settings of ``dnc.intake``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dnc.e164 import is_supported_region
from dnc.intake_policy import IntakePolicy
from dnc.timestamps import UnknownTimeZone, time_zone


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
