"""Chaos: access tokens that expire every few seconds in the middle of sync runs. Each run (one
process, one token cache) must mint exactly once per token lifetime it works through: never
while its token is still fresh, never using one past its refresh point, never a 401.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.token_expiry [--token-ttl-s 5] [--run-s 40] [--runs 2]
        [--seed 9] [--short] [--prefect-api-url URL]

The expected number, from ``dnc/cxone/tokens.py``: a token is replaced at
``expires_in - min(DNC_CXONE_TOKEN_SKEW_S, expires_in / 2)`` seconds after its answer arrives,
by the first call made after that moment (one mint, shared by every caller waiting then).
Here the sandbox issues tokens for ``--token-ttl-s`` s and the skew is ``SKEW_S`` (1 s), so a
run's refresh period is ``P = ttl - 1`` s (for ttl 5: 4 s; for ttl 3: 2 s) and a run that calls
CXone without pause for ``D`` seconds mints ``1 + floor(D / P)`` tokens, give or take one when
a call falls right on a refresh point.

What it does: starts Redis, the sandbox (``DNC_SANDBOX_TOKEN_TTL_S``), the receiver, a Prefect
server and a recording proxy in front of the sandbox (``wire.Proxy``: every token and API call
with its time), then ``--runs`` times: posts ``RATE_RPS x BATCH x run_s`` events (an
opt-out or opt-in for each of as many new numbers) and runs ``dnc-sync sync run``, paced at
``RATE_RPS`` calls a second (4 in flight), which drains them in about ``--run-s`` seconds.

Per run the proxy's timeline gives: ``mints`` (token calls), ``re_mints`` (``mints - 1``),
``refresh_points_due`` (refresh points, ``P`` after each mint, that an API call came after:
the exact number of re-mints expected; ``..._maybe_due``: a call within ``SLACK_S`` of the
point), ``active_s`` (first mint -> last API call), ``about_re_mints`` (``floor(active_s /
P)``, the estimate above, an upper bound: each period also lasts until the next call),
``early_mints`` (a mint less than ``P`` after the previous one: a token replaced while fresh,
must be 0) and ``stale_calls`` (an API call more than ``P + STALE_SLACK_S`` after the last
mint with no new mint before it: a token used past its refresh point, must be 0); the sandbox
counts 401s (must be 0) and token requests (equal to the proxy's). The sandbox's whole write
journal is judged by ``history.check_history`` (``history``: no write out of order, every number's
latest acknowledged event reflected, no dead letter, every write traced to an accepted event;
``lost`` is its count of events not reflected). Exit 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
import sys
import time
from typing import Any

from dnc.keys import RedisKeys
from reliability.faults.history import LOST, check_history
from reliability.faults.oracle import (
    OPT_IN,
    OPT_OUT,
    Sent,
    account,
    active_numbers,
    expected_state,
    fetch_journal,
    numbers,
    wrongly_applied,
)
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import JOURNAL_TARGET, NAMESPACE, Stack, dead_letters, state_values
from reliability.faults.wire import Call, Proxy, send_all

KEYS = RedisKeys(NAMESPACE)
SKEW_S = 1.0
RATE_RPS = 20
BATCH = 5
SLACK_S = 0.15  # between the client's clock and the proxy's view of a call
# A call the client sent with its token just before the refresh point can reach the proxy
# late on a busy machine (the soak suite sees 150 ms stalls): a stale call is one that came
# more than half the skew past the point. A client that ignored the skew (refreshing only at
# expiry, SKEW_S later) still makes about RATE_RPS * SKEW_S / 2 of them a period.
STALE_SLACK_S = SKEW_S / 2
LONG = {"token_ttl_s": 5, "run_s": 40.0, "runs": 2, "seed": 9}
SHORT = LONG | {"token_ttl_s": 3, "run_s": 7.0, "runs": 1}
EXPECTED_DEAD_REASONS: tuple[str, ...] = ()  # an expiring token must never dead-letter


def period_s(ttl_s: float) -> float:
    """When the client replaces a token of ``ttl_s`` seconds (``dnc.cxone.tokens``)."""
    return ttl_s - min(SKEW_S, ttl_s / 2)


def judge_run(calls: list[Call], period: float) -> dict[str, Any]:
    """One run's token timeline (its calls through the proxy, in order). A refresh point is
    ``period`` after a mint's answer; it is ``due`` when an API call came after it (more
    than ``SLACK_S`` after: surely; within ``SLACK_S``: ``maybe_due``, the client's clock and
    the proxy's may put that call on either side)."""
    mints = [c for c in calls if c.path.endswith("/auth/token")]
    api = [c.started_s for c in calls if "/dnc-groups/" in c.path]
    if not mints or not api:
        return {"mints": len(mints), "api_calls": len(api)}
    early = sum(
        1 for a, b in itertools.pairwise(mints) if b.started_s < a.ended_s + period - SLACK_S
    )
    stale = due = maybe_due = 0
    for index, mint in enumerate(mints):
        refresh_s = mint.ended_s + period
        next_start = mints[index + 1].started_s if index + 1 < len(mints) else math.inf
        stale += sum(1 for t in api if refresh_s + STALE_SLACK_S < t < next_start)
        if max(api) > refresh_s + SLACK_S:
            due += 1
        elif max(api) > refresh_s - SLACK_S:
            maybe_due += 1
    active_s = max(api) - mints[0].ended_s
    return {
        "mints": len(mints),
        "re_mints": len(mints) - 1,
        "refresh_points_due": due,
        "refresh_points_maybe_due": maybe_due,
        "active_s": round(active_s, 2),
        "about_re_mints": math.floor(active_s / period),
        "early_mints": early,
        "stale_calls": stale,
        "api_calls": len(api),
        "mint_gaps_s": [round(b.started_s - a.ended_s, 2) for a, b in itertools.pairwise(mints)],
    }


