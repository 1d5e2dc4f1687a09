"""The sync run's watchdog: a drain that outlives its budget by more than one CXone attempt
(a hang somewhere) is stopped, after logging where each task of the process waits, so that a
stuck run cannot hold the lease (renewed by its heartbeat) for ever."""

from __future__ import annotations

import asyncio

from prefect import get_run_logger

from dnc.fence import stop
from flows.sync_push import SyncRun

WATCHDOG_SLACK_S = 60.0
"""Time beyond the budget and one attempt's bound left for Prefect's own calls, seconds."""


def awaiting(task: asyncio.Task[object]) -> str:
    """Where a suspended task waits, innermost first (``name:line <- caller:line ...``),
    following the chain of awaited coroutines (``Task.get_stack`` gives only the outermost
    frame of a suspended coroutine)."""
    where: list[str] = []
    current: object = task.get_coro()
    while current is not None and len(where) < 40:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return " <- ".join(reversed(where))


class Watchdog:
    """Stops a drain that outlives ``overrun_s`` (a hang somewhere): first it logs where each
    task of the process waits, then it cancels the draining task; ``fired`` says it did."""

    def __init__(self, run: SyncRun, overrun_s: float) -> None:
        self.run = run
        self.fired = False
        self.target = asyncio.current_task()
        self.task = asyncio.create_task(self._watch(overrun_s))

    async def _watch(self, overrun_s: float) -> None:
        await asyncio.sleep(overrun_s)
        self.run.counters.ended = "overran its budget"
        logger = get_run_logger()
        logger.error("the run outlived its budget by more than one CXone attempt; stopping it")
        for task in asyncio.all_tasks():
            logger.error("task %s waits in %s", task.get_name(), awaiting(task) or "(no frame)")
        self.fired = True
        if self.target is not None:
            self.target.cancel()

    def absorb(self) -> None:
        """Undo the watchdog's cancellation of the draining task (it ends by raising)."""
        if self.target is not None:
            self.target.uncancel()

    async def stop(self) -> None:
        """Cancel the watchdog (the drain ended in time, or it fired)."""
        await stop(self.task)
