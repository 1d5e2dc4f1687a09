"""Throughput benchmark of the sync flow (``sync_dnc``) against the local CXone sandbox.

Usage, from the repository root::

    .venv/bin/python -m bench.sync [--pending 100000] [--rate-limit-rps 20] [--batch-size 100]
        [--latency-ms 50] [--time-budget-s 600] [--seed 20240601] [--no-profile]

What it does:

1. Starts a throwaway ``redis-server`` on a free 127.0.0.1 port (no RDB snapshots, no AOF) in a
   temporary directory, and the sandbox (``python -m dnc_sync sandbox``) on another free
   loopback port; waits for PING and ``GET /healthz``, then sets the sandbox faults
   ``{"rate_limit_rps": R, "latency_ms": L, "retry_after_mode": "seconds"}``.
2. Loads ``--pending`` distinct numbers (``+1202`` + 7 digits) straight into Redis with
   ``EventStore.record_many`` (the receiver's own Lua script), about 80% opt-outs and 20%
   opt-ins, event times within the last 10 minutes, in chunks (bounded memory here).
   ``redis.bytes_per_pending`` is the growth of Redis ``used_memory`` over the load divided by
   the numbers loaded: it covers everything one event leaves behind (pending ZSET member,
   state field in its bucket HASH, audit stream entry, idempotency key with its TTL);
   ``redis.by_key`` gives ``MEMORY USAGE`` of the big keys (``state_buckets``: the 10,000
   state buckets and the legacy flat state hash together, ``dnc.number_hash``).
3. Points the flow at the sandbox through ``DNC_*`` variables (batch size B, client pacing at
   the sandbox's R, 8 requests in flight, claim size ``max(1000, 10 * B)``), with
   ``PREFECT_HOME`` in the temporary directory (Prefect's ephemeral API) and Prefect logs at
   WARNING on stderr, then runs ONE flow run ``asyncio.run(sync_dnc())`` that drains the
   queue, then two more runs on the empty queue.
4. Prints one JSON object to stdout and stops the sandbox and Redis (also on Ctrl-C/failure).

The numbers:

* ``ceiling_per_s``: R x B, the most a tenant limited to R requests/s lets through.
* ``contacts_per_s``: numbers that left the pending set (acknowledged or dead-lettered) /
  ``wall_time_s``, the flow's own wall time (from its counters: from the first line of the
  flow body to the end of its clean-up, so without Prefect's start-up). ``ratio`` is
  ``contacts_per_s / ceiling_per_s``. ``outer`` holds the same figures over the whole
  ``asyncio.run(sync_dnc())`` call, which in the first run also pays the start of Prefect's
  ephemeral API server.
* ``api_calls_per_contact``: the flow's ``api_calls`` (HTTP requests its transport sent) /
  numbers that left the queue; ideal is 1 / B. ``sandbox.requests`` counts what the sandbox
  saw per endpoint and status (429s show pacing that does not match the tenant limit).
* ``empty_run_s``: outer wall time of the second and third runs (nothing pending); the second
  may still pay one-off costs (the discovery cache is warm from the first run).
* ``cpu_s``: CPU seconds used during the draining run and during the two empty runs, by this
  process (all threads: the flow, Prefect's event and log threads), Prefect's ephemeral API
  server (a subprocess; its start-up falls in the draining run), the sandbox and Redis. A
  flow process near 1 CPU second per wall second is CPU-bound (the GIL): pacing is then not
  what limits it.
* ``peak_rss_mb``: ``ru_maxrss`` of this process (it ran the loader and the flows) after the
  load and at the end.
* ``sandbox.active_records``: active records in DNC group 1001 after the drain; must equal
  ``loaded.opt_outs`` (opt-ins of numbers never opted out are "does not exist": already
  applied).
* ``profile`` (off with ``--no-profile``): where the draining run spent its time, measured by
  wrapping a few functions in this process: ``loops`` (claim, push, ack rounds), per loop the
  mean claim time (``PendingQueue.claim``), push phase (all batches of a loop, concurrently,
  Prefect tasks included), and HTTP time; the rest is Prefect's per-task overhead and the
  progress artifact.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import random
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.number_hash import states
from dnc.store import EventStore, StoreLimits
from reliability import procfs
from reliability.processes import HOST, HarnessError, run_main
from reliability.services import SANDBOX_CREDENTIALS, Services, stop_ephemeral_prefect

NAMESPACE = "benchsync"
GROUP_ID = "1001"
LOAD_CHUNK = 10_000
OPT_IN_SHARE = 0.2


@dataclass
class FlowServices(Services):
    """``Services`` of a run whose flow runs in this process (Prefect's ephemeral API server,
    its home in ``tmp``: stopped first)."""

    def stop_all(self) -> None:
        stop_ephemeral_prefect()
        super().stop_all()


def start_redis(services: Services) -> redis.Redis:
    """Start this run's Redis; a client of it (bytes, 30 s socket timeout)."""
    services.start_redis()
    return services.redis(decode_responses=False, socket_timeout=30)


