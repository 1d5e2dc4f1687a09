"""Benchmark: reconcile a DNC group of up to 1,000,000 records against the sandbox (the CXone
tenant cap is 1M calling-list + DNC records) and print JSON.

    .venv/bin/python -m bench.reconcile                       # 1,000,000 records, 50 req/s
    .venv/bin/python -m bench.reconcile --records 100000 --rate-limit-rps 20

Real parts: a throwaway ``redis-server``, the sandbox over a socket, the ``reconcile-dnc`` flow
run in this process (Prefect's ephemeral API). The group is seeded out of band; Redis holds
this service's state of every number (a permanent opt-out it created, as if the sync had
written it), except ``--drift`` numbers of each kind: opt-outs missing from the group (each
costs a one-number lookup), and records someone else added for numbers opted in here.

It checks and reports, per size (``--sizes``: every size is run in the same process, so the
flow's memory can be compared across them):

- ``listing_calls`` = ceil(records / page size) exactly, and ``lookups`` = missing opt-outs;
- ``wall_s`` (the flow's report: lease, discovery, listing, comparison, missing pass) against
  ``ideal_s`` = calls / rate limit (the pacer lets one second's worth go at once, so the
  floor is (calls - rate) / rate): ``wall_vs_ideal`` should stay within 1.10;
- the drift found equals what was planted;
- RSS of this process sampled every 0.2 s during the flow: ``rss_growth_mb`` (peak minus the
  start of that run), which stays flat across sizes because the listing is streamed and the
  numbers seen go to a temporary SQLite file.

Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from bench.sync import GROUP_ID, NAMESPACE, FlowServices, start_redis
from bench.sync import flow_env as sync_flow_env
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.number_hash import ledger, states
from dnc.ownership import OwnedRecord
from dnc.state import state_tail, watermark
from reliability import procfs
from reliability.processes import run_main
from reliability.services import Services

SEED_CHUNK = 100_000
"""Records per out-of-band call and per Redis pipeline while seeding."""


@dataclass(frozen=True)
class Plan:
    """One size: ``records`` in the group; ``missing`` opt-outs Redis holds that the group
    lacks; ``foreign`` records added for numbers opted in here."""

    records: int
    missing: int
    foreign: int


def number(index: int) -> str:
    """The ``index``-th benchmark number: distinct +1 202 numbers."""
    return f"+1202{index:07d}"


def seed(services: Services, client: redis.Redis, plan: Plan, offset: int) -> None:
    """Fill the sandbox's group and Redis for ``plan``, numbers from ``offset`` on: the first
    ``records - foreign`` are opt-outs of ours held by the group (in sync), the next
    ``foreign`` are held by the group but opted in here (someone else's records: not_owned),
    the last ``missing`` are opt-outs of ours the group lacks (opt_out_missing)."""
    keys = RedisKeys(NAMESPACE)
    now_ms = int(time.time() * 1000)
    ours = plan.records - plan.foreign
    for start in range(0, plan.records, SEED_CHUNK):
        indexes = range(offset + start, offset + min(start + SEED_CHUNK, plan.records))
        services.sandbox(
            "POST",
            f"/_sandbox/dnc-groups/{GROUP_ID}/records",
            {"add": [{"phoneNumber": number(i)[1:]} for i in indexes]},
        )
    opted_out = [*range(ours), *range(plan.records, plan.records + plan.missing)]
    for start in range(0, len(opted_out), SEED_CHUNK):
        chunk = [number(offset + i) for i in opted_out[start : start + SEED_CHUNK]]
        state(client, keys, chunk, Action.OPT_OUT, now_ms)
    foreign = [number(offset + i) for i in range(ours, plan.records)]
    state(client, keys, foreign, Action.OPT_IN, now_ms)


def state(
    client: redis.Redis, keys: RedisKeys, numbers: list[str], action: Action, now_ms: int
) -> None:
    """Settled latest state ``action`` for ``numbers`` (compact states in their buckets); an
    opt-out's record is ours (a ledger entry in its bucket)."""
    if not numbers:
        return
    pipe = client.pipeline(transaction=False)
    marks, owned = {}, {}
    for e164 in numbers:
        event = StoredEvent(
            eventId=derive_event_id(f"{e164}|{action.value}|{now_ms}"),
            eventIdDerived=True,
            e164=e164,
            action=action,
            eventMs=now_ms - 60_000,
            receivedMs=now_ms - 60_000,
        )
        marks[e164] = f"{watermark(event)} {state_tail(event)}"  # as record_events.lua writes
        if action is Action.OPT_OUT:
            owned[e164] = OwnedRecord(e164[1:], now_ms, "bench").encode(e164)
    states(keys).queue_set(pipe, marks)
    ledger(keys).queue_set(pipe, owned)
    pipe.execute()


class RssSampler:
    """This process's resident set size, sampled every ``period_s`` in a thread (MB)."""

    def __init__(self, period_s: float = 0.2) -> None:
        self._period_s = period_s
        self._stop = threading.Event()
        self.samples: list[float] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.samples.append(rss_mb())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb())

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.samples.append(rss_mb())


