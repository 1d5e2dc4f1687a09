"""Chaos: CXone (the sandbox) failing about half of its calls with 5xx, hangs past the
client's read timeout and lost replies, and answering bursts of 429 with ``Retry-After`` in
seconds, as an HTTP date and absent, for a sustained period while sync runs keep going; then
the faults stop and the backlog must converge to the oracle with no harmful repetition.

Usage, from the repository root::

    .venv/bin/python bench/chaos/cxone_faults.py [--numbers 2000] [--events 4000]
        [--fault-s 90] [--rate 20] [--error-rate 0.3] [--timeout-rate 0.2]
        [--lost-reply-rate 0.05] [--seed 8] [--short] [--prefect-api-url URL]

What it does:

1. Starts Redis, the sandbox, the receiver and a Prefect server on free loopback ports, and
   posts ``--events`` events over ``--numbers`` numbers through the receiver.
2. For ``--fault-s`` seconds, in three equal phases (``retry_after_mode`` ``seconds``, then
   ``http-date``, then ``none``): every API and token call fails with probability
   ``--error-rate`` (500/502/503) or hangs ``HANG_S`` (longer than the client's
   ``READ_TIMEOUT_S``) with ``--timeout-rate``; ``--lost-reply-rate`` of the writes that
   succeed are applied and their answer lost; and every other second the sandbox's rate
   limit drops to ``BURST_RPS`` (the client paces at ``CLIENT_RPS``): a burst of 429s.
   Meanwhile events keep arriving (``--rate`` a second) and ``dnc-sync sync run`` runs back
   to back (a run that ends Failed because a batch failed after its retries is expected).
3. The faults stop (and the events); sync runs go on until nothing is pending.

The figures: ``converge_s`` (faults stopped -> nothing pending; the sandbox is then compared
with the oracle), ``lost``, ``wrongly_applied``, ``extra_applications`` (a number's records added or
expired more often than its acknowledged events asked: a harmful repetition; a re-push
answered "already exists" adds nothing), ``runs`` (exit codes during and after the faults,
and each run's wall time: under faults a run outlasts its time budget, which stops new
claims but lets a claimed batch go through all its retries),
``retries`` (summed over the runs' ``dnc-sync-summary`` artifacts: ``http_retries``,
``retried``, ``failed_batches``, ``already_applied``, ``api_calls``) and the sandbox's
request counts by endpoint and status. Exit 1 when an invariant is violated, including no
retry in the artifacts (the faults would not have been seen) or any dead letter (a
transient fault must never be taken for a permanent refusal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

from oracle import (
    EventFactory,
    Sent,
    account,
    active_numbers,
    expected_state,
    extra_applications,
    numbers,
    statuses,
    wrongly_applied,
)
from script import chaos_main, sized_args
from stack import NAMESPACE, Stack
from wire import send_all, send_at_rate

from dnc.keys import RedisKeys

KEYS = RedisKeys(NAMESPACE)
HANG_S = 1.0
READ_TIMEOUT_S = 0.5
CLIENT_RPS = 10
BURST_RPS = 2
MODES = ("seconds", "http-date", "none")
LONG = {
    "numbers": 2000,
    "events": 4000,
    "fault_s": 90.0,
    "rate": 20.0,
    "error_rate": 0.3,
    "timeout_rate": 0.2,
    "lost_reply_rate": 0.05,
    "seed": 8,
}
SHORT = LONG | {"numbers": 300, "events": 500, "fault_s": 6.0, "rate": 10.0}


async def inject(stack: Stack, args: argparse.Namespace) -> dict[str, float]:
    """The three fault phases, a 429 burst every other second; seconds spent per mode."""
    spent: dict[str, float] = {}
    step = 0
    for mode in MODES:
        started = time.monotonic()
        end = started + args.fault_s / len(MODES)
        while time.monotonic() < end:
            step += 1
            await asyncio.to_thread(
                stack.faults,
                error_rate=args.error_rate,
                timeout_rate=args.timeout_rate,
                lost_reply_rate=args.lost_reply_rate,
                hang_s=HANG_S,
                retry_after_mode=mode,
                rate_limit_rps=BURST_RPS if step % 2 else 0,
                seed=args.seed + step,  # each change reseeds: vary it
            )
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        spent[mode] = round(time.monotonic() - started, 1)
    return spent


async def sync_runs(stack: Stack, env: dict[str, str], until: asyncio.Event) -> list[int]:
    """``dnc-sync sync run`` back to back until ``until`` is set; their exit codes."""
    codes = []
    while not until.is_set():
        codes.append(await stack.arun_sync(env, 600))
    return codes


def pending(stack: Stack) -> int:
    r = stack.redis()
    try:
        return int(r.zcard(KEYS.pending))
    finally:
        r.close()


async def scenario(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    factory = EventFactory(numbers(args.numbers), rng, prefix="cx", spread_ms=600_000)
    sent: list[Sent] = [factory.make() for _ in range(args.events)]
    await send_all(stack.ports["receiver"], stack.bearer, sent, 8)
    env = stack.flow_env(
        cxone_batch_size="10",
        cxone_rate_limit_rps=str(CLIENT_RPS),
        cxone_read_timeout_s=str(READ_TIMEOUT_S),
        cxone_backoff_base_s="0.2",
        cxone_backoff_cap_s="2",
        cxone_retry_after_cap_s="5",
        sync_time_budget_s=str(max(5.0, args.fault_s / 6)),  # see "runs" in the report
        sync_push_retry_delay_s="0.2",
        sync_lease_ttl_s="5",
    )
    since = time.time()
    faults_over, stop_events = asyncio.Event(), asyncio.Event()
    trickle = asyncio.create_task(
        send_at_rate(stack.ports["receiver"], stack.bearer, factory, args.rate, stop_events, sent)
    )
    runs = asyncio.create_task(sync_runs(stack, env, faults_over))
    phases = await inject(stack, args)
    stop_events.set()
    await trickle
    await asyncio.to_thread(stack.faults, **CLEAR)
    recovered = time.monotonic()
    faults_over.set()
    during = await runs
    after = []
    while pending(stack) and len(after) < 20:
        after.append(await stack.arun_sync(env | {"DNC_SYNC_TIME_BUDGET_S": "120"}, 600))
    converge_s = time.monotonic() - recovered
    summaries = await asyncio.to_thread(stack.summaries, since)
    return report(stack, args, sent, phases, (during, after), summaries, converge_s)


CLEAR = {
    "error_rate": 0,
    "timeout_rate": 0,
    "lost_reply_rate": 0,
    "rate_limit_rps": 0,
    "retry_after_mode": "seconds",
}


def report(
    stack: Stack,
    args: argparse.Namespace,
    sent: list[Sent],
    phases: dict[str, float],
    runs: tuple[list[int], list[int]],
    summaries: list[dict[str, Any]],
    converge_s: float,
) -> dict[str, Any]:
    r = stack.redis()
    try:
        watermarks = r.hgetall(KEYS.watermark)
        dead = {k: json.loads(v) for k, v in r.hgetall(KEYS.dead_letters).items()}
        left = int(r.zcard(KEYS.pending))
    finally:
        r.close()
    state = stack.sandbox("GET", "/_sandbox/state")
    expected = expected_state(sent)
    wrong = wrongly_applied(expected, active_numbers(state), dead)
    fates = account(sent, watermarks, dead)
    extra = extra_applications(sent, state)
    retries = {
        name: sum(int(s.get(name, 0)) for s in summaries)
        for name in ("http_retries", "retried", "failed_batches", "already_applied", "api_calls")
    }
    acknowledged = sum(1 for e in sent if e.acknowledged)
    checks = {
        f"{fates['lost']} acknowledged event(s) lost": fates["lost"] > 0,
        f"{len(wrong)} number(s) wrongly applied: {wrong[:5]}": bool(wrong),
        f"{left} number(s) still pending": left > 0,
        f"{len(sent) - acknowledged} event(s) not answered 202": acknowledged < len(sent),
        f"extra applications: {dict(list(extra.items())[:5])}": bool(extra),
        f"{len(dead)} dead letter(s) from transient faults": bool(dead),
        "no retry in the runs' summary artifacts": retries["http_retries"] == 0,
        f"a run after recovery failed: {runs[1]}": any(runs[1]),
    }
    return {
        "suite": "cxone_faults",
        "fault": "CXone 5xx/hangs/lost replies on ~"
        f"{round(100 * (args.error_rate + args.timeout_rate))}% of calls and 429 "
        "bursts (Retry-After seconds, http-date, none) while syncs run; then recovery",
        "times": len(runs[0]),
        "events_sent": len(sent),
        "acknowledged": acknowledged,
        "lost": fates["lost"],
        "wrongly_applied": len(wrong),
        "converge_s": round(converge_s, 2),
        "fault_phases_s": phases,
        "runs": {
            "during_faults": runs[0],
            "after_recovery": runs[1],
            "wall_s": [s.get("wall_time_s") for s in summaries],
            "time_budget_s": max(5.0, args.fault_s / 6),
        },
        "retries": retries,
        "extra_applications": sum(extra.values()),
        "fates": dict(sorted(fates.items())),
        "statuses": statuses(sent),
        "dead_letters": len(dead),
        "pending_after": left,
        "numbers": len(expected),
        "sandbox_requests": state["requests"],
        "tokens": state["tokens"],
        "violations": [text for text, bad in checks.items() if bad],
    }


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_redis()
    stack.start_sandbox(seed=str(args.seed))
    stack.start_receiver()
    stack.start_prefect()
    result = asyncio.run(scenario(stack, args))
    result["config"] = {k: v for k, v in vars(args).items() if k != "prefect_api_url"} | {
        "hang_s": HANG_S,
        "read_timeout_s": READ_TIMEOUT_S,
        "client_rps": CLIENT_RPS,
        "burst_rps": BURST_RPS,
    }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, help="distinct numbers (2000; short 300)")
    parser.add_argument("--events", type=int, help="events posted first (4000; short 500)")
    parser.add_argument("--fault-s", type=float, help="how long the faults last (90; short 6)")
    parser.add_argument("--rate", type=float, help="events a second during faults (20; 10)")
    parser.add_argument("--error-rate", type=float, help="calls answered 5xx (0.3)")
    parser.add_argument("--timeout-rate", type=float, help="calls that hang (0.2)")
    parser.add_argument("--lost-reply-rate", type=float, help="writes whose answer is lost")
    parser.add_argument("--seed", type=int, help="random seed (8)")
    return sized_args(parser, LONG, SHORT, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return chaos_main(
        "dnc-chaos-cxone-",
        lambda tmp: Stack(tmp, prefect_api_url=args.prefect_api_url),
        lambda stack: run(stack, args),
    )


if __name__ == "__main__":
    sys.exit(main())
