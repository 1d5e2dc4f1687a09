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

Reading the CSV and writing the rejects file: ``dnc_sync.csv_rows``; judging rows and the
worker processes: ``dnc_sync.import_judging``; the batches written: ``dnc_sync.import_batches``;
a refused row's rejected-stream entry: ``dnc_sync.import_rejections``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from pathlib import Path

from dnc.intake import IntakePolicy
from dnc.store import EventStore
from dnc_sync.csv_rows import CsvFormat, RejectsFile, map_header, open_csv
from dnc_sync.import_batches import ImportRun
from dnc_sync.import_judging import (
    IMPORT_SENDER,
    POOL_MIN_BYTES,
    Verdict,
    auto_workers,
    judge_rows,
    worker_pool,
)
from dnc_sync.import_rejections import rejection_entry
from dnc_sync.import_report import ImportReport

__all__ = [
    "IMPORT_SENDER",
    "POOL_MIN_BYTES",
    "CsvFormat",
    "ImportReport",
    "Verdict",
    "auto_workers",
    "import_file",
    "import_rows",
    "judge_rows",
    "rejection_entry",
]


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
        with open(fd, "w", encoding="utf-8", newline="") as stream, worker_pool(workers) as pool:
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
    run = ImportRun(dict(positions), policy, store, rejects, source)
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