# -- loading the pending set -------------------------------------------------------------------


def make_events(start: int, count: int, rng: random.Random, now_ms: int) -> list[StoredEvent]:
    """Events for numbers ``start`` .. ``start + count - 1``: distinct +1 202 numbers, ~20%
    opt-ins, event times within the last 10 minutes."""
    events = []
    for index in range(start, start + count):
        e164 = f"+1202{index:07d}"
        action = Action.OPT_IN if rng.random() < OPT_IN_SHARE else Action.OPT_OUT
        event_ms = now_ms - rng.randrange(1_000, 600_000)
        events.append(
            StoredEvent(
                eventId=derive_event_id(f"{e164}|{action.value}|{event_ms}"),
                eventIdDerived=True,
                e164=e164,
                action=action,
                eventMs=event_ms,
                receivedMs=now_ms,
            )
        )
    return events


async def load_pending(url: str, total: int, seed: int) -> dict[str, int]:
    """Record ``total`` events through ``EventStore.record_many``; counts by action/status."""
    client = aioredis.Redis.from_url(url, socket_timeout=30)
    store = EventStore(client, RedisKeys(NAMESPACE), StoreLimits())
    rng = random.Random(seed)
    counts: dict[str, int] = defaultdict(int)
    now_ms = int(time.time() * 1000)
    try:
        for start in range(0, total, LOAD_CHUNK):
            events = make_events(start, min(LOAD_CHUNK, total - start), rng, now_ms)
            statuses = await store.record_many(events)
            for event, status in zip(events, statuses, strict=True):
                counts[event.action.value] += 1
                counts[status.value] += 1
    finally:
        await store.close()
    return dict(counts)


def load(services: Services, client: redis.Redis, args: argparse.Namespace) -> dict[str, Any]:
    """Load the pending set and measure what it costs Redis."""
    before = int(client.info("memory")["used_memory"])
    started = time.monotonic()
    counts = asyncio.run(load_pending(services.redis_url, args.pending, args.seed))
    seconds = time.monotonic() - started
    after = int(client.info("memory")["used_memory"])
    if counts.get("queued") != args.pending:
        raise HarnessError(f"not every event was queued: {counts}")
    return {
        "loaded": {
            "numbers": args.pending,
            "opt_outs": counts.get(Action.OPT_OUT.value, 0),
            "opt_ins": counts.get(Action.OPT_IN.value, 0),
            "load_s": round(seconds, 2),
            "events_per_s": round(args.pending / seconds, 1),
        },
        "redis": {
            "used_memory_before": before,
            "used_memory_after_load": after,
            "bytes_per_pending": round((after - before) / args.pending, 1),
            "by_key": key_sizes(client),
        },
    }


def key_sizes(client: redis.Redis) -> dict[str, int]:
    """``MEMORY USAGE`` (bytes, all elements sampled) of the big keys of the namespace; the
    states' (``state_buckets``) summed over every bucket and the legacy flat hash."""
    keys = RedisKeys(NAMESPACE)
    names = {
        "pending_zset": keys.pending,
        "latest_hash": keys.latest,
        "audit_stream": keys.audit,
    }
    sizes = {name: int(client.memory_usage(key, samples=0) or 0) for name, key in names.items()}
    hashed = states(keys)
    pipe = client.pipeline(transaction=False)
    for key in [*hashed.bucket_keys(), hashed.legacy]:
        pipe.memory_usage(key, samples=0)
    sizes["state_buckets"] = sum(int(size or 0) for size in pipe.execute())
    return sizes


# -- the flow runs -----------------------------------------------------------------------------


