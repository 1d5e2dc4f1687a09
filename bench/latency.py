"""Time to compliance: how long an opt-out takes from the receiver's 202 to its write in CXone
(the sandbox's write journal), at a steady open-loop load, with sync runs following each
other as the deployment runs them. Prints JSON.

Usage, from the repository root::

    .venv/bin/python -m bench.latency [--rate 20] [--duration-s 120] [--latency-ms 50]
        [--interval-s 20] [--keep-draining-s 50] [--p99-target-ms 2000]

What it does:

1. Starts ``redis-server``, the sandbox (``--latency-ms`` on every API call, a tenant limit of
   ``--rate-limit-rps``), the receiver (``dnc-sync serve``, INFO logs as by default) and a
   Prefect server, on free loopback ports (``reliability/faults/stack.py``).
2. Runs the sync as the deployment does, one process per run: ``dnc-sync sync run
   --keep-draining-s K`` started every ``--interval-s`` seconds (the schedule), each taking
   the drain over from the one before (``dnc.handover``), so the measurement crosses
   ``duration / interval`` handovers.
3. Once the first run holds the lease, sends ``--rate`` opt-outs a second for
   ``--duration-s``, open loop: event ``i`` is sent at ``start + i / rate`` whatever happened
   before, each a fresh number, each timed from when its 202 arrived (wall clock, UTC ms).
4. Waits until every number is in the sandbox's journal (or ``--settle-s`` passes), and pairs
   each number's first journal write (``atMs``, the sandbox's clock: the same machine) with
   its 202.

Output: ``latency_ms`` (p50, p90, p99, max over every event), ``missing`` (events never
written), ``runs`` (sync runs started, and how each ended: ``handed over``...), ``passed``
(p99 at most ``--p99-target-ms`` and nothing missing). Exit 1 when it did not pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reliability.faults.stack import Stack
from reliability.processes import HOST, HarnessError, run_main

SCHEMA = "dnc-bench-latency/1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="opt-outs a second")
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per call")
    parser.add_argument("--rate-limit-rps", type=float, default=20.0, help="tenant limit")
    parser.add_argument("--interval-s", type=float, default=20.0, help="a new run every ...")
    parser.add_argument("--keep-draining-s", type=float, default=50.0)
    parser.add_argument("--settle-s", type=float, default=60.0)
    parser.add_argument("--p99-target-ms", type=float, default=2_000.0)
    parser.add_argument("--keep-logs", type=Path, help="copy the stack's logs to this folder")
    parser.add_argument(
        "--samples", type=Path, help="also write each event's (sent s, latency ms) as JSON here"
    )
    return parser.parse_args(argv)


def percentile(values: list[int], q: float) -> int | None:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Schedule:
    """The deployment's schedule, by hand: a ``dnc-sync sync run --keep-draining-s K`` every
    ``interval_s`` (each run a process of its own, as a process worker starts it)."""

    def __init__(self, stack: Stack, env: dict[str, str], args: argparse.Namespace) -> None:
        self.stack, self.env, self.args = stack, env, args
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_one(self) -> None:
        options = ["--keep-draining-s", str(self.args.keep_draining_s)]
        self.procs.append(self.stack.spawn_sync(self.env, options=options))

    async def run(self, until: float) -> None:
        """Start a run now and every ``interval_s`` until ``until`` (monotonic seconds)."""
        while time.monotonic() < until:
            self.start_one()
            await asyncio.sleep(min(self.args.interval_s, max(0.0, until - time.monotonic())))


async def send(
    args: argparse.Namespace, url: str, bearer: str, sent: dict[str, int], failed: list[int]
) -> None:
    """Open loop: event ``i`` leaves at ``start + i / rate``; ``sent`` maps each number's
    journal form (E.164 digits) to when its 202 arrived (UTC ms)."""
    count = int(args.rate * args.duration_s)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    headers = {"Authorization": f"Bearer {bearer}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def one(i: int) -> None:
            number = f"+1202{5_000_000 + i:07d}"
            body = {"phoneNumber": number, "eventName": "optOut", "timestamp": _now_ms()}
            response = await client.post("/v1/events", json=body, timeout=30)
            if response.status_code == 202:
                sent[number.removeprefix("+")] = _now_ms()
            else:
                failed.append(response.status_code)

        start = time.monotonic()
        tasks = []
        for i in range(count):
            delay = start + i / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)


def _now_ms() -> int:
    return int(time.time() * 1000)


def journal_writes(stack: Stack) -> dict[str, int]:
    """Each number's first write in the sandbox's journal: digits -> ``atMs`` (UTC ms)."""
    first: dict[str, int] = {}
    after = 0
    while True:
        page = stack.sandbox("GET", f"/_sandbox/journal?after={after}&limit=1000")
        entries = page.get("entries", [])
        if not entries:
            return first
        for entry in entries:
            first.setdefault(entry["phoneNumber"], int(entry["atMs"]))
            after = max(after, int(entry["seq"]))


async def wait_written(stack: Stack, sent: dict[str, int], settle_s: float) -> dict[str, int]:
    deadline = time.monotonic() + settle_s
    while True:
        written = journal_writes(stack)
        if set(sent) <= set(written) or time.monotonic() > deadline:
            return written
        await asyncio.sleep(0.5)


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    env = stack.flow_env(
        cxone_rate_limit_rps=str(args.rate_limit_rps), sync_remove_foreign_records="false"
    )
    env["PREFECT_LOGGING_LEVEL"] = "INFO"
    schedule = Schedule(stack, env, args)
    client = stack.redis()
    lease = "{chaos}:sync-lease"
    end = time.monotonic() + args.duration_s + 5
    runs = asyncio.create_task(schedule.run(end))
    try:
        deadline = time.monotonic() + 120
        while client.get(lease) is None:  # Prefect's start in the first run: not measured
            if time.monotonic() > deadline:
                raise HarnessError("no sync run took the lease within 120 s")
            await asyncio.sleep(0.1)
        sent: dict[str, int] = {}
        failed: list[int] = []
        since_s = time.time()
        await send(args, f"http://{HOST}:{stack.ports['receiver']}", stack.bearer, sent, failed)
        written = await wait_written(stack, sent, args.settle_s)
    finally:
        runs.cancel()
        client.close()
    latencies = [written[n] - at for n, at in sent.items() if n in written]
    if args.samples:
        first = min(sent.values(), default=0)
        pairs = [((at - first) / 1000, written[n] - at) for n, at in sent.items() if n in written]
        args.samples.write_text(json.dumps(sorted(pairs)))
    for proc in schedule.procs:  # the last run keeps draining: stop it before reading ends
        proc.terminate()
    ended = [s.get("ended") for s in stack.summaries(since_s - 5)]
    return summarize(args, latencies, sent, written, failed, ended, len(schedule.procs))


def summarize(
    args: argparse.Namespace,
    latencies: list[int],
    sent: dict[str, int],
    written: dict[str, int],
    failed: list[int],
    ended: list[Any],
    runs: int,
) -> dict[str, Any]:
    missing = sorted(set(sent) - set(written))
    p99 = percentile(latencies, 0.99)
    return {
        "schema": SCHEMA,
        "python": platform.python_version(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("samples", "keep_logs")},
        "events": {"sent": len(sent) + len(failed), "accepted": len(sent), "refused": failed},
        "latency_ms": {
            "p50": percentile(latencies, 0.50),
            "p90": percentile(latencies, 0.90),
            "p99": p99,
            "max": max(latencies, default=None),
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
        "missing": len(missing),
        "runs": {"started": runs, "ended": {str(e): ended.count(e) for e in set(ended)}},
        "passed": not missing and not failed and p99 is not None and p99 <= args.p99_target_ms,
    }


@dataclass
class LatencyStack(Stack):
    """``Stack`` whose logs are copied to ``keep_logs`` (if set) once everything stopped."""

    keep_logs: Path | None = None

    def stop_all(self) -> None:
        super().stop_all()
        if self.keep_logs:
            self.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in self.tmp.glob("*.log"):
                shutil.copy(log, self.keep_logs / log.name)


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, measure; the figures (``passed`` false: p99 over target, or events
    missing)."""
    faults = {
        "latency_ms": args.latency_ms,
        "rate_limit_rps": args.rate_limit_rps,
        "retry_after_mode": "seconds",
    }
    stack.start_all(faults, log_level="INFO")
    return asyncio.run(measure(stack, args))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "dnc-bench-latency-",
        lambda tmp: LatencyStack(tmp, keep_logs=args.keep_logs),
        lambda stack: run(stack, args),
    )


if __name__ == "__main__":
    raise SystemExit(main())
