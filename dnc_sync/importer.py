"""Bulk import of an opt-out / opt-in list from CSV, through the receiver's own door.

Each data row is turned into the webhook's fields (``phoneNumber``, ``eventName``,
``timestamp``, optional ``region`` and ``expiresAt``, read from configurable columns), judged by
``dnc.intake.build_event`` and written by ``EventStore.record_many``: one Lua call per batch,
the next batch parsed while Redis runs the previous one. A row without ``eventId`` gets the id
intake derives from number, action and time (and expiry), so importing a file twice changes
nothing (the second import counts ``duplicate``). A refused row goes to the rejects file (raw,
the operator's own data) and to the rejected stream (phone number masked), never dropped. As
through the receiver, an opt-out row with a bad optional column (region, expiresAt) is kept
without it and counted as accepted with warnings; an opt-in row with one is refused. A number
written in a retired form is recorded under today's number, and an opt-out row for a number
the metadata does not know is kept (``phoneNumber:plan_change`` / ``unverified_number``
warnings). An opt-out row whose subscriber has other E.164 forms is recorded under each of them
in the same Lua call as the row itself (``EventStore.record_groups``: a row's events are never
split across calls), counted in ``ImportReport.aliases``.

Reading the CSV and writing the rejects file: ``dnc_sync.csv_rows``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dnc.errors import EventValidationError, FieldProblem
from dnc.events import StoredEvent
from dnc.intake import AcceptedEvent, IntakePolicy, build_event
from dnc.masking import mask_number, redact
from dnc.store import EventStore, RecordStatus
from dnc.target import LATEST_MS
from dnc.timestamps import TimestampProblem, parse_event_time
from dnc_sync.csv_rows import PHONE, CsvFormat, RejectsFile, map_header, open_csv, row_fields


@dataclass
class ImportReport:
    """What an import did. ``rows``: data rows read (blank ones not counted, see ``blank``);
    ``outcomes``: rows per ``queued`` / ``duplicate`` / ``superseded`` / ``rejected``;
    ``rejections``: problems per ``"field:reason"`` (a row may have several); ``warned``: rows
    accepted with warnings; ``warnings``: those rows per ``"field:reason"`` of an optional
    field dropped from an opt-out (``expiresAt:invalid``...) or a field read with an
    adjustment (``timestamp:no_time_zone``, ``timestamp:after_receipt``,
    ``phoneNumber:plan_change``, ``phoneNumber:unverified_number``); ``aliases``: the copies
    of opt-out rows under their subscriber's other E.164 forms, per ``queued`` / ``duplicate``
    / ``superseded``; ``seconds``: wall time."""

    rows: int = 0
    blank: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    warned: int = 0
    warnings: Counter[str] = field(default_factory=Counter)
    aliases: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        """Rows read per second of wall time (0 before any time passed)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


