"""Throughput and latency benchmark of the event receiver (``dnc-sync serve``) on this machine.

Usage, from the repository root::

    .venv/bin/python bench/receiver.py [--workers 2] [--duration-s 20] [--connections 64]
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
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis
from harness import BenchError, free_ports, run_main, stop_popen

REPO = Path(__file__).resolve().parent.parent

HOST = "127.0.0.1"
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates shutdown
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


# -- /proc readings ----------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    with contextlib.suppress(OSError):
        for path in task_dir.glob("*/children"):
            found.extend(int(c) for c in path.read_text().split())
        if found or any(task_dir.glob("*/children")):
            return found
    # No CONFIG_PROC_CHILDREN: scan every process's parent id.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(_children(pid))
    return tree


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (0 if it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (0 if it is gone)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return 0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "supervisor"
    with contextlib.suppress(OSError):
        if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return "resource_tracker"
    return "worker"


# -- the services --------------------------------------------------------------------------


@dataclass
class Services:
    """Everything this run started, so that it can all be stopped."""

    tmp: Path
    redis_proc: subprocess.Popen[bytes] | None = None
    receiver: subprocess.Popen[bytes] | None = None
    loadgen: Any = None  # multiprocessing.Process (spawn context)
    conn: Connection | None = None


def start_redis(services: Services, port: int, aof: bool) -> redis.Redis:
    persistence = ["yes", "--appendfsync", "always"] if aof else ["no"]
    command = [
        "redis-server", "--port", str(port), "--bind", HOST, "--save", "",
        "--dir", str(services.tmp), "--daemonize", "no", "--loglevel", "warning",
        "--appendonly", *persistence,
    ]  # fmt: skip
    with (services.tmp / "redis.log").open("wb") as log:
        services.redis_proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    client = redis.Redis(host=HOST, port=port, socket_timeout=5, decode_responses=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if services.redis_proc.poll() is not None:
            raise BenchError(f"redis-server exited with {services.redis_proc.returncode}")
        with contextlib.suppress(redis.ConnectionError):
            client.ping()
            return client
        time.sleep(0.05)
    raise BenchError("redis-server did not answer PING within 10 s")


def start_receiver(
    services: Services, args: argparse.Namespace, ports: list[int], bearer: str
) -> None:
    port, redis_port = ports
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= {
        "DNC_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "DNC_REDIS_NAMESPACE": NAMESPACE,
        "DNC_RECEIVER_BEARER_SECRETS": bearer,
        "DNC_RECEIVER_LOG_LEVEL": args.log_level,
    }
    if args.workers > 1:
        metrics_dir = services.tmp / "metrics"
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    command = [
        sys.executable, "-m", "dnc_sync", "serve",
        "--host", HOST, "--port", str(port), "--workers", str(args.workers),
    ]  # fmt: skip
    with (services.tmp / "receiver.log").open("wb") as log:
        services.receiver = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _ready_status(port: int) -> int | None:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_ready(services: Services, port: int, timeout_s: float = 60) -> None:
    """Wait until the receiver answers ``GET /readyz`` with 200."""
    assert services.receiver is not None  # noqa: S101
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if services.receiver.poll() is not None:
            raise BenchError(f"receiver exited with {services.receiver.returncode}")
        if _ready_status(port) == 200:
            return
        time.sleep(0.1)
    raise BenchError(f"receiver not ready within {timeout_s} s")


def start_loadgen(services: Services, args: argparse.Namespace, port: int, bearer: str) -> None:
    context = mp.get_context("spawn")
    parent_end, child_end = context.Pipe()
    options = {
        "port": port,
        "bearer": bearer,
        "pool": args.pool,
        "seed": args.seed,
        "connections": args.connections,
    }
    services.loadgen = context.Process(
        target=loadgen_main, args=(child_end, options), name="dnc-bench-loadgen", daemon=True
    )
    services.loadgen.start()
    child_end.close()
    services.conn = parent_end


def receive(services: Services, timeout_s: float, what: str) -> dict[str, Any]:
    """The next message from the load generator, or ``BenchError``."""
    assert services.conn is not None  # noqa: S101
    try:
        if services.conn.poll(timeout_s):
            message: dict[str, Any] = services.conn.recv()
            return message
    except (EOFError, OSError):
        raise BenchError(f"load generator exited before sending {what}") from None
    raise BenchError(f"load generator sent no {what} within {timeout_s} s")


def stop_all(services: Services) -> None:
    """Load generator, then receiver (graceful, SIGTERM), then Redis; wait on each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if services.loadgen is not None and services.loadgen.is_alive():
        if services.conn is not None:
            with contextlib.suppress(OSError, ValueError):
                services.conn.send(None)
        services.loadgen.join(3)
        if services.loadgen.is_alive():
            services.loadgen.terminate()
            services.loadgen.join(5)
    if services.conn is not None:
        services.conn.close()
    stop_popen(services.receiver, 20)
    stop_popen(services.redis_proc, 10)


