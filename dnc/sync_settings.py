"""The sync flow (``DNC_SYNC_*``): claims, lease, fence, retries."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
