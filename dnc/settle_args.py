"""What ``settle.lua`` is given (its header has the contract): the retry limits, then per
claimed number its watermark, what to do (``ack``, ``dead``, ``retry``) with its payload, and
the record of its application."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from dnc.claims import Applications, Claim, DeadLetter, Retry, RetryLimits

SettleItem = tuple[Claim, str, str]
"""A claim, its kind (``ack``, ``dead``, ``retry``) and the kind's payload."""


def settle_args(
    items: Sequence[SettleItem],
    now_ms: int,
    limits: RetryLimits,
    applications: Applications | None,
) -> list[Any]:
    """ARGV of one ``settle.lua`` call for ``items`` at ``now_ms`` (UTC ms), with each claim's
    application record from ``applications`` (by E.164; none: ``''``)."""
    args: list[Any] = [
        now_ms,
        limits.max_attempts,
        limits.max_age_ms,
        limits.base_ms,
        limits.cap_ms,
    ]
    found = applications or {}
    for claim, kind, payload in items:
        application = found.get(claim.e164)
        record = application.record(claim.e164, claim.event) if application else None
        args += [
            claim.e164,
            claim.watermark,
            kind,
            payload,
            record.model_dump_json() if record else "",
        ]
    return args


def retry_item(retry: Retry, limits: RetryLimits, draw: random.Random, at_ms: int) -> SettleItem:
    """``retry`` as a ``retry`` item: the jitter drawn from ``draw``, CXone's retry-after
    (capped by ``limits``) and whether it counts, then the dead letter it becomes at the
    limits (at ``at_ms``, UTC ms)."""
    reason = f"gave up after {{attempts}} temporary failures: {retry.reason}"
    wait_ms = min(round((retry.retry_after_s or 0) * 1000), limits.retry_after_cap_ms)
    payload = f"{draw.random():.6f} {wait_ms} {int(retry.counts)} "
    return (retry.claim, "retry", payload + dead_json(retry.claim, reason, at_ms))


def dead_json(claim: Claim, reason: str, at_ms: int) -> str:
    """The dead letter of ``claim`` refused for ``reason`` at ``at_ms`` (UTC ms), as JSON."""
    return DeadLetter(reason=reason, event=claim.event, deadAtMs=at_ms).model_dump_json()
