"""Throughput benchmark of batch intake (``POST /v1/events:batch``) on this machine.

Usage, from the repository root::

    .venv/bin/python -m bench.batch [--workers 2] [--duration-s 15] [--warmup-s 3]
        [--connections 8] [--batch 1000] [--batches 1200] [--format json|ndjson]
        [--log-level INFO] [--seed 20240601]

What it does:

1. Starts a throwaway ``redis-server`` and the receiver (``python -m dnc_sync serve
   --workers N``) as ``bench/receiver.py`` does (its helpers are reused), with a generated
   bearer secret, and waits for ``GET /readyz``.
2. A separate load-generator process (spawn; uvloop when installed) pre-builds ``--batches``
   complete HTTP/1.1 requests of ``--batch`` events each before the clock starts: distinct US
   numbers (no number appears twice in the pool) in mixed national forms (``(202) 555-0123``,
   ``202-555-0123``, ``202.555.0123``, ``2025550123``, ``1 202 555 0123``, ``+1 202-555-0123``,
   ``+1 (202) 555-0123``), 80 % opt-outs, times as epoch ms or ISO 8601 ``Z`` up to 7 days
   old, ~30 % with an ``eventId``, ~25 % with ``metadata``. It then keeps ``--connections``
   keep-alive connections busy, one batch in flight on each.
3. Only batches completed in the measured window count. Prints one JSON object:
   ``events_per_s`` (events in completed batches / window), ``batches_per_s``,
   ``latency_ms`` per batch (client-side, write to whole response), ``status_counts`` (HTTP),
   ``event_statuses`` (per-event results in the answers), CPU per role and Redis figures.
   ``pool_wrapped`` is true when more batches were sent than built (the replayed ones are
   duplicates: raise ``--batches``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench import receiver as rb
from reliability.processes import run_main

HOST = "127.0.0.1"
NS = 1_000_000_000
WEEK_MS = 7 * 86_400_000
AREAS = (
    "202", "212", "312", "415", "617", "713", "305", "206", "404", "503", "702", "718",
    "303", "512", "602", "614", "704", "801", "816", "919",
)  # fmt: skip
FORMS = (
    "({a}) {x}-{n}",
    "{a}-{x}-{n}",
    "{a}.{x}.{n}",
    "{a}{x}{n}",
    "1 {a} {x} {n}",
    "+1 {a}-{x}-{n}",
    "+1 ({a}) {x}-{n}",
)
SKILLS = ("inbound-sales", "collections", "support", "retention")
STATUSES = ("queued", "duplicate", "superseded", "rejected")


def _numbers() -> Iterator[tuple[str, str, str]]:
    """Distinct (area, exchange, line) triples (exchanges 200-999 without N11), in an order
    that spreads them over areas and exchanges and never repeats one."""
    exchanges = [x for x in range(200, 1000) if x % 100 != 11]
    serial = 0
    stride = 7_919  # prime: walks every line of an exchange once, in a scrambled order
    while True:
        area = AREAS[serial % len(AREAS)]
        rest = serial // len(AREAS)
        exchange = exchanges[rest % len(exchanges)]
        line = rest // len(exchanges) * stride % 10_000
        yield area, f"{exchange:03d}", f"{line:04d}"
        serial += 1


def make_event(
    rng: random.Random, now_ms: int, number: tuple[str, str, str], serial: int
) -> dict[str, Any]:
    """One event for ``number`` in a random national form."""
    area, exchange, line = number
    ms = now_ms - rng.randrange(1_000, WEEK_MS)
    stamp: int | str = ms
    if rng.random() < 0.5:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
    body: dict[str, Any] = {
        "phoneNumber": rng.choice(FORMS).format(a=area, x=exchange, n=line),
        "eventName": "optOut" if rng.random() < 0.8 else "optIn",
        "timestamp": stamp,
    }
    if rng.random() < 0.3:
        body["eventId"] = f"bench-{serial}-{rng.getrandbits(32):08x}"
    if rng.random() < 0.25:
        body["metadata"] = {"contactId": str(rng.randrange(10**9)), "skill": rng.choice(SKILLS)}
    return body


def build_requests(options: dict[str, Any]) -> list[bytes]:
    """``batches`` complete HTTP/1.1 requests of ``batch`` distinct events each."""
    rng = random.Random(options["seed"])
    now_ms = int(time.time() * 1000)
    numbers = _numbers()
    ndjson = options["format"] == "ndjson"
    kind = "application/x-ndjson" if ndjson else "application/json"
    head = (
        f"POST /v1/events:batch HTTP/1.1\r\nHost: {HOST}:{options['port']}\r\n"
        f"Authorization: Bearer {options['bearer']}\r\nContent-Type: {kind}\r\n"
        "User-Agent: dnc-bench-batch\r\nContent-Length: "
    ).encode()
    requests: list[bytes] = []
    serial = 0
    for _ in range(options["batches"]):
        events = []
        for _ in range(options["batch"]):
            events.append(make_event(rng, now_ms, next(numbers), serial))
            serial += 1
        if ndjson:
            data = "\n".join(json.dumps(e) for e in events).encode() + b"\n"
        else:
            data = json.dumps(events).encode()
        requests.append(head + str(len(data)).encode() + b"\r\n\r\n" + data)
    return requests


@dataclass
class Tally:
    """What the connections saw; only batches completed inside [warm_ns, end_ns] count."""

    warm_ns: int
    end_ns: int
    batch: int
    latencies: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    errors: dict[str, int] = field(default_factory=dict)
    next_index: int = 0

    def record(self, start_ns: int, done_ns: int, status: int, body: bytes) -> None:
        if not self.warm_ns <= done_ns <= self.end_ns:
            return
        self.latencies.append(done_ns - start_ns)
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        for name in STATUSES:
            self.events[name] += body.count(b'"status":"' + name.encode() + b'"')

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self, pool: int) -> dict[str, Any]:
        window_s = (self.end_ns - self.warm_ns) / NS
        batches = len(self.latencies)
        return {
            "events_per_s": round(sum(self.events.values()) / window_s, 1),
            "batches_per_s": round(batches / window_s, 2),
            "batches_completed": batches,
            "latency_ms": rb._percentiles(self.latencies),
            "status_counts": dict(sorted(self.statuses.items())),
            "event_statuses": self.events,
            "errors": self.errors,
            "batches_sent_total": self.next_index,
            "pool_wrapped": self.next_index > pool,
        }


async def _drive(port: int, requests: list[bytes], tally: Tally) -> None:
    """One keep-alive connection, one batch in flight; reconnects after a transport error."""
    while time.monotonic_ns() < tally.end_ns:
        try:
            reader, writer = await asyncio.open_connection(HOST, port, limit=2**22)
        except OSError as exc:
            tally.error(f"connect:{type(exc).__name__}")
            await asyncio.sleep(0.05)
            continue
        try:
            while (start := time.monotonic_ns()) < tally.end_ns:
                index = tally.next_index % len(requests)
                tally.next_index += 1
                writer.write(requests[index])
                status, body = await rb._read_response(reader)
                tally.record(start, time.monotonic_ns(), status, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            tally.error(f"transport:{type(exc).__name__}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def run_load(port: int, connections: int, requests: list[bytes], tally: Tally) -> None:
    """Run ``connections`` connections until ``tally.end_ns`` (stragglers get 30 s more)."""
    tasks = [asyncio.create_task(_drive(port, requests, tally)) for _ in range(connections)]
    timeout = max(0.0, (tally.end_ns - time.monotonic_ns()) / NS) + 30
    _, stuck = await asyncio.wait(tasks, timeout=timeout)
    for task in stuck:
        task.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)


def loadgen_main(conn: Connection, options: dict[str, Any]) -> None:
    """The load-generator process: build, report ready, wait for the plan, run, report."""
    built = time.perf_counter()
    requests = build_requests(options)
    loop_name, factory = rb._loop_factory()
    megabytes = sum(len(r) for r in requests) / 2**20
    conn.send({"pool": len(requests), "build_s": round(time.perf_counter() - built, 2),
               "pool_mb": round(megabytes, 1)})  # fmt: skip
    plan = conn.recv()
    if plan is None:
        return
    tally = Tally(plan["warm_ns"], plan["end_ns"], options["batch"])
    time.sleep(max(0.0, (plan["start_ns"] - time.monotonic_ns()) / NS))
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run_load(options["port"], options["connections"], requests, tally))
    conn.send(tally.summary(len(requests)) | {"client_loop": loop_name})


def run_bench(args: argparse.Namespace, services: rb.Services) -> dict[str, Any]:
    """Start everything, run the load, and put the figures together."""
    options = {
        "batches": args.batches,
        "batch": args.batch,
        "format": args.format,
        "seed": args.seed,
        "connections": args.connections,
    }
    client, ready = rb.start(services, args, loadgen_main, options)
    seen, load = rb.drive(services, args, client, 120)
    observed = rb.summarise_observation(seen, services.procs["receiver"].pid)
    return {
        "config": {
            "workers": args.workers,
            "connections": args.connections,
            "batch_events": args.batch,
            "format": args.format,
            "duration_s": args.duration_s,
            "warmup_s": args.warmup_s,
            "log_level": args.log_level,
            "pool_batches": ready["pool"],
            "pool_mb": ready["pool_mb"],
            "pool_build_s": ready["build_s"],
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "client_loop": load.pop("client_loop"),
        },
        **load,
        "cpu_pct": observed["cpu_pct"],
        "receiver_rss_mb": observed["receiver"]["rss_mb"],
        "redis": observed["redis"],
        "redis_state": rb.redis_state(client),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark POST /v1/events:batch.")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--duration-s", type=float, default=15.0, help="measured window")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured lead-in")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--batches", type=int, default=1200, help="pre-built requests")
    parser.add_argument("--format", choices=["json", "ndjson"], default="json")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the pool")
    args = parser.parse_args(argv)
    args.aof = False  # read by bench/receiver.py's start: no AOF here
    if args.duration_s <= 0 or args.connections < 1 or args.batch < 1 or args.batches < 1:
        parser.error("need --duration-s > 0 and positive --connections, --batch, --batches")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main("dnc-bench-batch-", rb.Services, lambda services: run_bench(args, services))


if __name__ == "__main__":
    sys.exit(main())
