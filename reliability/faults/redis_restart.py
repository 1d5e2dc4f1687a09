"""Chaos: Redis restarted under the receiver's load, by SIGKILL and by a clean SHUTDOWN: every
event that got a 202 must be in Redis afterwards (AOF ``appendfsync always``), and requests
during the outage must get 503 with ``Retry-After``, never a 500 and never a 202.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.redis_restart [--clients 32] [--cycles 3] [--outage-s 3]
        [--steady-s 5] [--numbers 10000] [--workers 2] [--seed 7] [--short]

What it does:

1. Starts ``redis-server`` with ``appendonly yes`` + ``appendfsync always`` in a data folder
   of its own and the receiver (``--workers`` uvicorn workers) on free loopback ports.
2. ``--clients`` connections post events as fast as the receiver answers (closed loop), each
   a new event (``oracle.EventFactory``, explicit ``eventId``); an event answered 503 is sent
   again after 50 ms, as CXone would (sooner than its ``Retry-After``, to probe the outage).
3. After ``--steady-s`` of load, ``--cycles`` times: SIGKILL Redis, keep it down
   ``--outage-s``, start it again on the same data and port, ``--steady-s`` of load; then the
   same with ``SHUTDOWN`` instead of SIGKILL.
4. Stops the load and checks Redis against what the receiver acknowledged: each 202'd event's
   idempotency key holds its fingerprint; each number's watermark is at least its latest
   202'd event (``lost`` otherwise) and is some event that was sent (``phantoms``
   otherwise); the latest-event hash agrees with the watermark.

The figures: ``events_sent`` (distinct events), ``acknowledged`` (got a 202, after retries),
``requests`` by status, ``retry_after_missing`` (503s without the header), ``acked_while_down``
(202s to requests sent after Redis died and answered before its successor started: must be
0), ``stored_despite_503`` (an event answered 503 whose retry was a ``duplicate``: Redis had
kept it; harmless), and per restart ``down_s`` (Redis stopped -> answering PING again),
``unavailable_s`` (first 503 -> first 202 after it, as clients saw it), its 503s and how
long they took to answer (``answer_503_ms``). ``lost``: acknowledged events whose idempotency
key or watermark Redis no longer has; ``wrongly_applied``: ``phantoms`` plus
``acked_while_down``; ``converge_s``: the longest ``unavailable_s``. Exit 1 when any
invariant is violated. A SIGKILL of the process keeps what reached the kernel, so it does not
tell ``appendfsync always`` from ``everysec`` (only a power loss or kernel crash would).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

from dnc.keys import RedisKeys
from reliability.faults.oracle import EventFactory, Sent, account, ids_missing, numbers, phantoms
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import NAMESPACE, Stack, state_values, text
from reliability.faults.wire import Client, post
from reliability.processes import kill_group

KEYS = RedisKeys(NAMESPACE)
RETRY_DELAY_S = 0.05
LONG = {
    "clients": 32,
    "cycles": 3,
    "outage_s": 3.0,
    "steady_s": 5.0,
    "numbers": 10_000,
    "workers": 2,
    "seed": 7,
}
SHORT = LONG | {"clients": 16, "cycles": 1, "outage_s": 1.0, "steady_s": 2.0, "numbers": 2000}


@dataclass
class Restart:
    """One restart: ``mode`` (sigkill / shutdown) and its moments, ``time.monotonic()`` s:
    Redis told to stop, gone, its successor spawned, answering PING."""

    mode: str
    stopping_s: float
    gone_s: float = 0.0
    spawned_s: float = 0.0
    up_s: float = 0.0


@dataclass
class Load:
    """What the clients sent and saw."""

    factory: EventFactory
    sent: list[Sent] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0
    stored_despite_503: int = 0
    answers: list[tuple[float, float, int]] = field(default_factory=list)  # sent, answered, status


async def client_loop(stack: Stack, load: Load, stop: asyncio.Event) -> None:
    """Post new events until ``stop``; resend each one answered 503 until it gets a 202."""
    client = Client(stack.ports["receiver"], stack.bearer)
    try:
        while not stop.is_set():
            event = load.factory.make()
            load.sent.append(event)
            await deliver(client, event, load, stop)
    finally:
        await client.close()


async def deliver(client: Client, event: Sent, load: Load, stop: asyncio.Event) -> None:
    """Send ``event`` until it gets an answer other than 503 (or ``stop`` is set)."""
    refused = False
    while True:
        answer = await post(client, event)
        status = "transport_error" if answer is None else str(answer.status)
        load.requests[status] += 1
        load.answers.append((event.sent_at_s, event.answered_at_s, event.status or 0))
        if answer is not None and answer.status == 503:
            refused = True
            load.retry_after_missing += int("retry-after" not in answer.headers)
        elif answer is not None:
            load.stored_despite_503 += int(refused and event.outcome == "duplicate")
            return
        if stop.is_set():
            return
        await asyncio.sleep(RETRY_DELAY_S)


async def restart(stack: Stack, mode: str, outage_s: float) -> Restart:
    """Stop Redis (SIGKILL, or ``SHUTDOWN``), keep it down ``outage_s``, start it again."""
    proc = stack.procs.pop("redis")
    moment = Restart(mode, time.monotonic())
    if mode == "sigkill":
        await asyncio.to_thread(kill_group, proc)
    else:
        client = stack.redis(retry=Retry(NoBackoff(), 0))  # redis-py would retry for ~4 s
        try:
            await asyncio.to_thread(client.shutdown)
        finally:
            client.close()
    await asyncio.to_thread(proc.wait, 30)
    moment.gone_s = time.monotonic()
    await asyncio.sleep(outage_s)
    moment.spawned_s = time.monotonic()
    await asyncio.to_thread(stack.start_redis, aof=True)
    moment.up_s = time.monotonic()
    return moment


async def scenario(stack: Stack, args: argparse.Namespace) -> tuple[Load, list[Restart], float]:
    factory = EventFactory(numbers(args.numbers), random.Random(args.seed), prefix="rr")
    load = Load(factory)
    stop = asyncio.Event()
    clients = [asyncio.create_task(client_loop(stack, load, stop)) for _ in range(args.clients)]
    restarts = []
    started = time.monotonic()
    try:
        await asyncio.sleep(args.steady_s)
        for _ in range(args.cycles):
            for mode in ("sigkill", "shutdown"):
                restarts.append(await restart(stack, mode, args.outage_s))
                await asyncio.sleep(args.steady_s)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    return load, restarts, time.monotonic() - started


def check_redis(stack: Stack, sent: list[Sent]) -> dict[str, Any]:
    """Every 202'd event against Redis (idempotency keys, watermarks, latest events)."""
    acked = [e for e in sent if e.acknowledged]
    r, raw = stack.redis(), stack.redis(decode_responses=False)
    try:
        missing_ids = ids_missing(raw, KEYS.tag, acked)
        watermarks = state_values(r, KEYS)
        latest = {text(k): text(v) for k, v in r.hgetall(KEYS.latest).items()}
    finally:
        r.close()
        raw.close()
    fates = account(sent, watermarks, {})
    # a legacy state's event JSON must match its watermark; a compact state is one value
    disagree = sum(
        1
        for n, w in watermarks.items()
        if n in latest and _latest_mark(latest[n]) != w.partition(" ")[0]
    )
    return {
        "ids_missing": missing_ids,
        "events_behind": fates["lost"],
        "fates": dict(sorted(fates.items())),
        "phantoms": len(phantoms(sent, watermarks)),
        "latest_disagrees": disagree,
        "numbers": len(watermarks),
    }


