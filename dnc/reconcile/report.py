"""What a reconciliation found: counts per drift class, notes, masked samples, and how it is
shown (a Prefect table and markdown, ``dnc-sync status``, ``/metrics``).

The last report is kept in Redis (``RedisKeys.reconcile_last``) as JSON; numbers in it are
masked (``***0123``), like the logs: the full numbers are in CXone and in this service's
state, and ``--repair`` acts on them directly.
"""

from __future__ import annotations

from collections import Counter

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from dnc.keys import RedisKeys
from dnc.masking import mask_number
from dnc.reconcile.drift import DriftClass, Note
from dnc.redis_failures import REDIS_FAILURES, convert_error

MEANING: dict[DriftClass, tuple[str, str]] = {
    DriftClass.OPT_OUT_MISSING: (
        "opted out here, no record in CXone: the number can be called",
        "repair: --repair requeues it; the next sync adds it",
    ),
    DriftClass.OPT_IN_RECORD: (
        "opted in here, CXone still holds the record this service created",
        "repair: --repair requeues it; the next sync removes it",
    ),
    DriftClass.EXPIRY_DIFFERS: (
        "CXone's record lapses at another time than the opt-out asked",
        "by hand: fix the record's expiredDate in CXone (earlier = less protection)",
    ),
    DriftClass.NOT_OWNED: (
        "opted in here, CXone holds a record this service did not create (kept)",
        "by hand: whoever added it decides; or DNC_SYNC_REMOVE_FOREIGN_RECORDS=true",
    ),
}
"""Per drift class: what it means and what to do (the report's words, and
docs/reconciliation.md's)."""


class ReconcileReport(BaseModel):
    """One reconciliation. Times are UTC epoch ms.

    ``complete``: every page was read (otherwise ``incomplete_reason`` says why, and
    ``opt_out_missing`` was not looked for); ``records``: distinct records CXone listed;
    ``numbers``: numbers this service holds a state for that were compared; ``api_calls``:
    CXone calls (listing pages, one-number lookups, retries); ``drift``: count per
    ``DriftClass``; ``notes``: count per ``Note``; ``unconfirmed``: missing opt-outs reported
    without a one-number lookup (past ``DNC_RECONCILE_VERIFY_LIMIT``); ``samples``: up to
    ``DNC_RECONCILE_SAMPLE_SIZE`` masked numbers per class; ``requeued``: numbers ``--repair``
    put back in the pending set (``None``: repair not asked); ``released``: ownership ledger
    entries of records of ours found gone, forgotten; ``listing_s`` and ``missing_pass_s``: how
    long the listing and the search for missing opt-outs took (seconds)."""

    model_config = ConfigDict(extra="ignore")

    flow_run_id: str
    adapter: str
    started_ms: int
    finished_ms: int = 0
    complete: bool = False
    incomplete_reason: str = ""
    records: int = 0
    numbers: int = 0
    api_calls: int = 0
    page_size: int = 0
    drift: dict[str, int] = Field(default_factory=lambda: {c.value: 0 for c in DriftClass})
    notes: dict[str, int] = Field(default_factory=lambda: {n.value: 0 for n in Note})
    unconfirmed: int = 0
    samples: dict[str, list[str]] = Field(default_factory=dict)
    requeued: int | None = None
    released: int = 0
    listing_s: float = 0.0
    missing_pass_s: float = 0.0

    @property
    def total_drift(self) -> int:
        """Numbers in any drift class."""
        return sum(self.drift.values())

    def table_rows(self) -> list[dict[str, object]]:
        """``[{"class", "count", "meaning", "what to do"}]``: the four classes, then the
        notes (for a Prefect table artifact)."""
        rows: list[dict[str, object]] = [
            {"class": c.value, "count": self.drift.get(c, 0), "meaning": m, "what to do": w}
            for c, (m, w) in MEANING.items()
        ]
        rows += [{"class": f"note: {n.value}", "count": self.notes.get(n, 0)} for n in Note]
        return rows

    def markdown(self) -> str:
        """The report as markdown: summary, per-class counts and masked samples."""
        state = "complete" if self.complete else f"INCOMPLETE ({self.incomplete_reason})"
        lines = [
            f"# Reconciliation ({self.adapter}): {self.total_drift} number(s) drifted",
            "",
            f"Run {state}: {self.records} record(s) listed, {self.numbers} number(s) compared, "
            f"{self.api_calls} CXone call(s).",
            "",
            "| class | count | meaning | what to do |",
            "|---|---|---|---|",
        ]
        for drift_class, (meaning, action) in MEANING.items():
            count = self.drift.get(drift_class, 0)
            lines.append(f"| `{drift_class.value}` | {count} | {meaning} | {action} |")
        if self.unconfirmed:
            lines += ["", f"{self.unconfirmed} missing opt-out(s) were not looked up one by one."]
        if self.requeued is not None:
            lines += ["", f"Repair: {self.requeued} number(s) requeued for the next sync."]
        for drift_class in DriftClass:
            sample = self.samples.get(drift_class, [])
            if sample:
                lines += ["", f"## `{drift_class.value}` (sample)", "", ", ".join(sample)]
        return "\n".join(lines) + "\n"


class Tally:
    """Counts and samples as a run goes (``sample_size`` masked numbers per class)."""

    def __init__(self, sample_size: int) -> None:
        self.drift: Counter[DriftClass] = Counter()
        self.notes: Counter[Note] = Counter()
        self.samples: dict[DriftClass, list[str]] = {c: [] for c in DriftClass}
        self._sample_size = sample_size

    def add(self, number: str, found: DriftClass | Note) -> None:
        """Count ``number`` under ``found``; sample it (masked) when it is drift."""
        if isinstance(found, DriftClass):
            self.drift[found] += 1
            if len(self.samples[found]) < self._sample_size:
                self.samples[found].append(mask_number(number))
        else:
            self.notes[found] += 1

    def fill(self, report: ReconcileReport) -> None:
        """Copy the counts and samples into ``report``."""
        report.drift = {c.value: self.drift[c] for c in DriftClass}
        report.notes = {n.value: self.notes[n] for n in Note}
        report.samples = {c.value: s for c, s in self.samples.items() if s}


async def save_last(client: aioredis.Redis, keys: RedisKeys, report: ReconcileReport) -> None:
    """Keep ``report`` as the last reconciliation; raises ``StoreError``."""
    try:
        await client.set(keys.reconcile_last, report.model_dump_json())
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc


async def load_last(client: aioredis.Redis, keys: RedisKeys) -> ReconcileReport | None:
    """The last reconciliation's report, ``None`` when there is none (or it is unreadable);
    raises ``StoreError``."""
    try:
        raw = await client.get(keys.reconcile_last)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    if raw is None:
        return None
    try:
        return ReconcileReport.model_validate_json(raw)
    except ValueError:
        return None
