"""Chaos: a sync run loses its lease in the middle of slow DELETEs, and a second run takes
over. The first run's opt-in DELETEs land late (CXone applies them after the client gave up)
and its lease renewals fail; opt-outs for the same numbers arrive and the second run pushes
them. No late DELETE of the first run may land after the second run's opt-out: the history
of CXone writes must never move a number back, and the first run must end Failed
(``LeaseLost``), never Completed.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.lease_takeover [--rounds 3] [--numbers 40]
        [--batch-size 5] [--delete-latency-ms 4000] [--seed 11] [--short]
        [--prefect-api-url URL]

What it does, ``--rounds`` times (new numbers each round):

1. Starts Redis, the sandbox, the receiver and a Prefect server on free loopback ports (once),
   a recording proxy in front of the sandbox's API (``wire.Proxy``) for run A, and a proxy
   in front of Redis for run A (``LeaseLink``). The sandbox applies every DNC-group DELETE
   ``--delete-latency-ms`` after it arrived (``delete_latency_ms``), whether or not the
   client still waits.
2. Posts an opt-in for each of ``--numbers`` numbers and starts run A (``dnc-sync sync run``,
   lease TTL 5 s, CXone attempts of at most 2.5 s: ``TIMEOUTS``), which claims them and sends
   their DELETEs, ``--batch-size`` numbers each, 4 at a time. Each DELETE outlasts the
   client's read timeout, so A retries.
3. Once A has sent its first DELETE (round 1; later rounds wait for more DELETEs, so the cut
   falls on a retry), cuts A's lease calls: from then on, ``LeaseLink`` drops A's connection
   to Redis on every command that names the lease key (a renewal, a claim, a release), as a
   network failure would. A's other Redis calls go through, so A can still count its backlog
   and say how it ended. A's renewals fail and its lease expires in Redis, unreleased.
4. Posts an opt-out (a later event) for each number, and starts run B (an ad-hoc
   ``dnc-sync sync run``, straight to Redis and the sandbox) as A's lease runs out (a B that
   comes too early finds the lease held, ends, and is started again). B must wait out the
   takeover grace (``dnc.fence``: A's lease expiry + attempt bound + margin) before it
   writes, then pushes the opt-outs.
5. Waits for both runs and for every DELETE A had under way to land or fail.

The timing rule (``dnc.fence.check_lease_timing``) holds: TTL 5 s >= connect 0.5 + pool 0.5
+ write 0.5 + read 1 + margin 0.5 + 1 s. The DELETE latency (4 s) stays inside what the fence
assumes of CXone: it finishes a request within the attempt bound plus the margin (3 s) after
the client gave up on it (here after its 1 s read timeout). So a DELETE A sent just before it
stopped admitting attempts lands up to 1 s after A's own view of its lease expiry: after the
lease expired in Redis, inside B's grace. Nothing could fence a CXone slower than the
assumption, so a latency beyond it would not show a product bug.

The figures: ``history`` (``history.check_history`` over the sandbox's whole write journal:
``reordered`` 0 and ``lost`` 0 above all; no dead letter is expected), ``wrongly_applied``
(the sandbox's final DNC group against the oracle), ``pending_after`` (must be 0), and per
round: run A's exit code, its Prefect state and message (``Failed``, ``LeaseLost``) and
whether any of its states was ``Completed``; A's DELETE calls (in all, after the cut, in
flight at the cut), its lease calls cut, its DELETEs that landed (after its lease had expired
in Redis too: the writes the grace must keep away from B's); B's exit code, attempts, the
grace Redis imposed (``fenceUntilMs`` minus A's lease expiry; ``GRACE_MS`` by the rule), how
long after A's lease expiry and after that fence B first wrote (B writing sooner than the
rule's grace after A's expiry is a violation of its own, even when no late DELETE of A
happened to land in between), and ``gap_s`` (A's last landed write -> B's first write:
negative means a late DELETE of A landed after B's opt-outs had started). ``converge_s``: the
cut -> B's end, the longest round. Exit 1 when any invariant is violated (listed in ``violations``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from reliability.faults.history import LOST, check_history
from reliability.faults.oracle import (
    OPT_IN,
    OPT_OUT,
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
from reliability.faults.stack import (
    JOURNAL_TARGET,
    NAMESPACE,
    Stack,
    dead_letters,
    state_values,
    text,
)
from reliability.faults.wire import Proxy, send_all
from reliability.processes import HOST, HarnessError, wait_exit

KEYS = RedisKeys(NAMESPACE)
LEASE_TTL_S = 5
TIMEOUTS = {  # attempt bound 2.5 s + margin 0.5 s + 1 s <= TTL 5 s (dnc/fence.py)
    "cxone_connect_timeout_s": "0.5",
    "cxone_pool_timeout_s": "0.5",
    "cxone_write_timeout_s": "0.5",
    "cxone_read_timeout_s": "1",
    "sync_fence_margin_s": "0.5",
}
GRACE_MS = round(1000 * sum(float(v) for v in TIMEOUTS.values()))
"""The takeover grace by the rule (attempt bound + margin, 3 s): how long after A's lease
expired B may not write."""
CONCURRENCY = 4
START_EARLY_MS = 1200  # B is started this long before A's lease expires (it needs 1.5-4 s
# to ask for the lease; one that asks too early ends and is started again)
RUN_TIMEOUT_S = 90
LONG = {"rounds": 3, "numbers": 40, "batch_size": 5, "delete_latency_ms": 4000, "seed": 11}
SHORT = LONG | {"rounds": 1, "numbers": 20}
EXPECTED_DEAD_REASONS: tuple[str, ...] = ()  # nothing here is refused for good


# -- the lease link: a proxy to Redis that can cut one run's lease calls ------------------------


async def read_command(reader: asyncio.StreamReader) -> tuple[bytes, list[bytes]]:
    """One client command as sent (RESP array of bulk strings) and its arguments; an inline
    command comes back with no arguments. ``IncompleteReadError`` at EOF."""
    head = await reader.readuntil(b"\r\n")
    if not head.startswith(b"*"):
        return head, []
    raw, args = bytearray(head), []
    for _ in range(int(head[1:-2])):
        size_line = await reader.readuntil(b"\r\n")
        data = await reader.readexactly(int(size_line[1:-2]) + 2)
        raw += size_line + data
        args.append(data[:-2])
    return bytes(raw), args


@dataclass
class LeaseLink:
    """Forwards 127.0.0.1:``port`` to Redis at ``upstream_port``. After ``cut()``, a command
    that names ``lease_key`` (exactly, as one argument) is not forwarded: the connection it
    came on is closed, as a network failure would (``dropped`` counts them); every other
    command still goes through (``forwarded``)."""

    upstream_port: int
    lease_key: bytes
    port: int = 0
    cut_at_s: float | None = None
    dropped: int = 0
    forwarded: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """From now on, drop every lease call."""
        self.cut_at_s = time.monotonic()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        pump = asyncio.create_task(_pump(up_reader, writer))
        try:
            while True:
                raw, args = await read_command(reader)
                if self.cut_at_s is not None and self.lease_key in args:
                    self.dropped += 1
                    break
                self.forwarded += 1
                up_writer.write(raw)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            pump.cancel()
            for stream in (writer, up_writer):
                self._writers.discard(stream)
                stream.close()
                with contextlib.suppress(OSError):
                    await stream.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy Redis's answers to the client until either side closes."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


def prefect_get(stack: Stack, path: str) -> Any:
    """``GET`` on the Prefect API (``path`` after ``/api``); its JSON, ``None`` unless 200."""
    if not stack.prefect_api_url:
        return None
    rest = stack.prefect_api_url.removeprefix(f"http://{HOST}:")
    port, _, api = rest.partition("/")
    connection = http.client.HTTPConnection(HOST, int(port), timeout=30)
    try:
        connection.request("GET", f"/{api}{path}")
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return json.loads(data) if response.status == 200 else None


# -- one round -----------------------------------------------------------------------------------


@dataclass
class World:
    stack: Stack
    args: argparse.Namespace
    proxy: Proxy
    redis: aioredis.Redis
    sent: list[Sent] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Round:
    """What one round saw, before the journal is read."""

    index: int
    numbers: list[str]
    cut_after: int
    link: LeaseLink
    a_token: str = ""
    a_exit: int | None = None
    a_expires_ms: int = 0
    first_call: int = 0
    end_call: int = 0
    in_flight_at_cut: int = 0
    b_exit: int | None = None
    b_attempts: int = 0
    b_token: str = ""
    b_fence_ms: int = 0
    cut_s: float = 0.0
    b_end_s: float = 0.0


async def lease(world: World) -> tuple[str | None, int]:
    """The lease holder's token (or ``None``) and its remaining TTL in ms."""
    holder = await world.redis.get(KEYS.sync_lease)
    ttl_ms = await world.redis.pttl(KEYS.sync_lease)
    return (text(holder) if holder else None), int(ttl_ms)


