"""The audit record of a CXone application: what the sync asked CXone for one number, and
what CXone answered.

The sync hands one ``Application`` per pushed number to ``PendingQueue`` when it settles the
number; the settle script appends it, with what the settling did (``outcome``), to the
applications stream (``RedisKeys.applications``) in the same atomic call, so an application
is recorded exactly when its number's fate is. The archive (``dnc.audit.archive``) copies the
stream into the audit store. Full numbers are kept: this is the proof (logs stay masked).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from dnc.events import StoredEvent
from dnc.target import ChangeOutcome

BATCH_FAILED = "batch_failed"
"""``result`` of a number whose whole batch failed after retries (CXone down, 5xx, timeout):
CXone may or may not have applied it; it is pushed again after a backoff."""


class ApplicationRecord(BaseModel):
    """One applications-stream entry's ``application`` JSON. Times are UTC epoch ms.

    ``number`` (E.164), ``action`` (optIn/optOut), ``eventId``/``eventMs``/``receivedMs``/
    ``expiresMs``: the event the push stood for; ``requestedAtMs``: when the push of its batch
    began; ``adapter`` (``dnc-groups``/``outbound-contacts``); ``flowRunId``: the Prefect flow
    run (or ``local-...``); ``result``: the target's per-record result (an ``OutcomeKind`` value,
    or ``batch_failed``); ``reason``: the target's words (redacted); ``httpStatus`` and
    ``recordId`` of the answer, when known."""

    model_config = ConfigDict(frozen=True)

    number: str
    action: str
    eventId: str
    eventMs: int
    receivedMs: int
    expiresMs: int | None = None
    requestedAtMs: int
    adapter: str
    flowRunId: str
    result: str
    reason: str = ""
    httpStatus: int | None = None
    recordId: str | None = None


@dataclass(frozen=True, slots=True)
class Application:
    """What one push did for one claim: ``outcome`` (``None`` when the whole batch failed,
    with ``failure`` naming why), when it was requested (``requested_at_ms``, UTC ms), through
    which ``adapter``, by which ``flow_run_id``."""

    requested_at_ms: int
    adapter: str
    flow_run_id: str
    outcome: ChangeOutcome | None = None
    failure: str = ""

    def record(self, e164: str, event: StoredEvent) -> ApplicationRecord:
        """The stream entry's record for number ``e164`` pushed for ``event`` (its claim's)."""
        outcome = self.outcome
        return ApplicationRecord(
            number=e164,
            action=event.action.value,
            eventId=event.eventId,
            eventMs=event.eventMs,
            receivedMs=event.receivedMs,
            expiresMs=event.expiresMs,
            requestedAtMs=self.requested_at_ms,
            adapter=self.adapter,
            flowRunId=self.flow_run_id,
            result=outcome.kind.value if outcome else BATCH_FAILED,
            reason=outcome.reason if outcome else self.failure,
            httpStatus=outcome.http_status if outcome else None,
            recordId=outcome.record_id if outcome else None,
        )
