"""Judging import rows: ``build_event`` on each row (``judge_rows``, pure, so it runs in a
worker process as well), the pool of worker processes, and how many workers a file gets by
default."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dnc.errors import EventValidationError, FieldProblem
from dnc.intake import AcceptedEvent, IntakePolicy, build_event
from dnc_sync.csv_rows import row_fields

IMPORT_SENDER = "import"
"""The sender ``dnc-sync status`` names for imported rows with a time without a zone."""
Verdict = AcceptedEvent | tuple[FieldProblem, ...]
"""What intake says of one row: the event, or every problem."""
POOL_MIN_BYTES = 4_000_000
"""Files smaller than this (about 80,000 rows) are judged in-process by default: starting
worker processes costs more than it saves."""


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


def auto_workers(path: Path) -> int:
    """Worker processes for ``path`` by default: 0 under ``POOL_MIN_BYTES``, else one per CPU
    this process may use, at most 4 (judging numbers is the CPU-bound part of an import)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return 0 if size < POOL_MIN_BYTES else min(len(os.sched_getaffinity(0)), 4)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` worker processes (spawned, ignoring Ctrl-C), shut down when the block
    ends; ``None`` when ``workers`` <= 0 (judge in this process)."""
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
