"""Chaos: the sync flow killed with SIGKILL at chosen and random points of its runs, again and
again, while events keep arriving through the receiver; then one clean run must leave a
history of CXone writes that never moved a number's state back and reflects every number's
latest acknowledged event, and the sandbox's DNC group exactly as the oracle says.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.flow_kill [--kills 20] [--numbers 300] [--rate 20]
        [--latency-ms 250] [--batch-size 5] [--claim-size 20] [--traffic-runs 3]
        [--traffic-run-s 4] [--seed 6] [--short]
        [--prefect-api-url URL]

What it does:

1. Starts Redis, the sandbox (every API call takes ``--latency-ms``), the receiver and a
   Prefect server on free loopback ports, and a recording proxy in front of the sandbox's API
   (``wire.Proxy``), so each API call of a run is seen as it starts and ends.
2. Posts ``--numbers`` events through the receiver at once (a backlog), then ``--rate`` a
   second over those numbers for the whole run (``oracle.EventFactory``: late events, ties,
   opt-outs and opt-ins).
3. ``--kills`` times: starts ``dnc-sync sync run`` (batches of ``--batch-size`` pushed one at a
   time, ``--claim-size`` claimed per loop, lease TTL 5 s), waits until it holds the Redis
   lease, then SIGKILLs its process group at a point aimed at one phase, in turn: ``claim``
   (just after taking the lease: token, claim), ``mid_push`` (a write is on its way to the
   sandbox), ``after_push_before_ack`` (a write's answer has just been handed to the run) and
   ``random`` (anywhere in the next 4 s). Where it really landed is judged after the kill
   from the proxy (a write in flight) and from Redis and the sandbox (numbers the run changed
   in the sandbox but did not acknowledge): ``phases`` counts those. A run that ends before
   its kill, or finds the dead run's lease still held, is retried (``skipped``).
4. ``--traffic-runs`` runs that are not killed, each with a time budget of
   ``--traffic-run-s``, while events keep arriving: numbers whose event changes during their
   push must stay pending (the compare-and-delete acknowledgement), or the sandbox ends wrong.
5. Stops the events, turns the latency off and, as the dead run's lease runs out, runs the
   sync once more, cleanly; it must exit 0 (a run that came too early and found the lease
   still held is started again: ``final_run.attempts``).

The figures: ``history`` (``history.check_history`` over the sandbox's whole write journal,
every write traced with its event: violation counts ``reordered``, ``lost``,
``unexpected_dead_letter``, ``unknown_event``, ``untraced``, all 0, and examples; no dead
letter is expected here), ``lost`` (its ``lost``: latest acknowledged events not reflected),
``events_sent``/``acknowledged`` (202s), ``fates`` of the acknowledged events against Redis
(applied / superseded / dead_lettered / lost), ``wrongly_applied`` (numbers whose final
sandbox state differs from the oracle), ``extra_applications`` (records added or expired more
often than events asked), ``pending_after`` (must be 0), ``converge_s`` (events stopped ->
final run done), and the final run's summary. Exit 1 when any invariant is violated (listed
in ``violations``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.number_hash import states
from reliability.faults.history import LOST, check_history
from reliability.faults.oracle import (
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
    phantoms,
    statuses,
    wrongly_applied,
)
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import (
    JOURNAL_TARGET,
    NAMESPACE,
    Stack,
    dead_letters,
    state_values,
    text,
)
from reliability.faults.wire import Proxy, send_all, send_at_rate
from reliability.processes import HarnessError, wait_exit

KEYS = RedisKeys(NAMESPACE)
LEASE_TTL_S = 5  # the least DNC_SYNC_LEASE_TTL_S allows
# The lease timing rule (dnc/fence.py): TTL >= attempt bound (connect + pool + write + read
# timeouts) + fence margin + 1 s; here 2.5 + 0.5 + 1 = 4 s. A run that takes over a dead
# run's lease waits out the bound plus the margin (3 s) before it writes.
FAST_TIMEOUTS = {
    "cxone_connect_timeout_s": "0.5",
    "cxone_pool_timeout_s": "0.5",
    "cxone_write_timeout_s": "0.5",
    "cxone_read_timeout_s": "1",  # the sandbox answers in --latency-ms (250 ms)
    "sync_fence_margin_s": "0.5",
}
START_EARLY_MS = 1200  # a run is started this long before a dead run's lease expires: it
# needs 1.5-4 s before it asks for the lease (one that asks too early ends and is retried)
RUN_TIMEOUT_S = 900  # the final run's time budget is 600 s
TARGETS = ("claim", "mid_push", "after_push_before_ack", "random")
LONG = {
    "kills": 20,
    "numbers": 300,
    "rate": 20.0,
    "latency_ms": 250,
    "batch_size": 5,
    "claim_size": 20,
    "traffic_runs": 3,
    "traffic_run_s": 4.0,
    "seed": 6,
}
SHORT = LONG | {"kills": 3, "numbers": 40, "traffic_runs": 1, "traffic_run_s": 3.0}
EXPECTED_DEAD_REASONS: tuple[str, ...] = ()  # nothing here is refused for good


@dataclass
class World:
    """What the scenario works with and what it saw."""

    stack: Stack
    args: argparse.Namespace
    proxy: Proxy
    redis: aioredis.Redis
    rng: random.Random
    sent: list[Sent] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    traffic: list[dict[str, Any]] = field(default_factory=list)


# -- one kill ----------------------------------------------------------------------------------


async def lease(world: World) -> tuple[str | None, int]:
    """The lease holder's token (or ``None``) and its remaining TTL in ms."""
    holder = await world.redis.get(KEYS.sync_lease)
    ttl_ms = await world.redis.pttl(KEYS.sync_lease)
    return (text(holder) if holder else None), int(ttl_ms)


