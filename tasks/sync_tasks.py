"""Prefect tasks of the sync flow: thin wrappers over ``dnc`` functions.

All are async: a sync task called from the async flow builds a Prefect client (and an SSL
context) per call. Callers pass claim lists wrapped in ``prefect.utilities.annotations.quote``
so Prefect does not walk every claim on every call.

Nothing here caches or persists a token or a claimed batch: Prefect pickles persisted results
to disk in plain text. Only the discovery answers (public URLs) are cached.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE, TASK_SOURCE, CacheKeyFnPolicy
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from dnc.applications import Application
from dnc.cxone.dnc_groups import DncGroupsTarget, Endpoints
from dnc.cxone.errors import is_transient
from dnc.cxone.factory import Target
from dnc.cxone.transport import after_unanswered_attempt
from dnc.events import Action
from dnc.ownership import OwnershipLedger, not_owned_outcome, ownership_update
from dnc.pending import Claim, Deferral, PendingQueue, Retry, chunk
from dnc.sync import Settlement, settle
from dnc.target import ChangeOutcome, DncChange

EPHEMERAL: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}

AnsweredPairs = Sequence[tuple[str, Application]]
"""(E.164, what CXone was asked and answered) pairs, passed in ``quote`` like the claims so
Prefect does not walk them on every call (``dnc.applications``)."""


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry 429, 5xx, timeouts and connection errors only."""
    return isinstance(state.data, BaseException) and is_transient(state.data)


TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}


def _discovery_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"dnc-discovery|{parameters['issuer_url']}|{parameters['access_key_id']}"


@task(
    # the task's source and the issuer/key: a code change or another tenant discovers anew
    cache_policy=TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=_discovery_key),
    cache_expiration=timedelta(hours=12),
    persist_result=True,
    **TRANSIENT_RETRIES,
)
async def discover_endpoints(
    target: DncGroupsTarget, issuer_url: str, access_key_id: str
) -> Endpoints:
    """CXone's token and API endpoints for this issuer and key (public URLs, cached 12 h by
    Prefect; ``issuer_url`` and ``access_key_id`` form the cache key)."""
    return await target.transport.retrying(target.endpoints)


@task(**TRANSIENT_RETRIES, **EPHEMERAL)
async def fetch_token(target: Target) -> None:
    """Mint (or reuse) the access token through the client's cache, with the client's
    retries. Returns nothing: the token never becomes a task result."""
    await target.transport.retrying(target.tokens.get)


@task(**EPHEMERAL)
async def claim_pending(queue: PendingQueue, lease_token: str, limit: int) -> list[Claim]:
    """The ``limit`` oldest pending numbers (``PendingQueue.claim``); raises ``LeaseLost``."""
    return await queue.claim(lease_token, limit)


@task(**EPHEMERAL)
async def chunk_claims(claims: Sequence[Claim], batch_size: int) -> list[list[Claim]]:
    """Batches by action (opt-outs first) of at most ``batch_size`` (``dnc.pending.chunk``)."""
    return chunk(claims, batch_size)


@dataclass(frozen=True, slots=True)
class Pushed:
    """What one push answered: ``outcomes`` (one per claim, in order) and ``earlier_adds``,
    the opt-outs that had an add of ours in flight before this attempt (``dnc.ownership``)."""

    outcomes: list[ChangeOutcome]
    earlier_adds: list[str]


@task(**TRANSIENT_RETRIES, **EPHEMERAL)
async def push_batch(target: Target, ledger: OwnershipLedger, claims: Sequence[Claim]) -> Pushed:
    """Apply one batch through the target; transient failures are retried by Prefect. An
    attempt that ends without an answer (a timeout after the request may have reached CXone)
    marks its opt-outs as adds of ours in flight, so the retry that hears "already exists"
    knows the add may be its own (``dnc.ownership``); an answered failure marks nothing."""
    adds = [claim.e164 for claim in claims if claim.event.action is Action.OPT_OUT]
    earlier = await ledger.adds_in_flight(adds)
    try:
        outcomes = await target.apply([claim.change() for claim in claims])
    except Exception as exc:
        if after_unanswered_attempt(exc):  # then or before a 5xx, 429, lease loss...
            await ledger.note_adds(adds, int(time.time() * 1000))
        raise
    return Pushed(outcomes, sorted(earlier))


@task(**EPHEMERAL)
async def hold_not_owned(ledger: OwnershipLedger, claims: Sequence[Claim]) -> list[ChangeOutcome]:
    """The ``not_owned`` outcomes of the opt-ins among ``claims`` that must not be sent: no
    record of this service's is there to remove (``dnc.ownership``)."""
    opt_ins = [claim.e164 for claim in claims if claim.event.action is Action.OPT_IN]
    removable = await ledger.removable(opt_ins)
    return [not_owned_outcome(number) for number in opt_ins if number not in removable]


@task(**EPHEMERAL)
async def record_ownership(
    ledger: OwnershipLedger,
    changes: Sequence[DncChange],
    outcomes: Sequence[ChangeOutcome],
    earlier_adds: Sequence[str],
    flow_run_id: str,
    now_ms: int,
) -> None:
    """Record which records this push created or removed (``dnc.ownership.ownership_update``)."""
    update = ownership_update(changes, outcomes, set(earlier_adds), flow_run_id, now_ms)
    await ledger.apply(update)


@task(**EPHEMERAL)
async def resolve_conflicts(
    claims: Sequence[Claim], outcomes: Sequence[ChangeOutcome]
) -> Settlement:
    """Decide each claim's fate. The adapter already turned 409s into upserts (outcome
    ``conflict_resolved``); those count as applied like ``applied`` and ``already_applied``."""
    return settle(claims, outcomes)


@task(**EPHEMERAL)
async def ack_applied(
    queue: PendingQueue, claims: Sequence[Claim], applications: AnsweredPairs
) -> int:
    """Remove acknowledged numbers whose watermark is unchanged, recording their
    ``applications`` (``PendingQueue.acknowledge``); returns how many left."""
    return sum(await queue.acknowledge(claims, dict(applications)))


@task(**EPHEMERAL)
async def dead_letter(
    queue: PendingQueue,
    refused: Sequence[tuple[Claim, str]],
    applications: AnsweredPairs,
) -> int:
    """Move refused numbers to the dead letters, recording their ``applications``; returns
    how many moved."""
    return sum(await queue.dead_letter(refused, applications=dict(applications)))


@task(**EPHEMERAL)
async def defer_retries(
    queue: PendingQueue, retries: Sequence[Retry], applications: AnsweredPairs
) -> Deferral:
    """Set numbers that failed for now to wait out their retry backoff, or dead-letter those
    at the retry limits, recording their ``applications`` (``PendingQueue.defer``)."""
    return await queue.defer(retries, applications=dict(applications))
