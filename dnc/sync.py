"""Sync bookkeeping as plain functions: what each outcome means for its claim, the run's
counters, and the lag check. The Prefect flow (``flows/sync.py``) only wires these together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dnc.claims import Claim, Retry
from dnc.events import Action
from dnc.target import ChangeOutcome, OutcomeKind


@dataclass(frozen=True, slots=True)
class Settlement:
    """The fate of a pushed batch: claims to ``acknowledge``, claims to ``dead_letter`` with
    CXone's reason, and claims to ``retry`` after a backoff (CXone's reason and retry-after;
    ``PendingQueue.defer``)."""

    acknowledge: list[Claim] = field(default_factory=list)
    dead_letter: list[tuple[Claim, str]] = field(default_factory=list)
    retry: list[Retry] = field(default_factory=list)


def settle(claims: Sequence[Claim], outcomes: Sequence[ChangeOutcome]) -> Settlement:
    """Pair each claim with its outcome (same order, same number). Raises ``ValueError`` when
    the target answered for other numbers than it was given."""
    if [c.e164 for c in claims] != [o.e164 for o in outcomes]:
        raise ValueError("outcomes do not match the pushed claims")
    result = Settlement()
    for claim, outcome in zip(claims, outcomes, strict=True):
        if outcome.kind.acknowledged:
            result.acknowledge.append(claim)
        elif outcome.kind is OutcomeKind.REJECTED:
            result.dead_letter.append((claim, outcome.reason or "rejected"))
        else:
            reason = outcome.reason or "temporary failure"
            result.retry.append(Retry(claim, reason, outcome.retry_after_s))
    return result


@dataclass
class SyncCounters:
    """What one run did; ``as_rows`` renders the summary table artifact. ``retried``: numbers
    CXone answered with a temporary per-record failure; ``deferred``: numbers set to wait out
    a retry backoff (their own failure or their batch's); ``http_retries``: CXone
    calls the client repeated after a transient failure of the whole call (429, 5xx, timeout,
    connection); ``failed_batches``: batches that failed even after Prefect's retries;
    ``api_calls``: HTTP requests sent, every retry included; ``not_owned``: opt-ins not sent
    because no record of this service's was there to remove (``dnc.ownership``); ``ended``:
    why the run stopped ("backlog empty", "handed over", "joined", "budget spent", "max
    batches pushed", "nothing settled", "lease lost", "credentials refused")."""

    claimed: int = 0
    applied_opt_outs: int = 0
    applied_opt_ins: int = 0
    already_applied: int = 0
    conflicts_resolved: int = 0
    not_owned: int = 0
    retried: int = 0
    deferred: int = 0
    http_retries: int = 0
    dead_lettered: int = 0
    failed_batches: int = 0
    left_pending: int = 0
    remaining_backlog: int = 0
    oldest_pending_age_s: float = 0.0
    api_calls: int = 0
    wall_time_s: float = 0.0
    ended: str = ""

    def count(self, claims: Sequence[Claim], outcomes: Sequence[ChangeOutcome]) -> None:
        """Add one pushed batch's outcomes."""
        for claim, outcome in zip(claims, outcomes, strict=True):
            if outcome.kind is OutcomeKind.APPLIED:
                if claim.event.action is Action.OPT_OUT:
                    self.applied_opt_outs += 1
                else:
                    self.applied_opt_ins += 1
            elif outcome.kind is OutcomeKind.ALREADY_APPLIED:
                self.already_applied += 1
            elif outcome.kind is OutcomeKind.CONFLICT_RESOLVED:
                self.conflicts_resolved += 1
            elif outcome.kind is OutcomeKind.NOT_OWNED:
                self.not_owned += 1

    def as_rows(self) -> list[dict[str, object]]:
        """``[{"metric": name, "value": value}, ...]`` for a Prefect table artifact."""
        return [{"metric": name, "value": value} for name, value in vars(self).items()]


def oldest_age_s(oldest_ms: int | None, now_ms: int) -> float:
    """Seconds the longest-waiting pending change has waited since it was received (0 when
    nothing is pending); ``oldest_ms`` and ``now_ms`` are UTC epoch ms."""
    return 0.0 if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000)