async def history_of_lease(world: World) -> dict[str, str]:
    raw = await world.redis.hgetall(KEYS.sync_lease_history)
    return {text(k): text(v) for k, v in raw.items()}


async def until(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float, step_s: float = 0.02
) -> None:
    """Poll ``check`` until it answers true; ``HarnessError`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise HarnessError(f"{what} within {timeout_s} s")
        await asyncio.sleep(step_s)


def run_env(world: World, **more: str) -> dict[str, str]:
    """A sync run's environment: lease TTL 5 s, fast timeouts, 4 batches in flight, no
    pacing, quick transport and Prefect retries (so a slow DELETE is retried), 30 s budget."""
    return world.stack.flow_env(
        cxone_batch_size=str(world.args.batch_size),
        cxone_max_concurrency=str(CONCURRENCY),
        cxone_rate_limit_rps="0",
        cxone_max_attempts="4",
        cxone_backoff_base_s="0.1",
        cxone_backoff_cap_s="1",
        sync_lease_ttl_s=str(LEASE_TTL_S),
        sync_push_retries="3",
        sync_push_retry_delay_s="0",
        sync_time_budget_s="30",
        **TIMEOUTS,
        **more,
    )


async def post_events(world: World, numbers_: list[str], action: str, tag: str) -> None:
    now_ms = int(time.time() * 1000)
    event_ms = now_ms - 60_000 if action == OPT_IN else now_ms  # the opt-outs are later
    events = [Sent(n, action, event_ms, f"{tag}-{i}") for i, n in enumerate(numbers_)]
    world.sent += events
    await send_all(world.stack.ports["receiver"], world.stack.bearer, events, 4)


async def start_a(world: World, rnd: Round) -> subprocess.Popen[bytes]:
    """Post the opt-ins and start run A through the lease link and the recording proxy;
    returns once A holds the lease and has sent ``rnd.cut_after`` DELETEs."""
    await post_events(world, rnd.numbers, OPT_IN, f"in{rnd.index}")
    env = run_env(
        world,
        redis_url=rnd.link.url,
        cxone_issuer_url=f"http://{HOST}:{world.proxy.port}",
    )
    rnd.first_call = len(world.proxy.calls)
    name = f"sync-a{rnd.index}"  # a log of its own: two runs overlap here
    proc = world.stack.spawn_sync(env, name=name, log=name)

    async def holds() -> bool:
        if proc.poll() is not None:
            raise HarnessError(f"run A ended ({proc.returncode}) before taking the lease")
        holder, _ = await lease(world)
        rnd.a_token = holder or ""
        return holder is not None

    await until(holds, "run A did not take the lease", 60)

    def deletes() -> int:
        return world.proxy.count(rnd.first_call, lambda c: c.method == "DELETE")

    deadline = time.monotonic() + 60
    while not await world.proxy.wait_for(lambda: deletes() >= rnd.cut_after, 0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise HarnessError(f"run A sent {deletes()} DELETE(s), not {rnd.cut_after}")
    return proc


async def take_over(world: World, rnd: Round) -> None:
    """Start run B as A's lease runs out, again until B is the one that took it over; B's
    exit code, attempts, token and the takeover fence Redis gave it."""
    env = run_env(world)
    while rnd.b_attempts < 5:
        rnd.b_attempts += 1

        async def expiring() -> bool:
            holder, ttl_ms = await lease(world)
            if holder == rnd.a_token:
                expires = (await history_of_lease(world)).get("expiresMs", "0")
                rnd.a_expires_ms = int(expires)  # frozen: A's renewals are cut
            return holder != rnd.a_token or ttl_ms <= START_EARLY_MS

        await until(expiring, "run A's lease did not run out", 60)
        name = f"sync-b{rnd.index}-{rnd.b_attempts}"
        proc = world.stack.spawn_sync(env, name=name, log=name)
        try:
            rnd.b_exit = await wait_exit(proc, RUN_TIMEOUT_S, "a sync run")
        finally:
            world.stack.reap(proc)
        taken = await history_of_lease(world)
        if taken.get("holder") not in (None, rnd.a_token):
            rnd.b_token = taken["holder"]
            rnd.b_fence_ms = int(taken.get("fenceUntilMs", "0"))
            rnd.b_end_s = time.monotonic()
            return
    raise HarnessError("run B never took the lease over")


async def one_round(world: World, index: int) -> Round:
    args = world.args
    batches = -(-args.numbers // args.batch_size)
    rnd = Round(
        index=index,
        numbers=numbers(args.numbers, offset=(index - 1) * args.numbers),
        cut_after=1 + (index - 1) * min(batches, CONCURRENCY),
        link=LeaseLink(world.stack.ports["redis"], KEYS.sync_lease.encode()),
    )
    await rnd.link.start()
    proc_a: subprocess.Popen[bytes] | None = None
    try:
        proc_a = await start_a(world, rnd)
        rnd.link.cut()
        rnd.cut_s = time.monotonic()
        rnd.a_expires_ms = int((await history_of_lease(world)).get("expiresMs", "0"))
        rnd.in_flight_at_cut = world.proxy.count(
            rnd.first_call, lambda c: c.method == "DELETE" and c.ended_s == 0
        )
        await post_events(world, rnd.numbers, OPT_OUT, f"out{index}")
        await take_over(world, rnd)
        rnd.a_exit = await wait_exit(proc_a, RUN_TIMEOUT_S, "a sync run")
        # every DELETE A had under way lands (or fails) before the journal is judged
        landing_s = world.args.delete_latency_ms / 1000 + 10
        if not await world.proxy.wait_for(lambda: world.proxy.in_flight() == 0, landing_s):
            raise HarnessError(f"a DELETE of run A was not answered within {landing_s} s")
        rnd.end_call = len(world.proxy.calls)
    finally:
        if proc_a is not None:
            world.stack.reap(proc_a)
        await rnd.link.stop()
    return rnd


# -- judging -------------------------------------------------------------------------------------


def flow_run(stack: Stack, token: str) -> dict[str, Any]:
    """A run's Prefect state (by its lease token ``flow-run-<id>/...``): ``state``, ``message``
    and ``completed_ever`` (any of its states Completed)."""
    run_id = token.removeprefix("flow-run-").split("/")[0]  # flow-run-<id>/<nonce>/<role>
    found = prefect_get(stack, f"/flow_runs/{run_id}") or {}
    state = found.get("state") or {}
    history = prefect_get(stack, f"/flow_run_states/?flow_run_id={run_id}") or []
    return {
        "state": state.get("type"),
        "message": str(state.get("message") or "")[:300],
        "completed_ever": any(s.get("type") == "COMPLETED" for s in history),
        "states": [s.get("type") for s in history],
    }


def judge_round(
    stack: Stack, rnd: Round, proxy: Proxy, journal: list[dict[str, Any]]
) -> dict[str, Any]:
    digits = {group_digits(n) for n in rnd.numbers}
    mine = [e for e in journal if e["phoneNumber"] in digits]
    a_writes = [e["atMs"] for e in mine if e["method"] == "DELETE"]
    b_writes = [e["atMs"] for e in mine if e["method"] == "POST"]
    calls = proxy.calls[rnd.first_call : rnd.end_call]
    a_state = flow_run(stack, rnd.a_token) if rnd.a_token.startswith("flow-run-") else {}
    return {
        "round": rnd.index,
        "numbers": len(rnd.numbers),
        "cut_after_deletes": rnd.cut_after,
        "a": {
            "exit_code": rnd.a_exit,
            **a_state,
            "delete_calls": sum(1 for c in calls if c.method == "DELETE"),
            "delete_calls_after_cut": sum(
                1 for c in calls if c.method == "DELETE" and c.started_s > rnd.cut_s
            ),
            "deletes_in_flight_at_cut": rnd.in_flight_at_cut,
            "lease_calls_cut": rnd.link.dropped,
            "writes_landed": len(a_writes),
            "writes_landed_after_its_lease_expired": sum(
                1 for at in a_writes if at > rnd.a_expires_ms
            ),
        },
        "b": {
            "exit_code": rnd.b_exit,
            "attempts": rnd.b_attempts,
            "grace_s": round((rnd.b_fence_ms - rnd.a_expires_ms) / 1000, 3),
            "first_write_after_fence_s": round((min(b_writes) - rnd.b_fence_ms) / 1000, 3)
            if b_writes
            else None,
            "first_write_after_a_expiry_s": round((min(b_writes) - rnd.a_expires_ms) / 1000, 3)
            if b_writes
            else None,
            "writes": len(b_writes),
        },
        "gap_s": round((min(b_writes) - max(a_writes)) / 1000, 3)
        if a_writes and b_writes
        else None,
        "takeover_s": round(rnd.b_end_s - rnd.cut_s, 2),
    }


def round_violations(judged: dict[str, Any]) -> list[str]:
    a, b, n = judged["a"], judged["b"], judged["round"]
    checks = {
        f"round {n}: run A exited 0": a["exit_code"] == 0,
        f"round {n}: run A ended {a.get('state')}, not FAILED": a.get("state") != "FAILED",
        f"round {n}: run A did not fail with LeaseLost": "LeaseLost" not in a.get("message", ""),
        f"round {n}: run A was Completed at some point": bool(a.get("completed_ever")),
        f"round {n}: run B exited {b['exit_code']}": b["exit_code"] != 0,
        f"round {n}: run B wrote nothing": b["writes"] == 0,
        f"round {n}: run B wrote before its takeover fence": (
            b["first_write_after_fence_s"] is not None and b["first_write_after_fence_s"] < 0
        ),
        f"round {n}: run B wrote {b['first_write_after_a_expiry_s']} s after A's lease "
        f"expired, within the takeover grace of {GRACE_MS / 1000:g} s": (
            b["first_write_after_a_expiry_s"] is not None
            and b["first_write_after_a_expiry_s"] < GRACE_MS / 1000
        ),
        f"round {n}: no DELETE of A in flight at the cut (the fault missed)": (
            a["deletes_in_flight_at_cut"] == 0
        ),
        f"round {n}: no slow DELETE of A landed (the fault missed)": a["writes_landed"] == 0,
        f"round {n}: no lease call of A was cut (the fault missed)": a["lease_calls_cut"] == 0,
    }
    return [text for text, bad in checks.items() if bad]


def report(world: World, rounds: list[Round]) -> dict[str, Any]:
    stack = world.stack
    r = stack.redis()
    try:
        watermarks = state_values(r, KEYS)
        dead = dead_letters(r, KEYS)
        pending = int(r.zcard(KEYS.pending)) + int(r.zcard(KEYS.deferred))
    finally:
        r.close()
    state = stack.sandbox("GET", "/_sandbox/state")
    journal = fetch_journal(stack.sandbox, JOURNAL_TARGET)
    history = check_history(journal, world.sent, dead, EXPECTED_DEAD_REASONS)
    expected = expected_state(world.sent)
    wrong = wrongly_applied(expected, active_numbers(state))
    fates = account(world.sent, watermarks, dead)
    extra = extra_applications(world.sent, state)
    judged = [judge_round(stack, rnd, world.proxy, journal) for rnd in rounds]
    acknowledged = sum(1 for e in world.sent if e.acknowledged)
    checks = {
        **dict.fromkeys(history.failures(), True),
        f"{fates['lost']} acknowledged event(s) lost in Redis": fates["lost"] > 0,
        f"{len(wrong)} number(s) wrongly applied: {wrong[:5]}": bool(wrong),
        f"{pending} number(s) still pending after the rounds": pending > 0,
        f"{len(world.sent) - acknowledged} event(s) not answered 202": acknowledged
        < len(world.sent),
        f"extra applications: {dict(list(extra.items())[:5])}": bool(extra),
    }
    violations = [text for text, bad in checks.items() if bad]
    for one in judged:
        violations += round_violations(one)
    return {
        "suite": "lease_takeover",
        "fault": "a run's lease calls cut mid-push while CXone applies its DELETEs "
        f"{world.args.delete_latency_ms / 1000:g} s late; opt-outs arrive and a second run "
        "takes the lease over",
        "times": len(rounds),
        "events_sent": len(world.sent),
        "acknowledged": acknowledged,
        "lost": history.violations[LOST],
        "reordered": history.violations["reordered"],
        "wrongly_applied": len(wrong),
        "converge_s": max((j["takeover_s"] for j in judged), default=0.0),
        "history": history.as_json(),
        "rounds": judged,
        "fates": dict(sorted(fates.items())),
        "statuses": statuses(world.sent),
        "dead_letters": len(dead),
        "extra_applications": sum(extra.values()),
        "pending_after": pending,
        "sandbox_requests": state["requests"],
        "config": {k: v for k, v in vars(world.args).items() if k != "prefect_api_url"}
        | {"lease_ttl_s": LEASE_TTL_S, "grace_s": GRACE_MS / 1000, "timeouts": TIMEOUTS},
        "violations": violations,
    }


# -- main ----------------------------------------------------------------------------------------


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_all(seed=str(args.seed), delete_latency_ms=str(args.delete_latency_ms))
    return asyncio.run(_run(stack, args))


async def _run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    proxy = Proxy(stack.ports["sandbox"])
    await proxy.start()
    client = aioredis.Redis.from_url(stack.redis_url)
    world = World(stack, args, proxy, client)
    try:
        rounds = [await one_round(world, i) for i in range(1, args.rounds + 1)]
        return report(world, rounds)
    finally:
        await client.aclose()
        await proxy.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="takeovers, new numbers each (3; short 1)")
    parser.add_argument("--numbers", type=int, help="numbers per round (40; short 20)")
    parser.add_argument("--batch-size", type=int, help="numbers per DELETE (5)")
    parser.add_argument(
        "--delete-latency-ms", type=int, help="how late the sandbox applies a DELETE (4000)"
    )
    parser.add_argument("--seed", type=int, help="the sandbox's fault seed (11)")
    args = sized_args(parser, LONG, SHORT, argv)
    if args.rounds < 1 or args.numbers < 1 or args.rounds * args.numbers > 10_000:
        parser.error("need --rounds >= 1, --numbers >= 1 and at most 10,000 numbers in all")
    return args


main = fault_main("dnc-chaos-lease-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