async def scenario(stack: Stack, proxy: Proxy, args: argparse.Namespace) -> dict[str, Any]:
    per_run = int(RATE_RPS * BATCH * args.run_s)
    rng, now_ms = random.Random(args.seed), int(time.time() * 1000)
    env = stack.flow_env(
        cxone_issuer_url=f"http://127.0.0.1:{proxy.port}",
        cxone_batch_size=str(BATCH),
        cxone_rate_limit_rps=str(RATE_RPS),
        cxone_max_concurrency="4",
        cxone_token_skew_s=str(SKEW_S),
        sync_time_budget_s=str(2 * args.run_s),
        sync_claim_size=str(RATE_RPS * BATCH * 2),
    )
    period = period_s(args.token_ttl_s)
    sent: list[Sent] = []
    runs = []
    for index in range(args.runs):
        backlog = [  # one event per number, so every batch is full: the run lasts ~run_s
            Sent(e164, OPT_OUT if rng.random() < 0.8 else OPT_IN, now_ms - i, f"tok-{index}-{i}")
            for i, e164 in enumerate(numbers(per_run, offset=index * per_run))
        ]
        await send_all(stack.ports["receiver"], stack.bearer, backlog, 8)
        sent += backlog
        first = len(proxy.calls)
        code = await stack.arun_sync(env, 3 * args.run_s + 120)
        runs.append(judge_run(proxy.calls[first:], period) | {"exit_code": code})
    return {"sent": sent, "runs": runs, "period_s": period}