def flow_env(services: Services, args: argparse.Namespace) -> None:
    """Point the flow (``DNC_*``) and Prefect (``PREFECT_*``) at this run's services."""
    for name in [k for k in os.environ if k.startswith("DNC_")]:
        del os.environ[name]
    prefect_home = services.tmp / "prefect"
    prefect_home.mkdir()
    os.environ.update(
        {
            "DNC_REDIS_URL": services.redis_url,
            "DNC_REDIS_NAMESPACE": NAMESPACE,
            "DNC_CXONE_ADAPTER": "dnc-groups",
            "DNC_CXONE_ISSUER_URL": f"http://{HOST}:{services.ports['sandbox']}",
            "DNC_CXONE_DNC_GROUP_ID": GROUP_ID,
            **SANDBOX_CREDENTIALS,
            "DNC_CXONE_BATCH_SIZE": str(args.batch_size),
            "DNC_CXONE_RATE_LIMIT_RPS": str(args.rate_limit_rps),
            "DNC_CXONE_MAX_CONCURRENCY": "8",
            "DNC_SYNC_TIME_BUDGET_S": str(args.time_budget_s),
            "DNC_SYNC_CLAIM_SIZE": str(max(10_000, 100 * args.batch_size)),
            # every opt-in is sent (a DELETE), as a tenant whose records are all this
            # service's would see: with the default, opt-ins of numbers never written are
            # settled without a request and contacts/s would flatter the ceiling
            "DNC_SYNC_REMOVE_FOREIGN_RECORDS": "true",
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # loopback only: no telemetry
        }
    )


def run_flow() -> tuple[dict[str, Any], float]:
    """One ``asyncio.run(sync_dnc())``: the flow's counters and the outer wall time, s."""
    from flows.sync import sync_dnc  # after flow_env: Prefect reads PREFECT_HOME on import

    started = time.monotonic()
    try:
        counters = asyncio.run(sync_dnc())
    except Exception as exc:
        raise HarnessError(f"flow run failed: {type(exc).__name__}: {exc}") from exc
    return counters, time.monotonic() - started


@dataclass
class Profile:
    """Time spent in wrapped functions during the draining run: seconds and calls per name."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    undo: list[Callable[[], None]] = field(default_factory=list)

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        setattr(owner, attribute, timed)
        self.undo.append(lambda: setattr(owner, attribute, original))

    def restore(self) -> None:
        for undo in reversed(self.undo):
            undo()
        self.undo.clear()


def start_profile() -> Profile:
    """Wrap the claim, the push phase of a loop, the HTTP send and the ack."""
    import flows.sync as sync_module
    from dnc.cxone.transport import CxoneTransport
    from dnc.pending import PendingQueue

    profile = Profile()
    profile.wrap(sync_module, "push_all", "push_phase")
    profile.wrap(PendingQueue, "claim", "claim_redis")
    profile.wrap(PendingQueue, "acknowledge", "ack_redis")
    profile.wrap(CxoneTransport, "_send", "http_send")
    return profile


def profile_summary(profile: Profile, flow_wall_s: float) -> dict[str, Any]:
    loops = profile.calls.get("push_phase", 0)
    per_loop = {
        f"{name}_ms": round(1000 * seconds / loops, 1) if loops else None
        for name, seconds in profile.seconds.items()
    }
    return {
        "loops": loops,
        "loop_ms": round(1000 * flow_wall_s / loops, 1) if loops else None,
        "per_loop": per_loop,
        "calls": dict(profile.calls),
        "http_send_mean_ms": round(
            1000 * profile.seconds["http_send"] / max(1, profile.calls["http_send"]), 1
        ),
    }


def drain(args: argparse.Namespace, services: Services) -> dict[str, Any]:
    """The draining run (profiled unless ``--no-profile``) and two runs on the empty queue,
    with the CPU time each process used in them."""
    import flows.sync  # noqa: F401 - Prefect's import happens here, outside the measurement

    profile = None if args.no_profile else start_profile()
    before = cpu_seconds(services)
    try:
        counters, outer_s = run_flow()
    finally:
        if profile is not None:
            profile.restore()
    after_drain = cpu_seconds(services)
    empty = [round(run_flow()[1], 3) for _ in range(2)]
    cpu = {
        "draining_run": cpu_delta(before, after_drain),
        "empty_runs": cpu_delta(after_drain, cpu_seconds(services)),
    }
    result: dict[str, Any] = {
        "counters": counters,
        "outer_s": outer_s,
        "empty_run_s": empty,
        "cpu_s": cpu,
    }
    if profile is not None:
        result["profile"] = profile_summary(profile, float(counters["wall_time_s"]))
    return result


CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None) -> float:
    """utime + stime of ``pid`` in seconds (0 if it is gone or ``None``)."""
    return 0.0 if pid is None else procfs.cpu_ticks(pid) / CLK_TCK


def prefect_server_pid() -> int | None:
    """The pid of Prefect's ephemeral API server, once this process has started it."""
    module = sys.modules.get("prefect.server.api.server")
    for server in list(module.SubprocessASGIServer._instances.values()) if module else []:
        if server.server_process is not None:
            return int(server.server_process.pid)
    return None


