"""What a sync run handles: claimed numbers, their retries and dead letters, the retry limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from dnc.applications import Application
from dnc.events import Action, StoredEvent
from dnc.target import DncChange

Applications = Mapping[str, Application]
"""What each pushed number's application was, by E.164 (``dnc.applications``)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed number: ``e164``, its pending ``score_ms`` (receive time of its oldest unapplied
    change, UTC ms), the ``watermark`` it had when claimed (the whole state value,
    ``dnc.state``: settling compares it), and its latest ``event`` (from a compact state:
    id, action, times and expiry only; the rest is in the audit record)."""

    e164: str
    score_ms: int
    watermark: str
    event: StoredEvent

    def change(self) -> DncChange:
        """The state to push: the latest event's action at its event time (UTC ms), with its
        expiry (UTC ms) for an opt-out that has one; an opt-in never carries an expiry."""
        event = self.event
        expires_ms = event.expiresMs if event.action is Action.OPT_OUT else None
        return DncChange(self.e164, event.action, event.eventMs, expires_ms)


class DeadLetter(BaseModel):
    """A number CXone refused for good: ``reason`` (CXone's words, redacted), the ``event`` it
    refused, and ``deadAtMs`` (UTC epoch ms)."""

    model_config = ConfigDict(frozen=True)

    reason: str
    event: StoredEvent
    deadAtMs: int


@dataclass(frozen=True, slots=True)
class RetryLimits:
    """How numbers that fail temporarily are retried: at most ``max_attempts`` pushes and
    ``max_age_ms`` since the first failure before they are dead-lettered; between pushes a
    backoff of ``base_ms`` doubling per attempt up to ``cap_ms`` (equal jitter), and at least
    the target's retry-after, up to ``retry_after_cap_ms``."""

    max_attempts: int = 8
    max_age_ms: int = 21_600_000
    base_ms: int = 30_000
    cap_ms: int = 1_800_000
    retry_after_cap_ms: int = 120_000
    """Longest retry-after a number waits, ms (as the client caps its own sleeps)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """A claim to push again later: CXone's ``reason``, its ``retry_after_s`` (seconds) when it
    gave one, and whether this failure ``counts`` toward the dead-letter limits (a number's own
    temporary failure does; a whole batch failing, CXone down, does not)."""

    claim: Claim
    reason: str
    retry_after_s: float | None = None
    counts: bool = True


@dataclass(frozen=True, slots=True)
class Deferral:
    """What ``defer`` did: numbers ``deferred`` (waiting out a backoff), ``dead_lettered`` at the
    retry limits, and ``changed`` (a newer event arrived: left pending)."""

    deferred: int = 0
    dead_lettered: int = 0
    changed: int = 0


def chunk(claims: Sequence[Claim], batch_size: int) -> list[list[Claim]]:
    """Split claims by action (opt-outs first: the compliance-critical ones) into batches of
    at most ``batch_size``, oldest first within each action."""
    batches: list[list[Claim]] = []
    for action in (Action.OPT_OUT, Action.OPT_IN):
        same = [claim for claim in claims if claim.event.action is action]
        batches += [same[i : i + batch_size] for i in range(0, len(same), batch_size)]
    return batches