async def snapshot(world: World) -> tuple[set[str], set[str]]:
    """(pending numbers in Redis, active digits in the sandbox) now."""
    pending = {text(m) for m in await world.redis.zrange(KEYS.pending, 0, -1)}
    state = await asyncio.to_thread(world.stack.sandbox, "GET", "/_sandbox/state")
    return pending, active_numbers(state)


async def wait_for_lease(world: World, proc: subprocess.Popen[bytes], old: str | None) -> bool:
    """Wait until the run ``proc`` holds the lease (a holder other than ``old``); false when
    the run ended first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        holder, _ = await lease(world)
        if holder is not None and holder != old:
            return True
        await asyncio.sleep(0.02)
    raise HarnessError("a sync run did not take the lease within 60 s")


async def aim(world: World, target: str, first_call: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait for the moment ``target`` aims at (see the module docstring), or for the end of
    the run ``proc``."""
    proxy, rng = world.proxy, world.rng

    async def until(predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not await proxy.wait_for(predicate, 0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                return

    def writes(ended: bool) -> int:
        return proxy.count(first_call, lambda c: c.write and (c.ended_s > 0 or not ended))

    if target == "claim":
        await asyncio.sleep(rng.uniform(0, 0.2))
    elif target == "mid_push":
        k = rng.randint(1, 6)
        await until(lambda: writes(False) >= k)
        await asyncio.sleep(rng.uniform(0, 0.8 * world.args.latency_ms / 1000))
    elif target == "after_push_before_ack":
        k = rng.randint(1, 6)
        await until(lambda: writes(True) >= k)
        await asyncio.sleep(rng.uniform(0, 0.015))
    else:
        await asyncio.sleep(rng.uniform(0, 4.0))


def pushed_unacked(
    before: tuple[set[str], set[str]], after: tuple[set[str], set[str]], actions: dict[str, str]
) -> int:
    """Numbers pending before and after the killed run whose sandbox state this run changed
    to their latest state (``actions``: E.164 -> latest action): pushed, not acknowledged."""
    (pending_0, active_0), (pending_1, active_1) = before, after
    count = 0
    for e164 in pending_0 & pending_1:
        digits = group_digits(e164)
        want_active = actions.get(e164) == OPT_OUT
        if (digits in active_1) == want_active and (digits in active_0) != want_active:
            count += 1
    return count


async def one_kill(world: World, env: dict[str, str], target: str) -> dict[str, Any] | None:
    """Start a run, kill it where ``target`` aims, and judge where it landed; ``None`` when
    the run ended (or found the lease held) before its kill."""
    old, ttl_ms = await lease(world)
    while old is not None and ttl_ms > START_EARLY_MS:
        await asyncio.sleep(0.05)
        old, ttl_ms = await lease(world)
    before = await snapshot(world)
    first_call = len(world.proxy.calls)
    proc = world.stack.spawn_sync(env)
    spawned = time.monotonic()
    try:
        if not await wait_for_lease(world, proc, old):
            world.skipped["ended_before_taking_the_lease"] += 1
            return None
        leased = time.monotonic()
        await aim(world, target, first_call, proc)
        if proc.poll() is not None:
            world.skipped["ended_before_its_kill"] += 1
            return None
        in_flight = world.proxy.in_flight()
    finally:
        world.stack.reap(proc)
    killed = time.monotonic()
    await world.proxy.wait_for(lambda: world.proxy.in_flight(False) == 0, 30)
    after = await snapshot(world)
    common = sorted(before[0] & after[0])
    latest: list[Any] = []
    if common:  # each number's state: its bucket, else the legacy flat hash (dnc.number_hash)
        async with world.redis.pipeline(transaction=False) as pipe:
            read_states = states(KEYS).queue_get(pipe, common)
            latest = read_states(iter(await pipe.execute()))
    actions = {
        # "<ms>:<action>[:<exp>][ <rest of the state>]" (dnc.state)
        n: (w or b"").decode().partition(" ")[0].partition(":")[2].partition(":")[0]
        for n, w in zip(common, latest, strict=True)
    }
    writes = world.proxy.count(first_call, lambda c: c.write)
    unacked = pushed_unacked(before, after, actions)
    return {
        "target": target,
        "phase": phase(in_flight, unacked, writes),
        "after_lease_s": round(killed - leased, 3),
        "after_start_s": round(killed - spawned, 3),
        "writes_in_run": writes,
        "writes_in_flight": in_flight,
        "pushed_unacked": unacked,
        "left_pending_set": len(before[0] - after[0]),
    }


def phase(in_flight: int, unacked: int, writes: int) -> str:
    """Where a kill landed: a write in flight (``mid_push``), else numbers pushed and not
    acknowledged (``after_push_before_ack``), else no write yet (``claim``: token, claim),
    else ``between_batches`` (after an acknowledgement, before the next write)."""
    if in_flight:
        return "mid_push"
    if unacked:
        return "after_push_before_ack"
    return "claim" if writes == 0 else "between_batches"


# -- the scenario ------------------------------------------------------------------------------


async def scenario(world: World) -> dict[str, Any]:
    stack, args = world.stack, world.args
    proxy_url = f"http://127.0.0.1:{world.proxy.port}"
    env = stack.flow_env(
        cxone_issuer_url=proxy_url,
        cxone_batch_size=str(args.batch_size),
        cxone_max_concurrency="1",
        cxone_rate_limit_rps="0",
        cxone_backoff_base_s="0.1",
        cxone_backoff_cap_s="1",
        sync_claim_size=str(args.claim_size),
        sync_lease_ttl_s=str(LEASE_TTL_S),
        sync_time_budget_s="60",
        sync_push_retry_delay_s="0",
        **FAST_TIMEOUTS,
    )
    stop = asyncio.Event()
    factory = EventFactory(numbers(args.numbers), random.Random(args.seed), prefix="kill")
    port = stack.ports["receiver"]
    world.sent += [factory.make() for _ in range(args.numbers)]  # a backlog to start with
    await send_all(port, stack.bearer, world.sent, 4)
    sender = asyncio.create_task(
        send_at_rate(port, stack.bearer, factory, args.rate, stop, world.sent)
    )
    plan = (list(TARGETS[:3]) + list(TARGETS) * args.kills)[: args.kills]
    world.rng.shuffle(plan)
    started = time.monotonic()
    traffic_env = env | {"DNC_SYNC_TIME_BUDGET_S": str(args.traffic_run_s)}
    try:
        for target in plan:
            for _ in range(5):
                kill = await one_kill(world, env, target)
                if kill is not None:
                    world.kills.append(kill)
                    break
        for _ in range(args.traffic_runs):
            world.traffic.append(await complete_run(world, traffic_env))
    finally:
        stop.set()
        await sender
    stopped = time.monotonic()
    final = await final_run(world, env)
    return report(world, final, stopped - started, time.monotonic() - stopped)


async def complete_run(world: World, env: dict[str, str]) -> dict[str, Any]:
    """One run left to finish, started as the dead run's lease runs out (a run that comes too
    early, finds the lease still held and ends is started again: ``attempts``)."""
    attempts = 0
    while attempts < 5:
        attempts += 1
        old, ttl_ms = await lease(world)
        while old is not None and ttl_ms > START_EARLY_MS:
            await asyncio.sleep(0.05)
            old, ttl_ms = await lease(world)
        proc = world.stack.spawn_sync(env)
        try:
            held = await wait_for_lease(world, proc, old)
            await wait_exit(proc, RUN_TIMEOUT_S, "a sync run")
        finally:
            world.stack.reap(proc)
        if held or proc.returncode:
            break
    return {"exit_code": proc.returncode, "attempts": attempts}


async def final_run(world: World, env: dict[str, str]) -> dict[str, Any]:
    """The clean run: no latency, 4 batches at a time; with its summary artifact."""
    world.stack.faults(latency_ms=0)
    since = time.time()
    final_env = env | {"DNC_CXONE_MAX_CONCURRENCY": "4", "DNC_SYNC_TIME_BUDGET_S": "600"}
    result = await complete_run(world, final_env)
    summaries = await asyncio.to_thread(world.stack.summaries, since)
    return result | {"summary": summaries[-1] if summaries else None}


def report(world: World, final: dict[str, Any], load_s: float, converge_s: float) -> dict[str, Any]:
    """Judge the write history, and compare Redis and the sandbox with the oracle; the
    figures and any violations."""
    r = world.stack.redis()
    try:
        watermarks = state_values(r, KEYS)
        dead = dead_letters(r, KEYS)
        pending = int(r.zcard(KEYS.pending))
    finally:
        r.close()
    state = world.stack.sandbox("GET", "/_sandbox/state")
    journal = fetch_journal(world.stack.sandbox, JOURNAL_TARGET)
    history = check_history(journal, world.sent, dead, EXPECTED_DEAD_REASONS)
    expected = expected_state(world.sent)
    wrong = wrongly_applied(expected, active_numbers(state))
    fates = account(world.sent, watermarks, dead)
    extra = extra_applications(world.sent, state)
    invented = phantoms(world.sent, watermarks)
    acknowledged = sum(1 for e in world.sent if e.acknowledged)
    phases = Counter(k["phase"] for k in world.kills)
    unanswered = len(world.sent) - acknowledged
    checks = {
        **dict.fromkeys(history.failures(), True),
        f"{fates['lost']} acknowledged event(s) lost in Redis": fates["lost"] > 0,
        f"{len(wrong)} number(s) wrongly applied: {wrong[:5]}": bool(wrong),
        f"{pending} number(s) still pending after the final run": pending > 0,
        f"{unanswered} event(s) not answered 202": unanswered > 0,
        f"final run exited {final['exit_code']}": final["exit_code"] != 0,
        "a run under traffic failed": any(run["exit_code"] for run in world.traffic),
        f"extra applications: {dict(list(extra.items())[:5])}": bool(extra),
        f"watermarks that no event set: {invented[:5]}": bool(invented),
        f"only {len(world.kills)} of {world.args.kills} kills landed": len(world.kills)
        < world.args.kills,
    }
    violations = [text for text, bad in checks.items() if bad]
    return {
        "suite": "flow_kill",
        "fault": f"sync run SIGKILLed {len(world.kills)} times in a row (claim, mid-push, "
        "after push before ack, random) while events arrive; then one clean run",
        "times": len(world.kills),
        "events_sent": len(world.sent),
        "acknowledged": acknowledged,
        "lost": history.violations[LOST],
        "wrongly_applied": len(wrong),
        "converge_s": round(converge_s, 2),
        "history": history.as_json(),
        "phases": dict(sorted(phases.items())),
        "targets": dict(sorted(Counter(k["target"] for k in world.kills).items())),
        "skipped": dict(world.skipped),
        "fates": dict(sorted(fates.items())),
        "statuses": statuses(world.sent),
        "outcomes": dict(sorted(Counter(str(e.outcome) for e in world.sent).items())),
        "numbers": len(expected),
        "opt_outs_expected": sum(1 for e in expected.values() if e.action == OPT_OUT),
        "dead_letters": len(dead),
        "extra_applications": sum(extra.values()),
        "pending_after": pending,
        "load_s": round(load_s, 1),
        "traffic_runs": world.traffic,
        "final_run": final,
        "sandbox_requests": state["requests"],
        "kills": world.kills,
        "config": {k: v for k, v in vars(world.args).items() if k != "prefect_api_url"},
        "violations": violations,
    }


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_all({"latency_ms": args.latency_ms}, seed=str(args.seed))
    return asyncio.run(_run(stack, args))


async def _run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    proxy = Proxy(stack.ports["sandbox"])
    await proxy.start()
    client = aioredis.Redis.from_url(stack.redis_url)
    world = World(stack, args, proxy, client, random.Random(args.seed))
    try:
        return await scenario(world)
    finally:
        await client.aclose()
        await proxy.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, help="runs killed (long 20, short 3)")
    parser.add_argument("--numbers", type=int, help="distinct numbers (long 300, short 40)")
    parser.add_argument("--rate", type=float, help="events posted per second (20)")
    parser.add_argument("--latency-ms", type=int, help="sandbox latency per API call (250)")
    parser.add_argument("--batch-size", type=int, help="numbers per API call (5)")
    parser.add_argument("--claim-size", type=int, help="numbers claimed per loop (20)")
    parser.add_argument("--traffic-runs", type=int, help="runs left to end, with events (3; 1)")
    parser.add_argument("--traffic-run-s", type=float, help="their time budget (4; short 3)")
    parser.add_argument("--seed", type=int, help="random seed (6)")
    return sized_args(parser, LONG, SHORT, argv)


main = fault_main("dnc-chaos-flow-kill-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
