"""Throughput and latency benchmark of the event receiver (``dnc-sync serve``) on this machine.

Usage, from the repository root::

    .venv/bin/python -m bench.receiver [--workers 2] [--duration-s 20] [--connections 64]
        [--warmup-s 3] [--log-level INFO] [--aof] [--pool 250000] [--seed 20240601]

What it does:

1. Starts a throwaway ``redis-server`` on a free 127.0.0.1 port (no RDB snapshots, no AOF; with
   ``--aof``: ``appendonly yes`` + ``appendfsync always``) in a temporary directory, and the
   receiver (``python -m dnc_sync serve``, ``--workers`` uvicorn workers) on another free port
   with a generated bearer secret; waits until ``GET /readyz`` answers 200.
2. A separate load-generator process (multiprocessing, spawn; uvloop when installed) pre-builds
   ``--pool`` complete HTTP/1.1 requests before the clock starts: phone numbers in mixed human
   forms (``(202) 555-0123``, ``+1 202-555-0123``, ``tel:+1-...``, ``+44 20 7946 0123``,
   full-width digits, extensions ``x12`` / ``ext. 7`` / ``;ext=``), ~20% optIn / 80% optOut,
   event times as ISO 8601 ``Z`` strings or epoch ms (up to 7 days old, never in the future),
   ~30% with an ``eventId``, ~25% with ``metadata``, ~10% exact repeats of an earlier body
   (duplicates) and ~2% invalid numbers (expected 422). It then keeps ``--connections``
   keep-alive connections busy, one request in flight on each, with hand-written requests and
   a minimal response reader (status line, headers, Content-Length body).
3. Only requests that complete in the measured window (after ``--warmup-s``, for
   ``--duration-s``) count. At the end it prints one JSON object to stdout and stops
   everything (load generator, then receiver, then Redis), also on Ctrl-C or failure.

The numbers:

* ``events_per_s``: requests completed in the window / window length (all statuses).
* ``latency_ms``: client-side time from writing a request to reading its whole response
  (p50/p90/p99/p99.9/max/mean over the window); it includes queueing in the receiver, so with
  a closed loop of N connections latency ~= N / throughput.
* ``errors``: responses in the window whose status is not the expected one (202 for valid
  events, 422 for the intentionally invalid numbers) plus transport errors (reset, EOF, ...);
  ``error_kinds`` splits them. ``status_counts`` is the status histogram and ``outcomes``
  the receiver's answer (``queued``/``superseded``/``duplicate`` from 202 bodies).
* ``receiver.rss_mb``: resident memory (VmRSS) summed over the uvicorn supervisor and all its
  descendants (workers, multiprocessing resource tracker), at the end and the peak of
  one-second samples; ``per_process`` lists each one with its CPU use in the window.
* ``cpu_pct``: CPU time in the window as % of ONE core, per role (receiver, redis, load
  generator) and the whole machine's busy share of all cores (``machine_busy_pct``): the load
  generator shares the machine, so on few cores it takes CPU from the receiver.
* ``redis``: commands/s in the window (``INFO`` total_commands_processed delta), memory, and
  the sizes of the receiver's keys at the end.
* ``pool_wrapped``: true when more requests were sent than were pre-built; the replayed ones
  are then all duplicates, so raise ``--pool``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

from reliability import procfs
from reliability.processes import HOST, Child, run_main
from reliability.services import Services as Servers

NAMESPACE = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NS = 1_000_000_000

# -- request pool (built in the load-generator process, before the clock starts) ---------------

US_AREAS = ("202", "212", "312", "415", "617", "713", "305", "206", "404", "503", "702", "718")
US_FORMS = (
    "({a}) 555-{n}",
    "+1 {a}-555-{n}",
    "tel:+1-{a}-555-{n}",
    "{a}.555.{n}",
    "1 {a} 555 {n}",
    "({a}) 555-{n} x{x}",
    "+1 {a} 555 {n} ext. {x}",
    "tel:+1-{a}-555-{n};ext={x}",
)
UK_FORMS = ("+44 20 7946 {n}", "tel:+44-20-7946-{n}", "+44 (0)20 7946 {n}", "020 7946 {n}")
INVALID_NUMBERS = (
    "73827",
    "555-01",
    "+1 202 555 01",
    "not a number",
    "+999 1234",
    "+1 202 555 01234567",
    "(000) 555-0100",
)
SKILLS = ("inbound-sales", "collections", "support", "retention")
FULL_WIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789+"})
WEEK_MS = 7 * 86_400_000


def _phone(rng: random.Random) -> tuple[str, str | None]:
    """A valid number in a human form, and the region hint to send with it (or None)."""
    region = None
    if rng.random() < 0.7:
        form = rng.choice(US_FORMS)
        raw = form.format(
            a=rng.choice(US_AREAS), n=f"01{rng.randrange(100):02d}", x=rng.randrange(1, 1000)
        )
    else:
        form = rng.choice(UK_FORMS)
        raw = form.format(n=f"0{rng.randrange(1000):03d}")
        region = "GB" if form.startswith("0") else None
    if rng.random() < 0.05:
        raw = raw.translate(FULL_WIDTH)
    return raw, region


def _timestamp(rng: random.Random, now_ms: int) -> int | str:
    """Epoch ms or ISO 8601 with ms and ``Z``, between 1 s and 7 days ago."""
    ms = now_ms - rng.randrange(1_000, WEEK_MS)
    if rng.random() < 0.5:
        return ms
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def make_event(rng: random.Random, now_ms: int, serial: int) -> tuple[dict[str, Any], int]:
    """One fresh event body and the status it should get (202, or 422 for a bad number)."""
    invalid = rng.random() < 0.02
    raw, region = (rng.choice(INVALID_NUMBERS), None) if invalid else _phone(rng)
    body: dict[str, Any] = {
        "phoneNumber": raw,
        "eventName": "optIn" if rng.random() < 0.2 else "optOut",
        "timestamp": _timestamp(rng, now_ms),
    }
    if region:
        body["region"] = region
    if rng.random() < 0.3:
        body["eventId"] = f"bench-{serial}-{rng.getrandbits(32):08x}"
    if rng.random() < 0.25:
        body["metadata"] = {"contactId": str(rng.randrange(10**9)), "skill": rng.choice(SKILLS)}
    return body, 422 if invalid else 202


def build_requests(pool: int, seed: int, port: int, bearer: str) -> tuple[list[bytes], list[int]]:
    """``pool`` complete HTTP/1.1 requests and their expected statuses; ~10% repeat an earlier
    request byte for byte (at least 100 positions back, so the original is answered first)."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\n"
        "User-Agent: dnc-bench\r\nContent-Length: "
    ).encode()
    requests: list[bytes] = []
    expected: list[int] = []
    for i in range(pool):
        if i > 200 and rng.random() < 0.10:
            j = rng.randrange(max(0, i - 5_000), i - 100)
            requests.append(requests[j])
            expected.append(expected[j])
            continue
        body, status = make_event(rng, now_ms, i)
        data = json.dumps(body, ensure_ascii=False).encode()
        requests.append(head + str(len(data)).encode() + b"\r\n\r\n" + data)
        expected.append(status)
    return requests, expected