def cpu_seconds(services: Services) -> dict[str, float]:
    """CPU seconds used so far by this process (all threads), Prefect's ephemeral server
    (0 before it starts), the sandbox and Redis."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "this_process": usage.ru_utime + usage.ru_stime,
        "prefect_server": process_cpu_s(prefect_server_pid()),
        "sandbox": process_cpu_s(services.procs["sandbox"].pid),
        "redis": process_cpu_s(services.procs["redis"].pid),
    }


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 2) for name in after}


# -- the report --------------------------------------------------------------------------------


def summarise(
    args: argparse.Namespace, loaded: dict[str, Any], runs: dict[str, Any], sandbox: dict[str, Any]
) -> dict[str, Any]:
    counters = runs["counters"]
    left = loaded["loaded"]["numbers"] - int(counters["remaining_backlog"])
    acknowledged = left - int(counters["dead_lettered"])
    ceiling = args.rate_limit_rps * args.batch_size
    wall = float(counters["wall_time_s"])
    per_s = left / wall if wall else 0.0
    outer_per_s = left / runs["outer_s"]
    rss_after_load = loaded.pop("rss_after_load_mb")
    return {
        "config": _config(args),
        "contacts_per_s": round(per_s, 1),
        "ceiling_per_s": ceiling,
        "ratio": round(per_s / ceiling, 3),
        "wall_time_s": wall,
        "outer": {
            "wall_time_s": round(runs["outer_s"], 3),
            "contacts_per_s": round(outer_per_s, 1),
            "ratio": round(outer_per_s / ceiling, 3),
        },
        "acknowledged": acknowledged,
        "api_calls_per_contact": round(int(counters["api_calls"]) / max(1, left), 5),
        "ideal_api_calls_per_contact": round(1 / args.batch_size, 5),
        "remaining_backlog": counters["remaining_backlog"],
        "counters": counters,
        "empty_run_s": runs["empty_run_s"],
        **loaded,
        "peak_rss_mb": {
            "after_load": rss_after_load,
            "end": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        "cpu_s": runs["cpu_s"],
        "sandbox": sandbox,
        **({"profile": runs["profile"]} if "profile" in runs else {}),
    }


def sandbox_summary(services: Services, opt_outs: int) -> dict[str, Any]:
    state = services.sandbox("GET", "/_sandbox/state")
    group = state["dncGroups"][GROUP_ID]
    active = len(group["active"])
    return {
        "active_records": active,
        "expired_records": len(group["expired"]),
        "active_equals_opt_outs": active == opt_outs,
        "requests": state["requests"],
        "tokens": state["tokens"],
    }


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "pending": args.pending,
        "rate_limit_rps": args.rate_limit_rps,
        "batch_size": args.batch_size,
        "latency_ms": args.latency_ms,
        "time_budget_s": args.time_budget_s,
        "claim_size": max(10_000, 100 * args.batch_size),
        "max_concurrency": 8,
        "seed": args.seed,
        "profiled": not args.no_profile,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def run_bench(args: argparse.Namespace, services: Services) -> dict[str, Any]:
    """Start everything, load, drain, and put the figures together."""
    client = start_redis(services)
    services.start_sandbox()
    faults = {
        "rate_limit_rps": args.rate_limit_rps,
        "latency_ms": args.latency_ms,
        "retry_after_mode": "seconds",
    }
    services.sandbox("POST", "/_sandbox/faults", faults)
    loaded = load(services, client, args)
    loaded["rss_after_load_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    flow_env(services, args)
    runs = drain(args, services)
    loaded["redis"]["used_memory_after_drain"] = int(client.info("memory")["used_memory"])
    sandbox = sandbox_summary(services, loaded["loaded"]["opt_outs"])
    client.close()
    return summarise(args, loaded, runs, sandbox)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the sync flow against the sandbox.")
    parser.add_argument("--pending", type=int, default=100_000, help="numbers to load")
    parser.add_argument("--rate-limit-rps", type=float, default=20.0, help="tenant limit")
    parser.add_argument("--batch-size", type=int, default=100, help="numbers per API call")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per call")
    parser.add_argument("--time-budget-s", type=float, default=600.0, help="flow time budget")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the load")
    parser.add_argument("--no-profile", action="store_true", help="do not wrap functions")
    args = parser.parse_args(argv)
    if not 1 <= args.pending <= 9_999_999 or not 1 <= args.batch_size <= 1000:
        parser.error("need 1 <= --pending <= 9999999 and 1 <= --batch-size <= 1000")
    if args.rate_limit_rps < 1 or args.latency_ms < 0 or not 0 < args.time_budget_s <= 3600:
        parser.error("need --rate-limit-rps >= 1, --latency-ms >= 0, 0 < --time-budget-s <= 3600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main("dnc-bench-sync-", FlowServices, lambda services: run_bench(args, services))


if __name__ == "__main__":
    sys.exit(main())
