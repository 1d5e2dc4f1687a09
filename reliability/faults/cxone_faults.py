"""Chaos: CXone (the sandbox) failing about half of its calls with 5xx, hangs past the
client's read timeout and lost replies, and answering bursts of 429 with ``Retry-After`` in
seconds, as an HTTP date and absent, for a sustained period while sync runs keep going; then
the faults stop and the backlog must converge to the oracle with no harmful repetition. At
the front of the backlog, numbers CXone keeps refusing for now (stuck) must not hold back the
opt-outs behind them, and must end reflected or dead-lettered, never lost.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.cxone_faults [--numbers 2000] [--events 4000]
        [--fault-s 90] [--rate 20] [--error-rate 0.3] [--timeout-rate 0.2]
        [--lost-reply-rate 0.05] [--stuck 50] [--behind 50] [--seed 8] [--short]
        [--prefect-api-url URL]

What it does:

1. Starts Redis, the sandbox, the receiver and a Prefect server on free loopback ports, and
   posts through the receiver, in this order: one event for each of ``--stuck`` numbers
   (opt-outs and opt-ins, the oldest in the backlog), an opt-out for each of ``--behind``
   other numbers, then ``--events`` events over ``--numbers`` numbers. The sandbox answers
   every write of a stuck number with a per-record temporary failure (``failing_numbers``)
   until step 4. A run claims ``--stuck`` numbers at a time (``DNC_SYNC_CLAIM_SIZE``), so a
   claim can be made of stuck numbers only: a run that stopped there (nothing settled) would
   starve everything behind them. Retries are short (``RETRY``: a number's 4th temporary
   failure, some 4-7 s after its first, dead-letters it, "gave up after 4 temporary
   failures: ...").
2. For ``--fault-s`` seconds, in three equal phases (``retry_after_mode`` ``seconds``, then
   ``http-date``, then ``none``): every API and token call fails with probability
   ``--error-rate`` (500/502/503) or hangs ``HANG_S`` (longer than the client's
   ``READ_TIMEOUT_S``) with ``--timeout-rate``; ``--lost-reply-rate`` of the writes that
   succeed are applied and their answer lost; and every other second the sandbox's rate
   limit drops to ``BURST_RPS`` (the client paces at ``CLIENT_RPS``): a burst of 429s.
   Meanwhile events keep arriving (``--rate`` a second) and ``dnc-sync sync run`` runs back
   to back (a run that ends Failed because a batch failed after its retries is expected).
3. The faults stop (and the events) but the stuck numbers still fail until every ``--behind``
   opt-out is applied, or ``STARVE_LIMIT_S`` passes (starvation: a violation).
4. The stuck numbers stop failing; sync runs go on until nothing is pending or waiting out a
   retry backoff.

The figures: ``history`` (``history.check_history`` over the sandbox's whole write journal:
no write that moved a number's state back in the receiver's order, every number's latest
acknowledged event reflected, no dead letter, every write traced to an accepted event; counts
per violation class and examples), ``converge_s`` (faults stopped -> nothing pending; the
sandbox is then compared with the oracle), ``lost`` (the history's latest acknowledged events
not reflected), ``wrongly_applied``, ``extra_applications`` (a number's records added or
expired more often than its acknowledged events asked: a harmful repetition; a re-push
answered "already exists" adds nothing), ``runs`` (exit codes during and after the faults,
and each run's wall time: under faults a run outlasts its time budget, which stops new
claims but lets a claimed batch go through all its retries),
``retries`` (summed over the runs' ``dnc-sync-summary`` artifacts: ``http_retries``,
``retried``, ``deferred``, ``dead_lettered``, ``failed_batches``, ``already_applied``,
``api_calls``), ``stuck`` (``behind_applied_while_stuck``: the ``--behind`` opt-outs the
sandbox journaled before the stuck numbers stopped failing, must be all of them;
``behind_wait_s``: how long after the fault window that took; per stuck number its end:
``reflected`` after the lift, ``dead_lettered`` with a reason starting "gave up after", or
``lost``, must be 0; ``written_while_failing`` must be 0; ``unexpected_dead_letters``: dead
letters of numbers that were not stuck, must be 0) and the sandbox's request counts by
endpoint and status. Exit 1 when an invariant is violated, including no retry in the
artifacts (the faults would not have been seen), no stuck number retried, or a dead letter
of a number that was not stuck (a transient fault must never be taken for a permanent
refusal).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from dnc.keys import RedisKeys
from reliability.faults.history import LOST, check_history
from reliability.faults.oracle import (
    OPT_IN,
    OPT_OUT,
    EventFactory,
    Sent,
    account,
    active_numbers,
    expected_state,
    extra_applications,
    fetch_journal,
    group_digits,
    numbers,
    statuses,
    wrongly_applied,
)
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import JOURNAL_TARGET, NAMESPACE, Stack, dead_letters, state_values
from reliability.faults.wire import send_all, send_at_rate

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
    "stuck": 50,
    "behind": 50,
    "seed": 8,
}
SHORT = LONG | {"numbers": 300, "events": 500, "fault_s": 6.0, "rate": 10.0}
SHORT |= {"stuck": 20, "behind": 20}
GAVE_UP = "gave up after"
"""How the reason of a number dead-lettered by its own temporary failures starts."""
EXPECTED_DEAD_REASONS: tuple[str, ...] = (GAVE_UP,)  # a stuck number's, and only theirs
RETRY = {  # DNC_SYNC_RETRY_*: backoffs of 0.5-1, 1-2, 2-4 s; the 4th failure dead-letters
    "sync_retry_max_attempts": "4",
    "sync_retry_backoff_base_s": "1",
    "sync_retry_backoff_cap_s": "4",
    "sync_retry_max_age_s": "60",
}
EXERCISE_CAP_S = 30.0
"""How long the faults may go on past ``--fault-s`` until a 429 and a 5xx were answered."""
STARVE_LIMIT_S = 20.0
"""How long after the fault window the ``--behind`` opt-outs may still wait while the stuck
numbers fail (they are normally applied within the window)."""


@dataclass
class Stuck:
    """The stuck numbers' ``events``, the opt-outs posted right ``behind`` them, when the
    stuck numbers stopped failing (``lifted_ms``, UTC ms) and how long the behind opt-outs
    were waited for after the fault window (``behind_wait_s``)."""

    events: list[Sent]
    behind: list[Sent]
    lifted_ms: int = 0
    behind_wait_s: float = 0.0


async def post_stuck(stack: Stack, args: argparse.Namespace) -> Stuck:
    """Post the stuck numbers' events (opt-outs and opt-ins, the oldest pending), then an
    opt-out for each behind number; make the sandbox fail every stuck number."""
    now_ms = int(time.time() * 1000)
    stuck_numbers = numbers(args.stuck, offset=args.numbers)
    events = [
        Sent(n, OPT_IN if i % 3 == 2 else OPT_OUT, now_ms - 1000, f"stuck-{i}")
        for i, n in enumerate(stuck_numbers)
    ]
    behind = [
        Sent(n, OPT_OUT, now_ms, f"behind-{i}")
        for i, n in enumerate(numbers(args.behind, offset=args.numbers + args.stuck))
    ]
    await asyncio.to_thread(stack.faults, failing_numbers=[group_digits(n) for n in stuck_numbers])
    for group in (events, behind):
        await send_all(stack.ports["receiver"], stack.bearer, group, 4)
        await asyncio.sleep(0.01)  # received strictly after: behind them in the backlog
    return Stuck(events, behind)


def written(journal: list[dict[str, Any]], event: Sent) -> list[dict[str, Any]]:
    """The journal entries that stand for ``event`` (its number, event time and action)."""
    digits = group_digits(event.e164)
    return [
        e
        for e in journal
        if e["phoneNumber"] == digits
        and e["eventMs"] == event.event_ms
        and e["action"] == event.action
    ]


async def wait_behind(stack: Stack, stuck: Stuck, limit_s: float) -> None:
    """Wait until every behind opt-out is journaled, at most ``limit_s`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        journal = await asyncio.to_thread(fetch_journal, stack.sandbox, JOURNAL_TARGET)
        if all(written(journal, event) for event in stuck.behind):
            break
        await asyncio.sleep(0.5)
    stuck.behind_wait_s = round(time.monotonic() - started, 2)


async def _set_faults(stack: Stack, args: argparse.Namespace, mode: str, step: int) -> None:
    """The sandbox's faults for fault step ``step`` in Retry-After ``mode``: a 429 burst on
    odd steps, a new seed each step (each change reseeds: vary it)."""
    await asyncio.to_thread(
        stack.faults,
        error_rate=args.error_rate,
        timeout_rate=args.timeout_rate,
        lost_reply_rate=args.lost_reply_rate,
        hang_s=HANG_S,
        retry_after_mode=mode,
        rate_limit_rps=BURST_RPS if step % 2 else 0,
        seed=args.seed + step,
    )


async def inject(stack: Stack, args: argparse.Namespace) -> dict[str, float]:
    """The three fault phases, a 429 burst every other second; seconds spent per mode."""
    spent: dict[str, float] = {}
    step = 0
    for mode in MODES:
        started = time.monotonic()
        end = started + args.fault_s / len(MODES)
        while time.monotonic() < end:
            step += 1
            await _set_faults(stack, args, mode, step)
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        spent[mode] = round(time.monotonic() - started, 1)
    # A slow machine may start its first sync run late in a short window: the faults go on
    # (the last mode, a 429 burst every other second) until the sandbox has answered the
    # records endpoint a 429 and a 5xx, so a run always exercises what it reports; at most
    # EXERCISE_CAP_S more (CI once saw a short run with no 429 at all).
    started = time.monotonic()
    while time.monotonic() - started < EXERCISE_CAP_S and not await exercised(stack):
        step += 1
        await _set_faults(stack, args, MODES[-1], step)
        await asyncio.sleep(1.0)
    spent["until_exercised"] = round(time.monotonic() - started, 1)
    return spent


async def exercised(stack: Stack) -> bool:
    """Whether the sandbox has answered the DNC records endpoint a 429 and a 5xx."""
    state = await asyncio.to_thread(stack.sandbox, "GET", "/_sandbox/state")
    codes = state["requests"].get("dnc_records", {})
    return "429" in codes and any(code in codes for code in ("500", "502", "503", "504"))


async def sync_runs(stack: Stack, env: dict[str, str], until: asyncio.Event) -> list[int]:
    """``dnc-sync sync run`` back to back until ``until`` is set; their exit codes."""
    codes = []
    while not until.is_set():
        codes.append(await stack.arun_sync(env, 600))
    return codes


def backlog(stack: Stack) -> int:
    """Numbers pending or waiting out a retry backoff."""
    r = stack.redis()
    try:
        return int(r.zcard(KEYS.pending)) + int(r.zcard(KEYS.deferred))
    finally:
        r.close()


async def scenario(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    factory = EventFactory(numbers(args.numbers), rng, prefix="cx", spread_ms=600_000)
    stuck = await post_stuck(stack, args)
    sent: list[Sent] = [factory.make() for _ in range(args.events)]
    await send_all(stack.ports["receiver"], stack.bearer, sent, 8)
    sent += stuck.events + stuck.behind
    env = stack.flow_env(
        cxone_batch_size="10",
        cxone_rate_limit_rps=str(CLIENT_RPS),
        cxone_read_timeout_s=str(READ_TIMEOUT_S),
        # the lease timing rule (dnc/fence.py): TTL 5 s >= 0.5 x 3 + read timeout + margin
        # 0.5 + 1 s
        cxone_connect_timeout_s="0.5",
        cxone_pool_timeout_s="0.5",
        cxone_write_timeout_s="0.5",
        sync_fence_margin_s="0.5",
        cxone_backoff_base_s="0.2",
        cxone_backoff_cap_s="2",
        cxone_retry_after_cap_s="5",
        sync_time_budget_s=str(max(5.0, args.fault_s / 6)),  # see "runs" in the report
        sync_push_retry_delay_s="0.2",
        sync_lease_ttl_s="5",
        sync_claim_size=str(args.stuck),  # a claim can be all stuck numbers
        **RETRY,
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
    await wait_behind(stack, stuck, STARVE_LIMIT_S)  # the stuck numbers still fail
    await asyncio.to_thread(stack.faults, failing_numbers=[])
    stuck.lifted_ms = int(time.time() * 1000)
    recovered = time.monotonic()
    faults_over.set()
    during = await runs
    after: list[int] = []
    while backlog(stack) and len(after) < 20:
        after.append(await stack.arun_sync(env | {"DNC_SYNC_TIME_BUDGET_S": "120"}, 600))
    converge_s = time.monotonic() - recovered
    summaries = await asyncio.to_thread(stack.summaries, since)
    return report(stack, args, (sent, stuck), phases, (during, after), summaries, converge_s)


CLEAR = {
    "error_rate": 0,
    "timeout_rate": 0,
    "lost_reply_rate": 0,
    "rate_limit_rps": 0,
    "retry_after_mode": "seconds",
}


def judge_stuck(
    stuck: Stuck, journal: list[dict[str, Any]], dead: dict[str, Any]
) -> dict[str, Any]:
    """How the stuck numbers and the opt-outs behind them fared (see the module docstring)."""
    ends: dict[str, int] = {"reflected": 0, "dead_lettered": 0, "lost": 0}
    reasons: list[str] = []
    early = 0
    for event in stuck.events:
        writes = written(journal, event)
        early += sum(1 for e in writes if e["atMs"] < stuck.lifted_ms)
        letter = dead.get(event.e164) or {}
        named = letter.get("event") or {}
        reason = str(letter.get("reason") or "")
        if writes and writes[-1]["seq"] == max(
            e["seq"] for e in journal if e["phoneNumber"] == group_digits(event.e164)
        ):
            ends["reflected"] += 1
        elif reason.startswith(GAVE_UP) and (named.get("eventMs"), named.get("action")) == (
            event.event_ms,
            event.action,
        ):
            ends["dead_lettered"] += 1
            reasons.append(reason)
        else:
            ends["lost"] += 1
    stuck_numbers = {event.e164 for event in stuck.events}
    return {
        "numbers": len(stuck.events),
        "behind": len(stuck.behind),
        "behind_applied_while_stuck": sum(
            1
            for event in stuck.behind
            if any(e["atMs"] < stuck.lifted_ms for e in written(journal, event))
        ),
        "behind_wait_s": stuck.behind_wait_s,
        **ends,
        "written_while_failing": early,
        "unexpected_dead_letters": sum(1 for n in dead if n not in stuck_numbers),
        "dead_reasons": sorted(set(reasons))[:3],
    }


def stuck_violations(judged: dict[str, Any], retried: int) -> list[str]:
    checks = {
        f"only {judged['behind_applied_while_stuck']} of {judged['behind']} opt-outs behind "
        "the stuck numbers were applied while those failed (starved)": judged[
            "behind_applied_while_stuck"
        ]
        < judged["behind"],
        f"{judged['lost']} stuck number(s) neither reflected nor dead-lettered "
        f"'{GAVE_UP} ...'": judged["lost"] > 0,
        f"{judged['written_while_failing']} write(s) of stuck numbers while the sandbox "
        "refused them": judged["written_while_failing"] > 0,
        f"{judged['unexpected_dead_letters']} dead letter(s) of numbers that were not stuck": (
            judged["unexpected_dead_letters"] > 0
        ),
        "no stuck number was retried (the fault missed)": retried == 0,
    }
    return [text for text, bad in checks.items() if bad]


def report(
    stack: Stack,
    args: argparse.Namespace,
    sent_and_stuck: tuple[list[Sent], Stuck],
    phases: dict[str, float],
    runs: tuple[list[int], list[int]],
    summaries: list[dict[str, Any]],
    converge_s: float,
) -> dict[str, Any]:
    sent, stuck = sent_and_stuck
    r = stack.redis()
    try:
        watermarks = state_values(r, KEYS)
        dead = dead_letters(r, KEYS)
        left = int(r.zcard(KEYS.pending)) + int(r.zcard(KEYS.deferred))
    finally:
        r.close()
    state = stack.sandbox("GET", "/_sandbox/state")
    journal = fetch_journal(stack.sandbox, JOURNAL_TARGET)
    history = check_history(journal, sent, dead, EXPECTED_DEAD_REASONS)
    expected = expected_state(sent)
    stuck_numbers = {event.e164 for event in stuck.events}
    gave_up = {
        n: letter
        for n, letter in dead.items()
        if n in stuck_numbers and str(letter.get("reason", "")).startswith(GAVE_UP)
    }
    wrong = wrongly_applied(expected, active_numbers(state), gave_up)
    fates = account(sent, watermarks, dead)
    extra = extra_applications(sent, state)
    retries = {
        name: sum(int(s.get(name, 0)) for s in summaries)
        for name in (
            "http_retries",
            "retried",
            "deferred",
            "dead_lettered",
            "failed_batches",
            "already_applied",
            "api_calls",
        )
    }
    judged_stuck = judge_stuck(stuck, journal, dead)
    acknowledged = sum(1 for e in sent if e.acknowledged)
    checks = {
        **dict.fromkeys(history.failures(), True),
        f"{fates['lost']} acknowledged event(s) lost in Redis": fates["lost"] > 0,
        f"{len(wrong)} number(s) wrongly applied: {wrong[:5]}": bool(wrong),
        f"{left} number(s) still pending or waiting out a retry backoff": left > 0,
        f"{len(sent) - acknowledged} event(s) not answered 202": acknowledged < len(sent),
        f"extra applications: {dict(list(extra.items())[:5])}": bool(extra),
        **dict.fromkeys(stuck_violations(judged_stuck, retries["retried"]), True),
        "no retry in the runs' summary artifacts": retries["http_retries"] == 0,
        f"a run after recovery failed: {runs[1]}": any(runs[1]),
    }
    return {
        "suite": "cxone_faults",
        "fault": "CXone 5xx/hangs/lost replies on ~"
        f"{round(100 * (args.error_rate + args.timeout_rate))}% of calls and 429 "
        "bursts (Retry-After seconds, http-date, none) while syncs run, numbers stuck at "
        "the front of the backlog; then recovery",
        "times": len(runs[0]),
        "events_sent": len(sent),
        "acknowledged": acknowledged,
        "lost": history.violations[LOST],
        "wrongly_applied": len(wrong),
        "converge_s": round(converge_s, 2),
        "history": history.as_json(),
        "fault_phases_s": phases,
        "runs": {
            "during_faults": runs[0],
            "after_recovery": runs[1],
            "wall_s": [s.get("wall_time_s") for s in summaries],
            "time_budget_s": max(5.0, args.fault_s / 6),
        },
        "retries": retries,
        "stuck": judged_stuck,
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
    stack.start_all(seed=str(args.seed))
    result = asyncio.run(scenario(stack, args))
    result["config"] = {k: v for k, v in vars(args).items() if k != "prefect_api_url"} | {
        "hang_s": HANG_S,
        "read_timeout_s": READ_TIMEOUT_S,
        "client_rps": CLIENT_RPS,
        "burst_rps": BURST_RPS,
        "retry": RETRY,
        "starve_limit_s": STARVE_LIMIT_S,
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
    parser.add_argument("--stuck", type=int, help="numbers CXone keeps failing (50; 20)")
    parser.add_argument("--behind", type=int, help="opt-outs right behind them (50; 20)")
    parser.add_argument("--seed", type=int, help="random seed (8)")
    args = sized_args(parser, LONG, SHORT, argv)
    if args.stuck < 1 or args.behind < 1 or args.numbers + args.stuck + args.behind > 10_000:
        parser.error("need --stuck >= 1, --behind >= 1 and at most 10,000 numbers in all")
    return args


main = fault_main("dnc-chaos-cxone-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
