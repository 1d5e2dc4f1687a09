"""One reconciliation: page through what CXone holds, compare each number with this service's
state, look for opt-outs CXone lacks, and (``repair``) requeue what the sync can fix.

1. **Listing.** Every page (``RecordReader.pages``) is compared as it arrives, against the
   states of its numbers read in one pipeline; its numbers go to ``SeenNumbers`` (on disk).
2. **Missing opt-outs.** Once every page was read, every number this service knows
   (``StateReader.known_numbers``) that the listing did not show is compared with "no
   record". An opt-out in force found missing is looked up on its own first (up to
   ``verify_limit`` lookups): offset paging can hide a record when another is removed
   mid-run, and a record found that way is compared as it is.
3. **Ownership.** The ledger entries of records of ours found gone (deleted by someone
   else, or lapsed) are released (``ledger``): a record that appears later is not ours.
4. **Repair.** Numbers of a repairable class (``DriftClass.repairable``) are put back in the
   pending set as they are found (``PendingQueue.resync``); the next sync pushes their latest
   state.

The caller holds the sync lease for the whole run (``flows/reconcile.py``): no sync writes to
CXone or settles a number meanwhile, so what is read from CXone and from Redis belong
together. ``should_stop`` is asked before each page and each chunk of the missing pass (the
lease lost, the time budget spent); a run that stops is reported incomplete (stopped while
listing, it did not look for missing opt-outs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from dnc.held_records import HeldRecord, RecordReader
from dnc.ownership import OwnershipLedger
from dnc.pending import PendingQueue
from dnc.reconcile.drift import DriftClass, Note, NumberState, classify
from dnc.reconcile.report import ReconcileReport, Tally
from dnc.reconcile.seen import SeenNumbers
from dnc.reconcile.state import StateReader

Progress = Callable[[int], Awaitable[None]]
"""Called with the count of listing pages read so far, after each page."""
StopCheck = Callable[[], str]
"""Asked before each page: why the run must stop now, or ``""``."""


@dataclass(frozen=True, slots=True)
class ReconcileOptions:
    """``repair``: requeue repairable drift, and ``not_owned`` numbers too when
    ``repair_not_owned`` (``DNC_SYNC_REMOVE_FOREIGN_RECORDS``: the sync may then remove
    records it did not create); ``sample_size``: masked numbers kept per class;
    ``verify_limit``: one-number lookups allowed for missing opt-outs; ``lookup_concurrency``:
    lookups in flight at once (the transport still paces them)."""

    repair: bool = False
    repair_not_owned: bool = False
    sample_size: int = 20
    verify_limit: int = 1_000
    lookup_concurrency: int = 4


class Reconciliation:
    """One run over ``reader`` (CXone) and ``states`` (Redis), repairing through ``queue``."""

    def __init__(
        self,
        reader: RecordReader,
        states: StateReader,
        queue: PendingQueue,
        options: ReconcileOptions,
        report: ReconcileReport,
        ledger: OwnershipLedger | None = None,
    ) -> None:
        self._ledger = ledger
        self._reader = reader
        self._states = states
        self._queue = queue
        self._options = options
        self._report = report
        self._tally = Tally(options.sample_size)
        self._lookups = 0
        if options.repair:
            report.requeued = 0

    async def run(
        self,
        should_stop: StopCheck,
        progress: Progress | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> ReconcileReport:
        """Reconcile; returns the report (also when stopped: ``complete`` false). Raises the
        reader's CXone errors and ``StoreError``; the report then stays unwritten."""
        report = self._report
        with SeenNumbers() as seen:
            started = time.monotonic()
            stopped = await self._listing(seen, should_stop, progress, now_ms)
            report.listing_s = round(time.monotonic() - started, 3)
            if not stopped and self._reader.listed < self._reader.total:
                stopped = (
                    f"the listing gave {self._reader.listed} of its {self._reader.total} "
                    "records (removed while paging, or a server that pages differently)"
                )
            if not stopped:
                started = time.monotonic()
                stopped = await self._missing(seen, should_stop, now_ms)
                report.missing_pass_s = round(time.monotonic() - started, 3)
            report.incomplete_reason = stopped
            report.complete = not stopped
        report.api_calls = self._reader.calls
        report.page_size = self._reader.page_size
        report.finished_ms = now_ms()
        self._tally.fill(report)
        return report

    async def _listing(
        self,
        seen: SeenNumbers,
        should_stop: StopCheck,
        progress: Progress | None,
        now_ms: Callable[[], int],
    ) -> str:
        """Compare every listed record; returns why it stopped early, or ``""``."""
        pages = 0
        async with contextlib.aclosing(self._reader.pages()) as listing:  # stops fetches too
            async for page in listing:
                pages += 1
                stopped = should_stop()
                if stopped:
                    return stopped
                await self._compare_page(page, seen, now_ms)
                if progress is not None:
                    await progress(pages)
        return should_stop()

    async def _compare_page(
        self, page: Sequence[HeldRecord], seen: SeenNumbers, now_ms: Callable[[], int]
    ) -> None:
        """Compare one page's records not seen before."""
        by_number = {record.e164: record for record in reversed(page)}  # first one wins
        fresh = seen.add([record.e164 for record in page])
        self._report.records += len(fresh)
        states = await self._states.states(fresh)
        self._report.numbers += sum(1 for state in states if state.action is not None)
        at_ms = now_ms()
        found = [(n, classify(s, by_number[n], at_ms)) for n, s in zip(fresh, states, strict=True)]
        await self._settle(found, at_ms)

    async def _missing(
        self, seen: SeenNumbers, should_stop: StopCheck, now_ms: Callable[[], int]
    ) -> str:
        """Compare every known number the listing did not show with "no record"; returns why
        it stopped early, or ``""``."""
        async for chunk in self._states.known_numbers():
            stopped = should_stop()
            if stopped:
                return f"{stopped} (looking for missing opt-outs)"
            unseen = seen.add(chunk)  # marks them too: HSCAN may repeat a number
            states = await self._states.states(unseen)
            self._report.numbers += len(unseen)
            at_ms = now_ms()
            found: list[tuple[str, DriftClass | Note]] = []
            suspects: list[tuple[str, NumberState]] = []
            gone: list[str] = []  # owned by the ledger, no record: ours went away
            for number, state in zip(unseen, states, strict=True):
                result = classify(state, None, at_ms)
                if result is DriftClass.OPT_OUT_MISSING:
                    suspects.append((number, state))
                else:
                    found.append((number, result))
                    if result is Note.IN_SYNC and state.owned:
                        gone.append(number)
            confirmed, absent = await self._confirm(suspects, at_ms)
            found += confirmed
            await self._forget(gone + absent)
            await self._settle(found, at_ms)
        return ""

    async def _forget(self, numbers: list[str]) -> None:
        """Release the ledger entries of records of ours found gone (expired, or removed
        by someone else): whatever holds those numbers later is not ours."""
        if numbers and self._ledger is not None:
            self._report.released += await self._ledger.release(numbers)

    async def _confirm(
        self, suspects: Sequence[tuple[str, NumberState]], at_ms: int
    ) -> tuple[list[tuple[str, DriftClass | Note]], list[str]]:
        """Look each missing opt-out up on its own while the verify limit allows; a record
        found is compared as it is. Returns what was found, and the owned numbers whose
        record the lookup confirmed gone."""
        room = max(0, self._options.verify_limit - self._lookups)
        checked, unchecked = suspects[:room], suspects[room:]
        self._lookups += len(checked)
        self._report.unconfirmed += len(unchecked)
        slots = asyncio.Semaphore(self._options.lookup_concurrency)

        async def look(number: str) -> HeldRecord | None:
            async with slots:
                return await self._reader.lookup(number)

        records = await asyncio.gather(*(look(number) for number, _ in checked))
        found: list[tuple[str, DriftClass | Note]] = [
            (number, classify(state, record, at_ms))
            for (number, state), record in zip(checked, records, strict=True)
        ]
        absent = [
            number
            for (number, state), record in zip(checked, records, strict=True)
            if record is None and state.owned
        ]
        found += [(number, DriftClass.OPT_OUT_MISSING) for number, _ in unchecked]
        return found, absent

    async def _settle(self, found: Sequence[tuple[str, DriftClass | Note]], at_ms: int) -> None:
        """Count what was found and requeue the repairable numbers (``repair``)."""
        repairable = []
        for number, result in found:
            self._tally.add(number, result)
            if isinstance(result, DriftClass) and (
                result.repairable
                or (result is DriftClass.NOT_OWNED and self._options.repair_not_owned)
            ):
                repairable.append(number)
        if self._options.repair and repairable and self._report.requeued is not None:
            self._report.requeued += await self._queue.resync(repairable, at_ms)
