"""Soak: the receiver under a sustained, fixed request rate for minutes. Its memory must stay
flat, its p99 latency within target, and no request may fail.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.soak [--rate 2000] [--duration-s 300] [--warmup-s 30]
        [--sample-s 5] [--workers 2] [--connections 64] [--numbers 10000]
        [--p99-target-ms 20] [--aof] [--seed 10] [--short]

What it does:

1. Starts ``redis-server`` (no persistence; ``--aof``: ``appendfsync always``) and the receiver
   (``--workers`` workers, logging at INFO: one line per request, the default) on free
   loopback ports. Requests are made as they are sent (``Requests``): fresh events over
   ``--numbers`` numbers in human forms, ~20% opt-ins, ~5% exact repeats, ~2% a number that
   does not exist (must get 422).
2. Open loop (``openloop.py``): request ``i`` is due at ``start + i / rate``, whatever
   happened before; it waits in a queue for one of ``--connections`` keep-alive connections,
   and its latency counts from when it was due (so a stall shows as latency, not as a slower
   rate).
3. Every ``--sample-s`` it reads the receiver's resident memory (VmRSS summed over the uvicorn
   supervisor and all its workers) and the interval's p99; over the measured window, the CPU
   used by the receiver, Redis, the load generator and everything else on the machine
   (``cpu_pct``, % of one core).

The verdict, after ``--warmup-s``:

* memory flat: the mean RSS of the last third of the samples is at most ``MEMORY_SLACK_MB``
  (15 MB, about 7% of the ~205 MB the README measures for 2 workers) above the mean of the
  first third. A leak of even one small object per request would break it: at 2,000 requests
  a second, 16 bytes each is 2 MB a minute. The one cache that legitimately grows, the
  phone-normalisation cache (bounded: 65,536 entries a worker, ~400 bytes each), sees one form
  per number, so it fills during the warm-up (with bench/receiver.py's forms, extensions make
  nearly every request distinct and the cache would grow for minutes, by ~50 MB);
* p99 at most ``--p99-target-ms`` (20 ms): the README measured p99 13.8-18.7 ms with INFO
  logging at full saturation (64 connections closed-loop, 7,800-9,200 events/s, 2 workers); a
  fixed 2,000/s is a quarter of that capacity, so nothing should queue and p99 must stay
  below the saturated figure (rounded up: the shared VM varies by up to a fifth). The p99
  includes what other work on the machine takes from these 2 cores: ``cpu_pct.others`` says
  how much, and ``interval_p99_ms`` gives each interval's p99 (a busy neighbour shows in some
  intervals, a slow receiver in all of them). The CI test passes 100 ms for that reason;
* zero errors: every answer 202 (or 422 for the invalid numbers), no transport error, and
  the rate actually offered within 2% of ``--rate``.

Prints one JSON object (``times``: samples judged after the warm-up; ``events_sent`` and
``acknowledged``: requests and 202s in the measured window; ``lost``, ``wrongly_applied`` and
``converge_s`` are 0: nothing is synced here); exit 1 when a criterion fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from reliability import procfs
from reliability.faults.openloop import NS, Requests, Tally, connection, offer, p99_ms, sample
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import Stack

MEMORY_SLACK_MB = 15.0
P99_TARGET_MS = 20.0
LONG = {
    "rate": 2000.0,
    "duration_s": 300.0,
    "warmup_s": 30.0,
    "sample_s": 5.0,
    "workers": 2,
    "connections": 64,
    "numbers": 10_000,
    "p99_target_ms": P99_TARGET_MS,
    "seed": 10,
}
SHORT = LONG | {"duration_s": 12.0, "warmup_s": 3.0, "sample_s": 1.0, "numbers": 2000}


def cpu_ticks(stack: Stack) -> dict[str, Any]:
    """CPU clock ticks used so far by the receiver (all its processes), Redis and this
    process (the load generator), and the machine's (busy, total) ticks over all cores."""
    tree = procfs.process_tree(stack.procs["receiver"].pid)
    return {
        "receiver": sum(procfs.cpu_ticks(pid) for pid in tree),
        "redis": procfs.cpu_ticks(stack.procs["redis"].pid),
        "loadgen": procfs.cpu_ticks(os.getpid()),
        "machine": procfs.machine_ticks(),
    }


def cpu_use(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, float]:
    """% of one core per role between two ``cpu_ticks``; ``others``: what the rest of the
    machine (other tenants of a shared box) used meanwhile; ``machine_busy_pct``: % of all
    cores busy."""
    tick_s = os.sysconf("SC_CLK_TCK")
    use = {
        role: round(100 * (after[role] - before[role]) / tick_s / seconds, 1)
        for role in ("receiver", "redis", "loadgen")
    }
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    cores = os.cpu_count() or 1
    machine = 100 * busy / total if total else 0.0
    use["others"] = round(max(0.0, machine * cores - sum(use.values())), 1)
    use["machine_busy_pct"] = round(machine, 1)
    return use