# -- load generator --------------------------------------------------------------------------


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _outcome(status: int, body: bytes) -> str:
    if status != 202:
        return f"http_{status}"
    start = body.find(b'"status":"')
    if start < 0:
        return "unknown"
    start += 10
    return body[start : body.find(b'"', start)].decode("ascii", "replace")


def _percentiles(latencies_ns: list[int]) -> dict[str, float]:
    if not latencies_ns:
        return {}
    ordered = sorted(latencies_ns)
    n = len(ordered)

    def pick(q: float) -> float:
        return round(ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] / 1e6, 3)

    return {
        "p50": pick(0.50),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "p99_9": pick(0.999),
        "max": round(ordered[-1] / 1e6, 3),
        "mean": round(sum(ordered) / n / 1e6, 3),
    }


@dataclass
class Tally:
    """What the connections saw; only completions inside [warm_ns, end_ns] count."""

    warm_ns: int
    end_ns: int
    latencies: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    errors_outside_window: int = 0
    next_index: int = 0
    completed_total: int = 0
    stuck_connections: int = 0

    def record(self, start_ns: int, done_ns: int, status: int, expected: int, body: bytes) -> None:
        self.completed_total += 1
        if not self.warm_ns <= done_ns <= self.end_ns:
            if status != expected:
                self.errors_outside_window += 1
            return
        self.latencies.append(done_ns - start_ns)
        _bump(self.statuses, str(status))
        _bump(self.outcomes, _outcome(status, body))
        if status != expected:
            _bump(self.errors, f"status_{status}_expected_{expected}")

    def error(self, kind: str) -> None:
        now = time.monotonic_ns()
        if self.warm_ns <= now <= self.end_ns:
            _bump(self.errors, kind)
        else:
            self.errors_outside_window += 1

    def summary(self, pool: int) -> dict[str, Any]:
        window_s = (self.end_ns - self.warm_ns) / NS
        completed = len(self.latencies)
        return {
            "completed": completed,
            "events_per_s": round(completed / window_s, 1),
            "latency_ms": _percentiles(self.latencies),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "errors_outside_window": self.errors_outside_window,
            "status_counts": dict(sorted(self.statuses.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "requests_sent_total": self.next_index,
            "completed_total": self.completed_total,
            "pool_wrapped": self.next_index > pool,
            "stuck_connections": self.stuck_connections,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        raise ValueError("response without content-length")
    length = int(head[at + 17 : head.index(b"\r\n", at + 2)])
    return status, (await reader.readexactly(length) if length else b"")


async def _drive(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    requests: list[bytes],
    expected: list[int],
    tally: Tally,
) -> None:
    pool = len(requests)
    while (start := time.monotonic_ns()) < tally.end_ns:
        index = tally.next_index % pool
        tally.next_index += 1
        writer.write(requests[index])
        status, body = await _read_response(reader)
        tally.record(start, time.monotonic_ns(), status, expected[index], body)


async def _connection(port: int, requests: list[bytes], expected: list[int], tally: Tally) -> None:
    """One keep-alive connection, one request in flight; reconnects after a transport error."""
    while time.monotonic_ns() < tally.end_ns:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as exc:
            tally.error(f"connect:{type(exc).__name__}")
            await asyncio.sleep(0.05)
            continue
        try:
            await _drive(reader, writer, requests, expected, tally)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            tally.error(f"transport:{type(exc).__name__}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def run_load(
    port: int, connections: int, requests: list[bytes], expected: list[int], tally: Tally
) -> None:
    """Run ``connections`` connections until ``tally.end_ns``; give stragglers 10 s more."""
    tasks = [
        asyncio.create_task(_connection(port, requests, expected, tally))
        for _ in range(connections)
    ]
    timeout = max(0.0, (tally.end_ns - time.monotonic_ns()) / NS) + 10
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    tally.stuck_connections = len(pending)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    try:
        import uvloop
    except ImportError:
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def loadgen_main(conn: Connection, options: dict[str, Any]) -> None:
    """Entry point of the load-generator process: build, report ready, wait for the plan, run,
    send the summary."""
    built = time.perf_counter()
    requests, expected = build_requests(
        options["pool"], options["seed"], options["port"], options["bearer"]
    )
    loop_name, factory = _loop_factory()
    conn.send({"pool": len(requests), "build_s": round(time.perf_counter() - built, 2)})
    plan = conn.recv()
    if plan is None:
        return
    tally = Tally(plan["warm_ns"], plan["end_ns"])
    time.sleep(max(0.0, (plan["start_ns"] - time.monotonic_ns()) / NS))
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run_load(options["port"], options["connections"], requests, expected, tally))
    conn.send(tally.summary(len(requests)) | {"client_loop": loop_name})


# -- /proc readings (reliability.procfs) ------------------------------------------------------


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "supervisor"
    with contextlib.suppress(OSError):
        if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return "resource_tracker"
    return "worker"


# -- the services --------------------------------------------------------------------------


@dataclass
class Services(Servers):
    """Everything this run started, the load generator included, so that all of it can be
    stopped (the load generator first)."""

    loadgen: Child | None = None

    def stop_all(self) -> None:
        if self.loadgen is not None:
            self.loadgen.stop()
        super().stop_all()


def start(
    services: Services,
    args: argparse.Namespace,
    loadgen: Callable[[Connection, dict[str, Any]], None],
    options: dict[str, Any],
) -> tuple[redis.Redis, dict[str, Any]]:
    """Redis (``--aof``), the load generator ``loadgen`` (building its requests meanwhile:
    ``options`` plus the receiver's ``port`` and ``bearer``) and the receiver (``--workers``,
    ``--log-level``); a client of Redis and what the load generator built, once all are
    ready."""
    bearer = secrets.token_urlsafe(32)
    services.start_redis(aof=args.aof)
    options = options | {"port": services.port("receiver"), "bearer": bearer}
    services.loadgen = Child.start(loadgen, options, "dnc-bench-loadgen")
    settings = {
        "DNC_REDIS_NAMESPACE": NAMESPACE,
        "DNC_RECEIVER_BEARER_SECRETS": bearer,
        "DNC_RECEIVER_LOG_LEVEL": args.log_level,
    }
    services.start_receiver(settings, workers=args.workers)
    ready = services.loadgen.receive(600, "its ready message")
    return services.redis(socket_timeout=5), ready


def drive(
    services: Services, args: argparse.Namespace, client: redis.Redis, results_timeout_s: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send the load generator its plan (``--warmup-s``, then ``--duration-s`` measured),
    observe the window; what was seen and the load generator's results."""
    assert services.loadgen is not None  # noqa: S101
    start_ns = time.monotonic_ns() + NS // 5
    plan = {
        "start_ns": start_ns,
        "warm_ns": start_ns + int(args.warmup_s * NS),
        "end_ns": start_ns + int((args.warmup_s + args.duration_s) * NS),
    }
    services.loadgen.conn.send(plan)
    seen = observe(services, client, plan)
    return seen, services.loadgen.receive(results_timeout_s, "its results")


# -- the measured window -----------------------------------------------------------------------


def _sleep_until(deadline_ns: int) -> None:
    time.sleep(max(0.0, (deadline_ns - time.monotonic_ns()) / NS))


def snapshot(services: Services, client: redis.Redis) -> dict[str, Any]:
    """CPU ticks of every process involved, machine ticks and Redis INFO, now."""
    assert services.loadgen is not None  # noqa: S101
    tree = procfs.process_tree(services.procs["receiver"].pid)
    return {
        "ns": time.monotonic_ns(),
        "receiver": {pid: procfs.cpu_ticks(pid) for pid in tree},
        "redis": procfs.cpu_ticks(services.procs["redis"].pid),
        "loadgen": procfs.cpu_ticks(services.loadgen.process.pid or 0),
        "machine": procfs.machine_ticks(),
        "info": client.info(),
    }


def observe(services: Services, client: redis.Redis, plan: dict[str, int]) -> dict[str, Any]:
    """Snapshots at the start and end of the window, and the peak receiver RSS in between."""
    root = services.procs["receiver"].pid
    _sleep_until(plan["warm_ns"])
    before = snapshot(services, client)
    peak = 0.0
    while time.monotonic_ns() < plan["end_ns"]:
        peak = max(peak, sum(procfs.rss_mb(p) for p in procfs.process_tree(root)))
        time.sleep(min(1.0, max(0.0, (plan["end_ns"] - time.monotonic_ns()) / NS)))
    after = snapshot(services, client)
    rss = {pid: procfs.rss_mb(pid) for pid in after["receiver"]}
    return {"before": before, "after": after, "rss": rss, "peak": max(peak, sum(rss.values()))}


def _pct(ticks: int, seconds: float) -> float:
    return round(ticks / CLK_TCK / seconds * 100, 1)


def summarise_observation(seen: dict[str, Any], root: int) -> dict[str, Any]:
    before, after = seen["before"], seen["after"]
    seconds = (after["ns"] - before["ns"]) / NS
    per_process = [
        {
            "pid": pid,
            "role": _role(pid, root),
            "rss_mb": round(seen["rss"][pid], 1),
            "cpu_pct": _pct(ticks - before["receiver"].get(pid, 0), seconds),
        }
        for pid, ticks in after["receiver"].items()
    ]
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    commands = (
        after["info"]["total_commands_processed"] - before["info"]["total_commands_processed"]
    )
    return {
        "receiver": {
            "rss_mb": {
                "end_total": round(sum(seen["rss"].values()), 1),
                "peak_total": round(seen["peak"], 1),
            },
            "processes": len(per_process),
            "per_process": per_process,
        },
        "cpu_pct": {
            "receiver": round(sum(p["cpu_pct"] for p in per_process), 1),
            "redis": _pct(after["redis"] - before["redis"], seconds),
            "loadgen": _pct(after["loadgen"] - before["loadgen"], seconds),
            "machine_busy_pct": round(100 * busy / total, 1) if total else None,
        },
        "redis": {
            "commands_per_s": round(commands / seconds, 1),
            "used_memory_mb": round(after["info"]["used_memory"] / 2**20, 1),
            "version": after["info"]["redis_version"],
        },
    }


def redis_state(client: redis.Redis) -> dict[str, int]:
    """Sizes of the receiver's keys after the run."""
    tag = "{" + NAMESPACE + "}"
    return {
        "latest_numbers": int(client.hlen(f"{tag}:latest")),
        "pending": int(client.zcard(f"{tag}:pending")),
        "audit_len": int(client.xlen(f"{tag}:audit")),
        "rejected_len": int(client.xlen(f"{tag}:rejected")),
        "keys": int(client.dbsize()),
    }


def _log_stats(path: Path) -> dict[str, int]:
    data = path.read_bytes() if path.exists() else b""
    return {"bytes": len(data), "lines": data.count(b"\n")}


def run_bench(args: argparse.Namespace, services: Services) -> dict[str, Any]:
    """Start everything, run the load, and put the figures together."""
    options = {"pool": args.pool, "seed": args.seed, "connections": args.connections}
    client, ready = start(services, args, loadgen_main, options)
    seen, load = drive(services, args, client, 60)
    root = services.procs["receiver"].pid
    return {
        "config": _config(args, ready, load.pop("client_loop")),
        **load,
        **summarise_observation(seen, root),
        "redis_state": redis_state(client),
        "receiver_log": _log_stats(services.tmp / "receiver.log"),
    }


def _config(args: argparse.Namespace, ready: dict[str, Any], client_loop: str) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration_s,
        "warmup_s": args.warmup_s,
        "log_level": args.log_level,
        "redis_aof_fsync_always": args.aof,
        "pool": ready["pool"],
        "pool_build_s": ready["build_s"],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "client_loop": client_loop,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the DNC event receiver.")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--duration-s", type=float, default=20.0, help="measured window")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured lead-in")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument("--aof", action="store_true", help="redis appendonly + fsync always")
    parser.add_argument("--pool", type=int, default=250_000, help="pre-built requests")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the pool")
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.warmup_s < 0 or args.connections < 1 or args.pool < 1000:
        parser.error("need --duration-s > 0, --warmup-s >= 0, --connections >= 1, --pool >= 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main("dnc-bench-", Services, lambda services: run_bench(args, services))


if __name__ == "__main__":
    sys.exit(main())