# -- the measured window -----------------------------------------------------------------------


def _sleep_until(deadline_ns: int) -> None:
    time.sleep(max(0.0, (deadline_ns - time.monotonic_ns()) / NS))


def snapshot(services: Services, client: redis.Redis) -> dict[str, Any]:
    """CPU ticks of every process involved, machine ticks and Redis INFO, now."""
    assert services.receiver is not None and services.redis_proc is not None  # noqa: S101
    tree = process_tree(services.receiver.pid)
    return {
        "ns": time.monotonic_ns(),
        "receiver": {pid: cpu_ticks(pid) for pid in tree},
        "redis": cpu_ticks(services.redis_proc.pid),
        "loadgen": cpu_ticks(services.loadgen.pid),
        "machine": machine_ticks(),
        "info": client.info(),
    }


def observe(services: Services, client: redis.Redis, plan: dict[str, int]) -> dict[str, Any]:
    """Snapshots at the start and end of the window, and the peak receiver RSS in between."""
    assert services.receiver is not None  # noqa: S101
    _sleep_until(plan["warm_ns"])
    before = snapshot(services, client)
    peak = 0.0
    while time.monotonic_ns() < plan["end_ns"]:
        peak = max(peak, sum(rss_mb(p) for p in process_tree(services.receiver.pid)))
        time.sleep(min(1.0, max(0.0, (plan["end_ns"] - time.monotonic_ns()) / NS)))
    after = snapshot(services, client)
    rss = {pid: rss_mb(pid) for pid in after["receiver"]}
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
        "latest_numbers": int(client.hlen(f"{tag}:latest")),  # type: ignore[arg-type]
        "pending": int(client.zcard(f"{tag}:pending")),  # type: ignore[arg-type]
        "audit_len": int(client.xlen(f"{tag}:audit")),  # type: ignore[arg-type]
        "rejected_len": int(client.xlen(f"{tag}:rejected")),  # type: ignore[arg-type]
        "keys": int(client.dbsize()),  # type: ignore[arg-type]
    }


def _log_stats(path: Path) -> dict[str, int]:
    data = path.read_bytes() if path.exists() else b""
    return {"bytes": len(data), "lines": data.count(b"\n")}


def run_bench(args: argparse.Namespace, services: Services) -> dict[str, Any]:
    """Start everything, run the load, and put the figures together."""
    bearer = secrets.token_urlsafe(32)
    port, redis_port = free_ports(2)
    client = start_redis(services, redis_port, args.aof)
    start_receiver(services, args, [port, redis_port], bearer)
    start_loadgen(services, args, port, bearer)
    wait_ready(services, port)
    ready = receive(services, 300, "its ready message")
    start_ns = time.monotonic_ns() + NS // 5
    plan = {
        "start_ns": start_ns,
        "warm_ns": start_ns + int(args.warmup_s * NS),
        "end_ns": start_ns + int((args.warmup_s + args.duration_s) * NS),
    }
    services.conn.send(plan)  # type: ignore[union-attr]
    seen = observe(services, client, plan)
    load = receive(services, 60, "its results")
    assert services.receiver is not None  # noqa: S101
    return {
        "config": _config(args, ready, load.pop("client_loop")),
        **load,
        **summarise_observation(seen, services.receiver.pid),
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
    return run_main(
        "dnc-bench-",
        Services,
        lambda services: run_bench(args, services),
        stop_all,
        ("receiver.log", "redis.log"),
    )


if __name__ == "__main__":
    sys.exit(main())