def report(
    stack: Stack, proxy: Proxy, found: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    sent: list[Sent] = found["sent"]
    runs: list[dict[str, Any]] = found["runs"]
    state = stack.sandbox("GET", "/_sandbox/state")
    r = stack.redis()
    try:
        watermarks = state_values(r, KEYS)
        dead = dead_letters(r, KEYS)
        left = int(r.zcard(KEYS.pending))
    finally:
        r.close()
    history = check_history(
        fetch_journal(stack.sandbox, JOURNAL_TARGET), sent, dead, EXPECTED_DEAD_REASONS
    )
    fates = account(sent, watermarks, dead)
    wrong = wrongly_applied(expected_state(sent), active_numbers(state))
    refused = sum(n for s, n in state["requests"].get("dnc_records", {}).items() if s == "401")
    token_calls = sum(1 for c in proxy.calls if c.path.endswith("/auth/token"))
    issued = state["tokens"]["issued"].get("auth_token", 0)
    re_mints = sum(run.get("re_mints", 0) for run in runs)
    expected = sum(run.get("refresh_points_due", 0) for run in runs)
    maybe = sum(run.get("refresh_points_maybe_due", 0) for run in runs)
    checks = {
        f"{refused} API call(s) answered 401": refused > 0,
        "a token was replaced while fresh": any(run.get("early_mints") for run in runs),
        "a token was used past its refresh point": any(run.get("stale_calls") for run in runs),
        f"{re_mints} re-mints for {expected} refresh points (+{maybe} borderline)": not (
            expected <= re_mints <= expected + maybe
        ),
        "no re-mint at all: the runs were shorter than a token's life": re_mints == 0,
        f"sandbox issued {issued} tokens, the proxy saw {token_calls} calls": issued != token_calls,
        **dict.fromkeys(history.failures(), True),
        f"{fates['lost']} acknowledged event(s) lost in Redis": fates["lost"] > 0,
        f"{len(wrong)} number(s) wrongly applied": bool(wrong),
        f"{left} number(s) still pending": left > 0,
        "a run failed": any(run["exit_code"] for run in runs),
    }
    return {
        "suite": "token_expiry",
        "fault": f"access tokens living {args.token_ttl_s} s (refreshed every "
        f"{found['period_s']:g} s) through {len(runs)} sync run(s) of ~{args.run_s:g} s",
        "times": re_mints,
        "refresh_points": expected,
        "refresh_points_borderline": maybe,
        "events_sent": len(sent),
        "acknowledged": sum(1 for e in sent if e.acknowledged),
        "lost": history.violations[LOST],
        "wrongly_applied": len(wrong),
        "converge_s": 0.0,
        "history": history.as_json(),
        "fates": dict(sorted(fates.items())),
        "runs": runs,
        "api_401": refused,
        "tokens": state["tokens"],
        "config": {k: v for k, v in vars(args).items() if k != "prefect_api_url"}
        | {"skew_s": SKEW_S, "rate_rps": RATE_RPS, "batch_size": BATCH},
        "violations": [text for text, bad in checks.items() if bad],
    }


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_all(token_ttl_s=str(args.token_ttl_s))
    return asyncio.run(_run(stack, args))


async def _run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    proxy = Proxy(stack.ports["sandbox"])
    await proxy.start()
    try:
        found = await scenario(stack, proxy, args)
        return report(stack, proxy, found, args)
    finally:
        await proxy.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--token-ttl-s", type=int, help="token lifetime (5; short 3)")
    parser.add_argument("--run-s", type=float, help="how long each run works (40; short 7)")
    parser.add_argument("--runs", type=int, help="runs, one process each (2; short 1)")
    parser.add_argument("--seed", type=int, help="random seed (9)")
    args = sized_args(parser, LONG, SHORT, argv)
    if not 2 <= args.token_ttl_s <= 600 or args.run_s <= 0 or args.runs < 1:
        parser.error("need 2 <= --token-ttl-s <= 600, --run-s > 0, --runs >= 1")
    if RATE_RPS * BATCH * args.run_s * args.runs > 10_000:
        parser.error(f"at most 10,000 numbers: run_s x runs <= {10_000 // (RATE_RPS * BATCH)}")
    return args


main = fault_main("dnc-chaos-token-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
