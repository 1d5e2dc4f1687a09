"""The sync's plain bookkeeping: what each outcome means for its claim, counters, lag."""

from __future__ import annotations

import pytest

from dnc.events import Action
from dnc.pending import Claim
from dnc.sync import SyncCounters, oldest_age_s, settle
from dnc.target import ChangeOutcome, OutcomeKind
from tasks.sync_tasks import retry_if_transient
from tests.test_pending import T0, event


def claim(n: int, action: Action = Action.OPT_OUT) -> Claim:
    number = f"+1202555{n:04d}"
    return Claim(number, T0, f"{T0}:{action.value}", event(number, T0, action))


def test_settle_sorts_claims_by_outcome() -> None:
    claims = [claim(1), claim(2), claim(3), claim(4), claim(5)]
    kinds = [
        OutcomeKind.APPLIED,
        OutcomeKind.ALREADY_APPLIED,
        OutcomeKind.CONFLICT_RESOLVED,
        OutcomeKind.REJECTED,
        OutcomeKind.RETRYABLE,
    ]
    outcomes = [ChangeOutcome(c.e164, k, "why") for c, k in zip(claims, kinds, strict=True)]
    result = settle(claims, outcomes)
    assert result.acknowledge == claims[:3]
    assert result.dead_letter == [(claims[3], "why")]
    assert [(r.claim, r.reason, r.counts) for r in result.retry] == [(claims[4], "why", True)]


def test_settle_refuses_outcomes_for_other_numbers() -> None:
    with pytest.raises(ValueError, match="do not match"):
        settle([claim(1)], [ChangeOutcome(claim(2).e164, OutcomeKind.APPLIED)])


def test_counters_split_applied_by_action() -> None:
    counters = SyncCounters()
    claims = [claim(1), claim(2, Action.OPT_IN), claim(3), claim(4)]
    kinds = [
        OutcomeKind.APPLIED,
        OutcomeKind.APPLIED,
        OutcomeKind.ALREADY_APPLIED,
        OutcomeKind.CONFLICT_RESOLVED,
    ]
    counters.count(claims, [ChangeOutcome(c.e164, k) for c, k in zip(claims, kinds, strict=True)])
    assert (
        counters.applied_opt_outs,
        counters.applied_opt_ins,
        counters.already_applied,
        counters.conflicts_resolved,
    ) == (1, 1, 1, 1)
    assert {"metric": "applied_opt_ins", "value": 1} in counters.as_rows()


def test_oldest_age() -> None:
    assert oldest_age_s(None, T0) == 0.0
    assert oldest_age_s(T0 - 90_000, T0) == 90.0


class _State:
    def __init__(self, data: object) -> None:
        self.data = data


def test_only_transient_failures_are_retried_by_prefect() -> None:
    from dnc.cxone.errors import CxoneAuthError, CxonePermanentError, CxoneServerError

    assert retry_if_transient(None, None, _State(CxoneServerError("503")))
    assert not retry_if_transient(None, None, _State(CxonePermanentError("400", 400)))
    assert not retry_if_transient(None, None, _State(CxoneAuthError("401")))
    assert not retry_if_transient(None, None, _State(None))


def test_claims_are_sized_by_batches_left_and_by_the_pace_within_the_budget() -> None:
    from dnc.settings import SyncSettings
    from flows.sync import _claim_limit
    from flows.sync_push import SyncRun

    run = SyncRun(
        queue=None,
        target=None,
        lease="x",
        sync=SyncSettings(claim_size=10_000),  # type: ignore[arg-type]
        batch_size=100,
        counters=SyncCounters(),
        fence=None,  # type: ignore[arg-type]
        ledger=None,  # type: ignore[arg-type]
        handover=None,  # type: ignore[arg-type]
    )
    assert _claim_limit(run, None, 25.0, 0) == 10_000  # no pace known: the claim size
    assert _claim_limit(run, None, 25.0, 2.0) == 5_000  # 2 calls/s x 100 x 25 s
    assert _claim_limit(run, None, 0.1, 2.0) == 100  # at least one batch
    assert _claim_limit(run, 300, 25.0, 2.0) == 300  # batches left to push
