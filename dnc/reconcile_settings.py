"""The reconciliation flow (``DNC_RECONCILE_*``): reading CXone back."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