def _latest_mark(raw: str | None) -> str | None:
    if raw is None:
        return None
    event = json.loads(raw)
    return f"{event['eventMs']}:{event['action']}"


def outage_figures(restarts: list[Restart], load: Load) -> tuple[list[dict[str, Any]], int]:
    """Per restart: how long it was down and what clients saw; and the 202s answered while
    no Redis ran (sent after it was gone, answered before its successor was spawned)."""
    figures, acked_while_down = [], 0
    ends = [m.stopping_s for m in restarts[1:]] + [float("inf")]
    for moment, end_s in zip(restarts, ends, strict=True):
        window = [a for a in load.answers if moment.stopping_s <= a[0] < end_s]
        refusals = [a for a in window if a[2] == 503]
        first_503 = min((a[1] for a in refusals), default=None)
        after = [a[1] for a in window if a[2] == 202 and first_503 and a[1] > first_503]
        acked_while_down += sum(
            1
            for sent_s, answered_s, status in load.answers
            if status == 202 and sent_s > moment.gone_s and answered_s < moment.spawned_s
        )
        waits_ms = sorted(1000 * (a[1] - a[0]) for a in refusals)
        figures.append(
            {
                "mode": moment.mode,
                "answer_503_ms": {
                    "p50": round(waits_ms[len(waits_ms) // 2], 1) if waits_ms else None,
                    "max": round(waits_ms[-1], 1) if waits_ms else None,
                },
                "down_s": round(moment.up_s - moment.stopping_s, 3),
                "stopping_s": round(moment.gone_s - moment.stopping_s, 3),
                "starting_s": round(moment.up_s - moment.spawned_s, 3),
                "unavailable_s": round(min(after) - first_503, 3) if first_503 and after else None,
                "refused_503": len(refusals),
            }
        )
    return figures, acked_while_down


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_redis(aof=True)
    stack.start_receiver(workers=args.workers)
    load, restarts, load_s = asyncio.run(scenario(stack, args))
    redis_check = check_redis(stack, load.sent)
    figures, acked_while_down = outage_figures(restarts, load)
    acknowledged = sum(1 for e in load.sent if e.acknowledged)
    unexpected = {s: n for s, n in load.requests.items() if s not in ("202", "503")}
    lost = max(redis_check["ids_missing"], redis_check["events_behind"])
    never_202 = sum(1 for e in load.sent if not e.acknowledged and e.status not in (None, 503))
    checks = {
        f"{lost} acknowledged event(s) missing from Redis": lost > 0,
        f"answers other than 202/503: {unexpected}": bool(unexpected),
        f"{load.retry_after_missing} 503(s) without Retry-After": load.retry_after_missing > 0,
        f"{acked_while_down} 202(s) while Redis was down": acked_while_down > 0,
        f"{redis_check['phantoms']} watermark(s) no event set": redis_check["phantoms"] > 0,
        f"{redis_check['latest_disagrees']} latest event(s) off": redis_check["latest_disagrees"],
        f"{never_202} event(s) refused for good": never_202 > 0,
        "no request got a 503: the outages were not seen": load.requests["503"] == 0,
    }
    unavailable = [f["unavailable_s"] for f in figures if f["unavailable_s"] is not None]
    return {
        "suite": "redis_restart",
        "fault": f"Redis restarted {len(restarts)} times under load ({args.cycles} SIGKILL, "
        f"{args.cycles} SHUTDOWN), AOF appendfsync always, down {args.outage_s} s each",
        "times": len(restarts),
        "events_sent": len(load.sent),
        "acknowledged": acknowledged,
        "lost": lost,
        "wrongly_applied": redis_check["phantoms"] + acked_while_down,
        "converge_s": max(unavailable, default=0.0),
        "requests": dict(sorted(load.requests.items())),
        "retry_after_missing": load.retry_after_missing,
        "acked_while_down": acked_while_down,
        "stored_despite_503": load.stored_despite_503,
        "restarts": figures,
        "redis": redis_check,
        "load_s": round(load_s, 1),
        "events_per_s": round(sum(load.requests.values()) / load_s, 1),
        "config": {k: v for k, v in vars(args).items() if k != "prefect_api_url"},
        "violations": [text for text, bad in checks.items() if bad],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, help="concurrent connections (32; short 16)")
    parser.add_argument("--cycles", type=int, help="SIGKILL + SHUTDOWN restarts (3; short 1)")
    parser.add_argument("--outage-s", type=float, help="how long Redis stays down (3; short 1)")
    parser.add_argument("--steady-s", type=float, help="load between restarts (5; short 2)")
    parser.add_argument("--numbers", type=int, help="distinct numbers (10000; short 2000)")
    parser.add_argument("--workers", type=int, help="receiver workers (2)")
    parser.add_argument("--seed", type=int, help="random seed (7)")
    return sized_args(parser, LONG, SHORT, argv)


main = fault_main("dnc-chaos-redis-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