async def import_file(
    path: Path,
    csv_format: CsvFormat,
    policy: IntakePolicy,
    store: EventStore,
    rejects_path: Path,
    *,
    batch_size: int = 1000,
    workers: int = 0,
    on_batch: Callable[[ImportReport, int], None] | None = None,
) -> ImportReport:
    """Import the CSV at ``path``; refused rows go to ``rejects_path`` (created or emptied once
    the header is known to be right, mode 0600: it holds numbers) in the same format.
    ``workers`` > 0 judges rows in that many worker processes (0: in this one);
    ``on_batch`` sees the report and the bytes of the file read so far after each batch.

    Raises ``HeaderError`` before anything is written, ``OSError`` when a file cannot be
    opened, ``UnreadableFile``, ``StoreUnavailable`` / ``StoreError`` as ``import_rows``.
    """
    with open_csv(path, csv_format.encoding, csv_format.delimiter) as source:
        positions = map_header(source.header, csv_format.columns)

        def progress(report: ImportReport) -> None:
            if on_batch is not None:
                on_batch(report, source.bytes_read())

        fd = os.open(rejects_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8", newline="") as stream, _pool(workers) as pool:
            return await import_rows(
                source.rows,
                positions,
                policy,
                store,
                RejectsFile(stream, source.header, csv_format.delimiter),
                batch_size=batch_size,
                source=path.name,
                on_batch=progress,
                pool=pool,
            )


POOL_MIN_BYTES = 4_000_000
"""Files smaller than this (about 80,000 rows) are judged in-process by default: starting
worker processes costs more than it saves."""


def auto_workers(path: Path) -> int:
    """Worker processes for ``path`` by default: 0 under ``POOL_MIN_BYTES``, else one per CPU
    this process may use, at most 4 (judging numbers is the CPU-bound part of an import)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return 0 if size < POOL_MIN_BYTES else min(len(os.sched_getaffinity(0)), 4)


@contextlib.contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    if workers <= 0:
        yield None
        return
    # spawn: the caller may run threads (the progress bar), which fork does not mix with.
    # Workers ignore Ctrl-C: this process handles it and shuts them down.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


IMPORT_SENDER = "import"
"""The sender ``dnc-sync status`` names for imported rows with a time without a zone."""
_CHUNKS_AHEAD = 8
"""Chunks handed to worker processes before the oldest is awaited (keeps them all busy)."""
Verdict = AcceptedEvent | tuple[FieldProblem, ...]
"""What intake says of one row: the event, or every problem."""


def judge_rows(
    chunk: Sequence[tuple[int, list[str]]],
    positions: Mapping[str, int],
    policy: IntakePolicy,
    now_ms: int,
) -> list[Verdict]:
    """``build_event`` on each (row number, cells) of ``chunk``, received at ``now_ms`` (UTC
    ms); one verdict per row, same order. Pure, so it runs in a worker process as well."""
    verdicts: list[Verdict] = []
    for _, cells in chunk:
        try:
            fields = row_fields(cells, positions)
            verdicts.append(build_event(fields, policy, now_ms, sender=IMPORT_SENDER))
        except EventValidationError as exc:
            verdicts.append(tuple(exc.problems))
    return verdicts


async def import_rows(
    rows: Iterator[tuple[int, list[str]]],
    positions: Mapping[str, int],
    policy: IntakePolicy,
    store: EventStore,
    rejects: RejectsFile,
    *,
    batch_size: int = 1000,
    source: str = "",
    on_batch: Callable[[ImportReport], None] | None = None,
    pool: Executor | None = None,
) -> ImportReport:
    """Judge and record every row, in file order, ``batch_size`` rows per Lua call;
    ``positions`` comes from ``map_header``, ``source`` names the file in the rejected stream,
    ``on_batch`` sees the report after each batch written, ``pool`` judges rows (``None``:
    this process, between Redis calls).

    Raises ``StoreUnavailable`` / ``StoreError`` (Redis) and ``UnreadableFile`` (from
    ``rows``) once the batch in flight is written; rows written stay written (re-importing is
    harmless).
    """
    run = _Run(dict(positions), policy, store, rejects, source)
    started = time.perf_counter()
    in_flight: asyncio.Task[None] | None = None
    try:
        async with contextlib.aclosing(run.batches(rows, batch_size, pool)) as batches:
            async for batch in batches:
                if in_flight is not None:
                    await in_flight
                    run.report.seconds = time.perf_counter() - started
                    if on_batch is not None:
                        on_batch(run.report)
                in_flight = asyncio.create_task(run.write(batch))
                await asyncio.sleep(0)  # send it; Redis runs it while the next batch is judged
        if in_flight is not None:
            await in_flight
            if on_batch is not None:
                on_batch(run.report)
    except Exception:
        if in_flight is not None:  # let the batch in flight land, so the counts are true
            await asyncio.gather(in_flight, return_exceptions=True)
        raise
    except BaseException:
        if in_flight is not None:
            in_flight.cancel()
        raise
    run.report.seconds = time.perf_counter() - started
    return run.report


@dataclass
class _Batch:
    """Rows judged together: accepted events with (row, cells) of each, and the rejected
    stream entries of the refused rows."""

    events: list[StoredEvent] = field(default_factory=list)
    origins: list[tuple[int, list[str]]] = field(default_factory=list)
    stream: list[dict[str, str]] = field(default_factory=list)
    accepted: list[AcceptedEvent] = field(default_factory=list)


@dataclass
class _Run:
    """One import: what it judges with, where it writes, and its report."""

    positions: dict[str, int]
    policy: IntakePolicy
    store: EventStore
    rejects: RejectsFile
    source: str
    report: ImportReport = field(default_factory=ImportReport)

    async def batches(
        self, rows: Iterator[tuple[int, list[str]]], size: int, pool: Executor | None
    ) -> AsyncGenerator[_Batch, None]:
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
    ) -> _Batch:
        """The batch of a judged chunk; refused rows are written to the rejects file now."""
        batch = _Batch()
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

    async def write(self, batch: _Batch) -> None:
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
        batch: _Batch,
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


def rejection_entry(
    source: str,
    row: int,
    fields: Mapping[str, str],
    problems: Sequence[FieldProblem],
    now_ms: int,
) -> dict[str, str]:
    """The rejected-stream entry of a refused row, in the receiver's shape (``status``,
    ``error``, ``detail``: problems as JSON, ``receivedMs``: UTC ms, ``body``) plus ``source``
    (``import``), ``file``, ``row`` and ``phoneNumber`` (as written, for the audit store's
    per-number lookup). The body holds the row's fields with the phone number masked to its
    last 4 digits, and digit runs masked in the others (ISO 8601 times excepted:
    a misaligned column may put a number anywhere)."""
    body = {
        name: mask_number(value) if name == PHONE else _stream_value(value)
        for name, value in fields.items()
    }
    reused = any(p.field == "eventId" for p in problems)
    return {
        "status": "409" if reused else "422",
        "error": "id_conflict" if reused else "invalid_event",
        "detail": json.dumps([p.as_dict() for p in problems], separators=(",", ":")),
        "source": "import",
        "file": source[:256],
        "row": str(row),
        "receivedMs": str(now_ms),
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "bodyTruncated": "false",
        "phoneNumber": fields.get(PHONE, "")[:64],  # for the audit store's per-number lookup
        "sender": IMPORT_SENDER,
    }


def _stream_value(value: str) -> str:
    if not value.isdigit():
        try:
            parse_event_time(value, LATEST_MS, 0)
            return value[:64]
        except TimestampProblem:
            pass
    return redact(value, 64)