def rss_mb() -> float:
    """Resident set size of this process, MiB."""
    return procfs.rss_mb(os.getpid())


def reconcile_once(plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """Run the flow once; its report, wall time and memory, checked against ``plan``."""
    from flows.reconcile import reconcile_dnc  # after flow_env: Prefect reads its home

    with RssSampler() as rss:
        report = asyncio.run(reconcile_dnc())
    wall_s = (int(str(report["finished_ms"])) - int(str(report["started_ms"]))) / 1000
    listing_calls = max(1, math.ceil(plan.records / args.page_size))
    calls = listing_calls + plan.missing
    ideal_s = calls / args.rate_limit_rps
    drift = report["drift"]
    problems = []
    if report["api_calls"] != calls:
        problems.append(f"api_calls {report['api_calls']} != {calls}")
    if drift != {
        "opt_out_missing": plan.missing,
        "opt_in_record": 0,
        "expiry_differs": 0,
        "not_owned": plan.foreign,
    }:
        problems.append(f"drift {drift} is not what was planted")
    if wall_s > 1.10 * ideal_s:
        problems.append(f"wall {wall_s:.1f} s is over 1.10 x ideal {ideal_s:.1f} s")
    return {
        "records": plan.records,
        "listing_calls": listing_calls,
        "lookups": plan.missing,
        "api_calls": report["api_calls"],
        "wall_s": round(wall_s, 2),
        "ideal_s": round(ideal_s, 2),
        "wall_vs_ideal": round(wall_s / ideal_s, 3),
        "listing_s": report["listing_s"],
        "missing_pass_s": report["missing_pass_s"],
        "records_per_s": round(plan.records / wall_s),
        "drift": drift,
        "rss_start_mb": round(rss.samples[0], 1),
        "rss_peak_mb": round(max(rss.samples), 1),
        "rss_growth_mb": round(max(rss.samples) - rss.samples[0], 1),
        "problems": problems,
    }


def flow_env(services: Services, args: argparse.Namespace) -> None:
    """The sync benchmark's environment, with this benchmark's rate and page size."""
    sync_flow_env(
        services,
        argparse.Namespace(batch_size=1000, rate_limit_rps=args.rate_limit_rps, time_budget_s=3600),
    )
    os.environ.update(
        {
            "DNC_CXONE_PHONE_FORMAT": "e164-digits",
            "DNC_RECONCILE_PAGE_SIZE": str(args.page_size),
            "DNC_RECONCILE_TIME_BUDGET_S": "7200",
            "PREFECT_LOGGING_LEVEL": "ERROR",  # the run's drift warning would go to stdout
        }
    )


def run(services: Services, args: argparse.Namespace) -> dict[str, Any]:
    """Every size in turn on fresh state; the JSON result."""
    client = start_redis(services)
    services.start_sandbox()
    flow_env(services, args)
    runs = []
    warm_up = Plan(10, 0, 0)  # Prefect's first run loads and starts what later runs reuse
    seed(services, client, warm_up, offset=9 * 10_000_000)
    reconcile_once(warm_up, args)
    for index, size in enumerate(args.sizes):
        client.flushall()
        services.sandbox("POST", "/_sandbox/reset", {})
        plan = Plan(size, min(args.drift, size // 10), min(args.drift, size // 10))
        started = time.monotonic()
        seed(services, client, plan, offset=index * 10_000_000)
        seeded_s = time.monotonic() - started
        result = reconcile_once(plan, args)
        result["seed_s"] = round(seeded_s, 1)
        runs.append(result)
    growth = [r["rss_growth_mb"] for r in runs]
    return {
        "bench": "reconcile",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {
            "rate_limit_rps": args.rate_limit_rps,
            "page_size": args.page_size,
            "page_concurrency": 4,
        },
        "runs": runs,
        "rss_growth_mb_by_size": dict(zip(map(str, args.sizes), growth, strict=True)),
        "violations": [f"{r['records']}: {p}" for r in runs for p in r["problems"]],
        "passed": not any(r["problems"] for r in runs),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rate-limit-rps", type=float, default=50.0)
    parser.add_argument("--page-size", type=int, default=1_000)
    parser.add_argument("--drift", type=int, default=50, help="numbers of each drift kind")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Every size; exit 1 when a check fails (``passed`` false: the figures still go out)."""
    args = parse_args(argv)
    return run_main("dnc-bench-reconcile-", FlowServices, lambda services: run(services, args))


if __name__ == "__main__":
    raise SystemExit(main())
