"""One import's batches: rows chunked and judged (a few chunks ahead in worker processes),
refused rows written to the rejects file, accepted ones recorded in one Lua call a batch, and
the report counted as they go."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from dnc.errors import FieldProblem
from dnc.events import StoredEvent
from dnc.intake import AcceptedEvent, IntakePolicy
from dnc.store import EventStore, RecordStatus
from dnc_sync.csv_rows import RejectsFile, row_fields
from dnc_sync.import_judging import IMPORT_SENDER, Verdict, judge_rows
from dnc_sync.import_rejections import rejection_entry
from dnc_sync.import_report import ImportReport

_CHUNKS_AHEAD = 8
"""Chunks handed to worker processes before the oldest is awaited (keeps them all busy)."""


@dataclass
class JudgedBatch:
    """Rows judged together: accepted events with (row, cells) of each, and the rejected
    stream entries of the refused rows."""

    events: list[StoredEvent] = field(default_factory=list)
    origins: list[tuple[int, list[str]]] = field(default_factory=list)
    stream: list[dict[str, str]] = field(default_factory=list)
    accepted: list[AcceptedEvent] = field(default_factory=list)


@dataclass
class ImportRun:
    """One import: what it judges with, where it writes, and its report."""

    positions: dict[str, int]
    policy: IntakePolicy
    store: EventStore
    rejects: RejectsFile
    source: str
    report: ImportReport = field(default_factory=ImportReport)

    async def batches(
        self, rows: Iterator[tuple[int, list[str]]], size: int, pool: Executor | None
    ) -> AsyncGenerator[JudgedBatch, None]:
        """Judged batches of ``size`` rows, in file order; with a pool, a few chunks ahead."""
        loop = asyncio.get_running_loop()
        ahead: deque[tuple[list[tuple[int, list[str]]], int, asyncio.Future[list[Verdict]]]]
        ahead = deque()
        try:
            for chunk in self.chunks(rows, size):
                now_ms = int(time.time() * 1000)
                if pool is None:
                    yield self.collect(
                        chunk, judge_rows(chunk, self.positions, self.policy, now_ms), now_ms
                    )
                    continue
                judged = loop.run_in_executor(
                    pool, judge_rows, chunk, self.positions, self.policy, now_ms
                )
                ahead.append((chunk, now_ms, judged))
                if len(ahead) > _CHUNKS_AHEAD:
                    chunk, now_ms, judged = ahead.popleft()
                    yield self.collect(chunk, await judged, now_ms)
            while ahead:
                chunk, now_ms, judged = ahead.popleft()
                yield self.collect(chunk, await judged, now_ms)
        finally:
            for _, _, judged in ahead:
                judged.cancel()

    def chunks(
        self, rows: Iterator[tuple[int, list[str]]], size: int
    ) -> Iterator[list[tuple[int, list[str]]]]:
        """``rows`` in lists of ``size``, blank rows counted and left out."""
        chunk: list[tuple[int, list[str]]] = []
        for row, cells in rows:
            if not any(cell.strip() for cell in cells):
                self.report.blank += 1
                continue
            self.report.rows += 1
            chunk.append((row, cells))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def collect(
        self, chunk: list[tuple[int, list[str]]], verdicts: list[Verdict], now_ms: int
    ) -> JudgedBatch:
        """The batch of a judged chunk; refused rows are written to the rejects file now."""
        batch = JudgedBatch()
        for (row, cells), verdict in zip(chunk, verdicts, strict=True):
            if isinstance(verdict, AcceptedEvent):
                batch.events.append(verdict.event)
                batch.origins.append((row, cells))
                batch.accepted.append(verdict)
                reasons = verdict.warning_reasons
                self.report.warned += bool(reasons)
                self.report.warnings.update(reasons)
            else:
                self.refuse(batch, row, cells, verdict, now_ms)
        return batch

    async def write(self, batch: JudgedBatch) -> None:
        """Record the batch's events (one Lua call; a row's events, its opt-out and alias
        copies, all or none) and its refusals; count the outcomes."""
        groups = [accepted.events for accepted in batch.accepted]
        statuses = await self.store.record_groups(groups) if groups else []
        reasons: Counter[str] = Counter()
        naive = 0
        for (status, *alias_statuses), event, (row, cells), accepted in zip(
            statuses, batch.events, batch.origins, batch.accepted, strict=True
        ):
            if status is RecordStatus.ID_CONFLICT:  # only a hash collision can get here
                problem = FieldProblem(
                    "eventId", "reused", "eventId was already used for a different event"
                )
                self.refuse(batch, row, cells, [problem], event.receivedMs)
                continue
            self.report.outcomes[status.value] += 1
            self.report.aliases.update(alias.value for alias in alias_statuses)
            if status is not RecordStatus.DUPLICATE:
                reasons.update(accepted.warning_reasons)
                naive += accepted.naive_time
        await self.store.count_warnings(reasons, {IMPORT_SENDER: naive} if naive else {})
        for entry in batch.stream:
            await self.store.record_rejection(entry)

    def refuse(
        self,
        batch: JudgedBatch,
        row: int,
        cells: list[str],
        problems: Sequence[FieldProblem],
        now_ms: int,
    ) -> None:
        """Count a refused row, write it to the rejects file, queue its stream entry."""
        self.report.outcomes["rejected"] += 1
        self.report.rejections.update(f"{p.field}:{p.reason}" for p in problems)
        self.rejects.write(row, cells, problems)
        fields = row_fields(cells, self.positions)
        batch.stream.append(rejection_entry(self.source, row, fields, problems, now_ms))