async def drive(
    stack: Stack, args: argparse.Namespace
) -> tuple[Tally, list[dict[str, Any]], float, dict[str, float]]:
    root = stack.procs["receiver"].pid

    def rss() -> float:
        return sum(procfs.rss_mb(pid) for pid in procfs.process_tree(root))

    start_ns = time.monotonic_ns() + NS // 5
    end_ns = start_ns + int((args.warmup_s + args.duration_s) * NS)
    tally = Tally(start_ns + int(args.warmup_s * NS))
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    port = stack.ports["receiver"]
    requests = Requests(port, stack.bearer, args.numbers, random.Random(args.seed))
    workers = [
        asyncio.create_task(connection(port, queue, requests, tally))
        for _ in range(args.connections)
    ]
    sampler = asyncio.create_task(sample(rss, queue.qsize, tally, end_ns, args.sample_s))
    offering = asyncio.create_task(offer(queue, args.rate, start_ns, end_ns, tally))
    await asyncio.sleep(max(0.0, (tally.warm_ns - time.monotonic_ns()) / NS))
    before = cpu_ticks(stack)
    await offering
    cpu = cpu_use(before, cpu_ticks(stack), (time.monotonic_ns() - tally.warm_ns) / NS)
    drained = time.monotonic()
    while not queue.empty() and time.monotonic() - drained < 10:
        await asyncio.sleep(0.05)
    left = queue.qsize()
    await asyncio.sleep(0.5)  # the last answers
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    samples = await sampler
    tally.errors["never_sent"] += left
    return tally, samples, (time.monotonic_ns() - start_ns) / NS, cpu


def interval_p99s(samples: list[dict[str, Any]], target_ms: float) -> dict[str, Any]:
    """The p99 of each sample interval after the warm-up: median, worst and how many were
    over ``target_ms`` (a whole-machine stall shows in a few intervals; a slow receiver in
    all of them)."""
    values = [s["p99_ms"] for s in samples if s["warm"] and s["p99_ms"] is not None]
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 2),
        "max": max(values),
        "over_target": sum(1 for v in values if v > target_ms),
        "intervals": len(values),
    }


def verdict(
    tally: Tally, samples: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    warm = [s["rss_mb"] for s in samples if s["warm"]]
    third = max(1, len(warm) // 3)
    first, last = statistics.fmean(warm[:third]), statistics.fmean(warm[-third:])
    answered = len(tally.latencies)
    rate = answered / args.duration_s
    p99 = p99_ms(tally.latencies) or 0.0
    errors = sum(n for k, n in tally.errors.items() if n)
    ordered = sorted(tally.latencies)

    def pick(q: float) -> float:
        return round(ordered[min(answered - 1, math.ceil(q * answered) - 1)] / 1e6, 2)

    checks = {
        f"memory grew {last - first:.1f} MB (limit {MEMORY_SLACK_MB})": last - first
        > MEMORY_SLACK_MB,
        f"p99 {p99} ms over {args.p99_target_ms} ms": args.p99_target_ms > 0
        and p99 > args.p99_target_ms,
        f"{errors} error(s): {dict(tally.errors)}": errors > 0,
        f"answered {rate:.0f}/s, wanted {args.rate:.0f}/s": rate < 0.98 * args.rate,
    }
    return {
        "suite": "soak",
        "fault": f"receiver at a fixed {args.rate:.0f} events/s for {args.duration_s:.0f} s "
        f"({args.workers} workers, INFO logs)",
        "times": len(warm),  # memory and p99 samples judged
        "events_sent": answered + errors,  # in the measured window
        "offered_total": tally.offered,  # the warm-up included
        "acknowledged": tally.statuses.get("202", 0),
        "lost": 0,
        "wrongly_applied": 0,
        "converge_s": 0.0,
        "errors": errors,
        "error_kinds": dict(tally.errors),
        "statuses": dict(sorted(tally.statuses.items())),
        "answered_per_s": round(rate, 1),
        "latency_ms": {
            "p50": pick(0.5),
            "p90": pick(0.9),
            "p99": p99,
            "p99_9": pick(0.999),
            "max": round(ordered[-1] / 1e6, 2),
        }
        if answered
        else {},
        "p99_target_ms": args.p99_target_ms,
        "interval_p99_ms": interval_p99s(samples, args.p99_target_ms),
        "rss_mb": {
            "first_third_mean": round(first, 1),
            "last_third_mean": round(last, 1),
            "growth": round(last - first, 1),
            "limit": MEMORY_SLACK_MB,
            "min": min(warm),
            "max": max(warm),
        },
        "samples": samples,
        "violations": [text for text, bad in checks.items() if bad],
    }


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_redis(aof=args.aof)
    stack.start_receiver(workers=args.workers, log_level="INFO")
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        tally, samples, wall_s, cpu = runner.run(drive(stack, args))
    result = verdict(tally, samples, args)
    result["cpu_pct"] = cpu
    result["config"] = {k: v for k, v in vars(args).items() if k != "prefect_api_url"} | {
        "wall_s": round(wall_s, 1),
        "p99_target_ms": args.p99_target_ms,
        "memory_slack_mb": MEMORY_SLACK_MB,
    }
    return result


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, help="requests a second, fixed (2000)")
    parser.add_argument("--duration-s", type=float, help="measured time (300; short 12)")
    parser.add_argument("--warmup-s", type=float, help="unmeasured lead-in (30; short 3)")
    parser.add_argument("--sample-s", type=float, help="RSS sample interval (5; short 1)")
    parser.add_argument("--workers", type=int, help="receiver workers (2)")
    parser.add_argument("--connections", type=int, help="keep-alive connections (64)")
    parser.add_argument("--numbers", type=int, help="distinct numbers (10000; short 2000)")
    parser.add_argument(
        "--p99-target-ms",
        type=float,
        help=f"p99 limit ({P99_TARGET_MS}); 0 reports the p99 without judging it (make test: "
        "a shared CI machine's stalls are not the receiver's)",
    )
    parser.add_argument("--seed", type=int, help="random seed (10)")
    parser.add_argument("--aof", action="store_true", help="redis appendfsync always")
    return sized_args(parser, LONG, SHORT, argv)


main = fault_main("dnc-chaos-soak-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
