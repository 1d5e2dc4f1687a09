"""The rules intake applies (``dnc.intake``), built from ``IntakeSettings`` at the entry point."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """The rules intake applies; built from ``IntakeSettings`` at the entry point.

    ``default_region``: ISO 3166-1 alpha-2 or ``None`` (only numbers with a country code).
    ``max_future_skew_s``: how far past our clock an opt-in's event time may be, in seconds
    (later: refused; an opt-out is never refused for it).
    ``metadata_max_bytes``: cap on the compact JSON of ``metadata``, in bytes (UTF-8).
    ``naive_time_zone``: IANA name of the zone a time written without one is read in.
    """

    default_region: str | None = "US"
    max_future_skew_s: int = 300
    metadata_max_bytes: int = 4096
    naive_time_zone: str = "UTC"
