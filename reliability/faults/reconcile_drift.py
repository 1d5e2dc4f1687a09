"""Chaos: the DNC group drifts behind the service's back while syncs run through lost replies
and 5xx; then the reconciliation must find every drifted number (none missed, no false
positive against an oracle of its own) and its repair must converge in one sync.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.reconcile_drift [--numbers 5000] [--unknown 500]
        [--rounds 4] [--batch 50] [--lost-reply-rate 0.1] [--error-rate 0.1] [--seed 11]
        [--short] [--prefect-api-url URL]

One round:

1. **Events** through the receiver for part of ``--numbers`` numbers: one to three each at
   distinct times (opt-outs, some expiring, opt-ins, re-opt-outs), sent shuffled so older ones
   arrive late, some with an opt-in at the very time of the winning opt-out. A few numbers
   holding a record of ours get an opt-in settled without its push (``settle_unpushed``, the
   injection of ``tests/flows/test_reconcile_flow.py``): CXone keeps a record this service
   created for an opted-in number, the one way ``opt_in_record`` arises, since a sync ends
   ownership whenever it settles an opt-in.
2. **Faults and drift.** The sandbox loses ``--lost-reply-rate`` of its answers (the write
   applied) and fails ``--error-rate`` of the calls with a 5xx; ``dnc-sync sync run`` runs
   back to back until nothing is pending or waiting out a backoff. Before the first run and
   while they run, out-of-band changes land (``POST /_sandbox/dnc-groups/1001/records``, as
   an admin would), at most one per number a round: records of ours deleted or expired now,
   expiries changed, records added for opted-in numbers, for numbers never sent and, before
   any push, for numbers with a pending opt-out.
3. **Reconciliation.** Faults off; ``reconcile_dnc(repair=True)`` in this process; its
   findings against the oracle; one sync; ``reconcile_dnc()`` again: ``opt_out_missing`` and
   ``opt_in_record`` must be 0 and the other classes as the oracle says. Then, as an admin
   would with the report, the ``not_owned`` records are removed and the ``expiry_differs``
   ones given the opt-out's expiry (``fix_by_hand``).

The oracle (``expected``) imports nothing of ``dnc.reconcile``. Per number: the latest event
sent (``oracle.expected_state``), the sandbox's active record (``GET /_sandbox/state``) and
who created it (``creators``): ours when the last creation was an API add of ours (a journal
``POST`` with ``changed``), someone else's when it was an out-of-band add onto an absent
number (an expiry change keeps the creator). It sorts each number by the table of
``dnc/reconcile/drift.py``. The report holds counts and masked samples; with
``DNC_RECONCILE_SAMPLE_SIZE=1000`` the samples name every number of a class (the numbers here
differ in their last four digits), and the pending set right after the repair must hold
exactly the repairable numbers. ``missed``: oracle minus found; ``false_positives``: found
minus oracle, per class.

Kept clear of by construction, since the service cannot tell (``dnc/ownership.py``): an
opt-out push that meets someone else's record after an attempt went unanswered takes it for
ours. Such a record's class never depends on whose it is: an out-of-band add for a pending
opt-out carries the opt-out's own expiry, an expiry change of someone else's record under our
opt-out only shortens it, and a number holding someone else's record gets no winning opt-out.
An opt-out never asks for more protection than the record it meets (the sync dead-letters
that by design).

Prints ``{suite, rounds, numbers, out_of_band, lost_replies, drift (found vs oracle per class),
missed, false_positives, repair, converged, seconds, violations, ...}``; exits 1 on any
violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from reliability.faults.oracle import (
    NO_EXPIRY,
    OPT_IN,
    OPT_OUT,
    Sent,
    account,
    expected_state,
    fetch_journal,
    group_digits,
    numbers,
)
from reliability.faults.script import fault_main, sized_args
from reliability.faults.stack import GROUP_ID, JOURNAL_TARGET, NAMESPACE, Stack, state_values
from reliability.faults.wire import send_all
from reliability.processes import HarnessError

KEYS = RedisKeys(NAMESPACE)
CLASSES = ("opt_out_missing", "opt_in_record", "expiry_differs", "not_owned")
REPAIRABLE = ("opt_out_missing", "opt_in_record")
REPAIR_FIGURES = ("requeued", "oracle", "missed", "false_positives")
IN_SYNC, FOREIGN, UNKNOWN, DEAD = "in_sync", "foreign_record", "unknown_number", "dead_lettered"
OURS, THEIRS, UNORDERED = "ours", "theirs", "unordered"
REMOVALS = {"delete": "delete", "expire": "expire", "fix_not_owned": "delete"}
"""Out-of-band changes that remove a record, and how (``fix_*``: by hand after a report)."""
SHARES = {  # per round, of the numbers (add_unknown: of the unknown ones)
    "delete": 0.04,
    "expire": 0.04,
    "expiry_update": 0.05,
    "add_opted_in": 0.05,
    "add_unknown": 0.3,
    "add_pending_opt_out": 0.15,  # of the winning opt-outs meeting no record
    "unpushed_opt_in": 0.02,
}
EXPIRY_DAYS = (2, 5, 10, 30)
OPT_OUT_SHARE, TIE_SHARE = 0.55, 0.1
HANG_S = 1.0
LATENCY_MS = 50
"""Added to every CXone call while the faults are on, so that pushes last long enough for
out-of-band changes to land between them."""
PACE_S = 1.5
"""Over about how long the out-of-band changes made during the syncs are spread, seconds."""
SAMPLE_SIZE = 1000
MAX_RUNS = 30
SYNC_TIMEOUT_S = 90.0
"""A sync run still going after this many seconds (its time budget is 30) fails the run."""
SETTINGS = {  # DNC_* of the sync runs and the reconciliation (lease timing as cxone_faults)
    "sync_remove_foreign_records": "false",  # the ownership ledger decides (stack's is on)
    "cxone_rate_limit_rps": "0",
    "cxone_max_concurrency": "2",
    "cxone_read_timeout_s": "0.5",
    "cxone_connect_timeout_s": "0.5",
    "cxone_pool_timeout_s": "0.5",
    "cxone_write_timeout_s": "0.5",
    "cxone_backoff_base_s": "0.1",
    "cxone_backoff_cap_s": "1",
    "sync_fence_margin_s": "0.5",
    "sync_lease_ttl_s": "5",
    "sync_time_budget_s": "30",
    "sync_push_retry_delay_s": "0.2",
    "sync_retry_max_attempts": "30",  # a number's own failures: none expected to dead-letter
    "sync_retry_backoff_base_s": "0.5",
    "sync_retry_backoff_cap_s": "2",
    "sync_retry_max_age_s": "900",
    "reconcile_sample_size": str(SAMPLE_SIZE),
    "reconcile_verify_limit": "100000",
    "reconcile_lease_wait_s": "60",
}
LONG = {
    "numbers": 5000,
    "unknown": 500,
    "rounds": 4,
    "batch": 50,
    "lost_reply_rate": 0.1,
    "error_rate": 0.1,
    "seed": 11,
}
SHORT = LONG | {"numbers": 300, "unknown": 40, "rounds": 2, "batch": 20, "lost_reply_rate": 0.15}
Records = dict[str, int | None]
"""Active records of the group: digits -> expiry (UTC ms, ``None``: never)."""


# -- the oracle: plain functions of plain data -------------------------------------------------


@dataclass(frozen=True)
class OobAdd:
    """One out-of-band add of ``digits``: ``lo``/``hi``, the journal's next sequence number
    just before and after it, and whether it created the record (``added``) or only changed
    an active one's expiry."""

    digits: str
    lo: int
    hi: int
    added: bool


def creators(journal: Iterable[Mapping[str, Any]], adds: Sequence[OobAdd]) -> dict[str, str]:
    """Digits -> who made the last creation of its record: ``OURS`` (an API add that changed
    the state), ``THEIRS`` (an out-of-band add onto an absent number) or ``UNORDERED`` (an
    API add landed while that out-of-band add was under way). ``adds`` in the order made."""
    ours: dict[str, int] = {}
    for entry in journal:
        if entry["method"] == "POST" and entry["changed"]:
            ours[entry["phoneNumber"]] = int(entry["seq"])
    theirs = {add.digits: add for add in adds if add.added}  # the last one wins
    found = dict.fromkeys(ours, OURS)
    for digits, add in theirs.items():
        seq = ours.get(digits)
        if seq is None or seq < add.lo:
            found[digits] = THEIRS
        elif seq < add.hi:
            found[digits] = UNORDERED
    return found


def _protection(expires_ms: int | None) -> int:
    return NO_EXPIRY if expires_ms is None else expires_ms


def expected_class(
    event: Sent | None, record: tuple[int | None] | None, creator: str | None, now_ms: int
) -> str | None:
    """The drift class (or note) of one number: ``event`` the winning event sent (``None``:
    never named), ``record`` the active record's expiry as a 1-tuple (``None``: no record),
    ``creator`` from ``creators``. ``None``: nothing to compare (no event, no record)."""
    if event is None:
        return None if record is None else UNKNOWN
    in_force = event.action == OPT_OUT and _protection(event.expires_ms) > now_ms
    if record is None:
        return "opt_out_missing" if in_force else IN_SYNC
    if event.action == OPT_IN:
        return "opt_in_record" if creator == OURS else "not_owned"
    ours_s, theirs_s = (None if ms is None else ms // 1000 for ms in (event.expires_ms, record[0]))
    if in_force and _protection(theirs_s) < _protection(ours_s):  # less protection than asked
        return "expiry_differs"
    return IN_SYNC if creator == OURS else FOREIGN


def expected(
    truth: Mapping[str, Sent],
    active: Mapping[str, int | None],
    owners: Mapping[str, str],
    dead: Iterable[str],
    now_ms: int,
) -> dict[str, set[str]]:
    """Class or note -> the E.164 numbers in it, over every number sent or holding a record;
    a dead-lettered number is a note (``DEAD``)."""
    found: dict[str, set[str]] = {name: set() for name in CLASSES}
    everyone = set(truth) | {"+" + digits for digits in active}
    for e164 in everyone:
        digits = group_digits(e164)
        record = (active[digits],) if digits in active else None
        name = expected_class(truth.get(e164), record, owners.get(digits), now_ms)
        if e164 in dead:
            name = DEAD
        if name is not None:
            found.setdefault(name, set()).add(e164)
    return found


def judge(oracle: Mapping[str, set[str]], found: Mapping[str, set[str]]) -> dict[str, Any]:
    """Per drift class: ``oracle`` and ``found`` counts, ``missed`` (oracle - found) and
    ``false_positives`` (found - oracle)."""
    return {
        name: {
            "oracle": len(oracle.get(name, set())),
            "found": len(found.get(name, set())),
            "missed": len(oracle.get(name, set()) - found.get(name, set())),
            "false_positives": len(found.get(name, set()) - oracle.get(name, set())),
        }
        for name in CLASSES
    }


def found_sets(
    report: Mapping[str, Any], by_mask: Mapping[str, str]
) -> tuple[dict[str, set[str]], list[str]]:
    """The numbers the report names per class (its masked samples read back through
    ``by_mask``, ``***0123`` -> E.164) and what made that reading incomplete."""
    found, problems = {}, []
    for name in CLASSES:
        samples = report["samples"].get(name, [])
        if len(samples) != report["drift"][name]:
            over = " (over the sample size)" if len(samples) >= SAMPLE_SIZE else ""
            problems.append(
                f"{name}: {report['drift'][name]} counted, {len(samples)} sampled{over}"
            )
        found[name] = {by_mask.get(mask, mask) for mask in samples}
    return found, problems


# -- what the scenario does ----------------------------------------------------------------------

Op = tuple[str, str, int | None]
"""An out-of-band change: kind (``SHARES``), digits, expiry (UTC ms, ``None``: never)."""


@dataclass
class Round:
    """One round: who created each record when it began (``owners``), its ``events``, the
    numbers they ``touched`` (the ``unpushed`` opt-ins too), its out-of-band ``ops``, and what
    came of it."""

    owners: dict[str, str]
    events: list[Sent] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    unpushed: set[str] = field(default_factory=set)
    settled_unpushed: int = 0
    ops: list[Op] = field(default_factory=list)
    op_seqs: list[int] = field(default_factory=list)
    writes: tuple[int, int] = (0, 0)
    sync_exit_codes: list[int] = field(default_factory=list)
    judged: dict[str, Any] = field(default_factory=dict)
    repair: dict[str, int] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    converged: bool = False
    converge_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_json(self, index: int) -> dict[str, Any]:
        return {
            "round": index,
            "events": len(self.events),
            "numbers_touched": len(self.touched),
            "out_of_band": len(self.ops) + self.settled_unpushed,
            "out_of_band_between_writes": sum(
                1 for seq in self.op_seqs if self.writes[0] < seq < self.writes[1]
            ),
            "sync_exit_codes": self.sync_exit_codes,
            "drift": self.judged,
            "repair": self.repair,
            "after_repair": {k: v["found"] for k, v in self.after.items()},
            "converged": self.converged,
            "converge_s": self.converge_s,
            "problems": self.problems,
        }


@dataclass
class World:
    """The whole run: the numbers, everything sent, the out-of-band ``adds`` and ``counts``
    by kind, the expiries events and changes choose from (UTC ms, whole seconds), the
    ``rounds`` so far and the latest event time sent (UTC ms)."""

    stack: Stack
    args: argparse.Namespace
    rng: random.Random
    pool: list[str]
    unknown: list[str]
    expiries: tuple[int | None, ...]
    last_event_ms: int
    sent: list[Sent] = field(default_factory=list)
    adds: list[OobAdd] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    rounds: list[Round] = field(default_factory=list)

    def take(self, candidates: Iterable[str], kind: str, of: int) -> list[str]:
        """A random ``SHARES[kind]`` of ``of`` numbers (at least 2) out of ``candidates``."""
        pool = sorted(candidates)
        wanted = max(2, round(SHARES[kind] * of))
        return self.rng.sample(pool, min(len(pool), wanted))

    def event_times(self) -> list[int]:
        """One to three distinct event times (UTC ms) after every event sent, up to now."""
        times = sorted(self.rng.sample(range(self.last_event_ms, int(time.time() * 1000)), 3))
        return times[-self.rng.randint(1, 3) :]


def at_most(expiries: Iterable[int | None], limit: int | None) -> list[int | None]:
    """The expiries protecting no longer than ``limit`` (``None``: never lapses)."""
    return [e for e in expiries if _protection(e) <= _protection(limit)]


def number_events(world: World, this: Round, e164: str, active: Records) -> None:
    """One touched number's events: earlier ones of any kind, then the winning one; an opt-out
    wins only over no record or one of ours, asking no more protection than it gives."""
    rng, serial = world.rng, f"r{len(world.rounds)}-{len(this.touched)}"
    times = world.event_times()
    for i, at_ms in enumerate(times[:-1]):
        action = rng.choice((OPT_OUT, OPT_IN))
        expires = rng.choice(world.expiries) if action == OPT_OUT else None
        this.events.append(Sent(e164, action, at_ms, f"{serial}-{i}", expires_ms=expires))
    digits = group_digits(e164)
    foreign = digits in active and this.owners.get(digits) != OURS
    if foreign or rng.random() >= OPT_OUT_SHARE:
        this.events.append(Sent(e164, OPT_IN, times[-1], f"{serial}-in"))
        return
    expires = rng.choice(at_most(world.expiries, active.get(digits)))
    this.events.append(Sent(e164, OPT_OUT, times[-1], f"{serial}-out", expires_ms=expires))
    if rng.random() < TIE_SHARE:  # an opt-in at the same time: the opt-out still wins
        this.events.append(Sent(e164, OPT_IN, times[-1], f"{serial}-tie"))


def plan_events(world: World, this: Round, active: Records, before: Mapping[str, Sent]) -> None:
    """The round's events (``number_events``) and unpushed opt-ins, shuffled."""
    share = 0.8 if len(world.rounds) == 1 else 0.4
    for e164 in world.rng.sample(world.pool, round(share * len(world.pool))):
        number_events(world, this, e164, active)
        this.touched.add(e164)
    ours = [
        e164
        for e164, event in before.items()
        if event.action == OPT_OUT
        and e164 not in this.touched
        and this.owners.get(group_digits(e164)) == OURS
        and group_digits(e164) in active
    ]
    this.unpushed = set(world.take(ours, "unpushed_opt_in", len(world.pool)))
    now_ms = int(time.time() * 1000)
    for n, e164 in enumerate(sorted(this.unpushed)):
        this.events.append(Sent(e164, OPT_IN, now_ms, f"r{len(world.rounds)}-unpushed-{n}"))
    this.touched |= this.unpushed
    world.rng.shuffle(this.events)


def plan_ops(world: World, this: Round, active: Records, before: Mapping[str, Sent]) -> None:
    """The round's out-of-band changes, at most one per number (module docstring)."""
    after = expected_state([*before.values(), *this.events])
    used: set[str] = set()

    def pick(kind: str, candidates: Iterable[str], of: int = len(world.pool)) -> list[str]:
        chosen = world.take((c for c in candidates if c not in used), kind, of)
        used.update(chosen)
        return chosen

    held = [e for e in before if e not in this.touched and group_digits(e) in active]
    ours = [e for e in held if this.owners.get(group_digits(e)) == OURS]
    mine = [e for e in ours if before[e].action == OPT_OUT]
    this.ops += [("delete", group_digits(e), None) for e in pick("delete", mine)]
    this.ops += [("expire", group_digits(e), None) for e in pick("expire", mine)]
    for e164 in pick("expiry_update", held):
        _expiry_update(world, this, e164, active[group_digits(e164)], before[e164])
    fresh = [e for e in this.touched if after[e].action == OPT_OUT]
    bare = [e for e in fresh if group_digits(e) not in active]
    for e164 in pick("add_pending_opt_out", bare, len(bare)):
        this.ops.append(("add_pending_opt_out", group_digits(e164), after[e164].expires_ms))
    opted_in = [e for e, ev in after.items() if ev.action == OPT_IN and e not in this.unpushed]
    for e164 in pick("add_opted_in", opted_in):
        this.ops.append(("add_opted_in", group_digits(e164), world.rng.choice(world.expiries)))
    for e164 in pick("add_unknown", world.unknown, len(world.unknown)):
        this.ops.append(("add_unknown", group_digits(e164), world.rng.choice(world.expiries)))
    world.rng.shuffle(this.ops)


def _expiry_update(world: World, this: Round, e164: str, current: int | None, event: Sent) -> None:
    """A new expiry for the record of ``e164``: any other one under an opt-in; under our
    opt-out mostly a shorter one (``expiry_differs``), and always for someone else's record."""
    digits = group_digits(e164)
    choices = [e for e in world.expiries if e != current]
    shorter = [e for e in choices if _protection(e) < _protection(event.expires_ms)]
    if event.action == OPT_OUT and (this.owners.get(digits) != OURS or world.rng.random() < 0.7):
        choices = shorter
    if choices:
        this.ops.append(("expiry_update", digits, world.rng.choice(choices)))


# -- talking to the stack ------------------------------------------------------------------------


def active_records(stack: Stack) -> Records:
    """The group's active records (``GET /_sandbox/state``)."""
    group = stack.sandbox("GET", "/_sandbox/state")["dncGroups"][GROUP_ID]
    return {r["phoneNumber"]: _ms(r["expiredDate"]) for r in group["active"]}


def _ms(iso: str | None) -> int | None:
    if iso is None:
        return None
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def next_seq(stack: Stack) -> int:
    """The sequence number the sandbox's next journal entry will get."""
    return int(stack.sandbox("GET", "/_sandbox/journal?after=0&limit=1")["nextSeq"])


def change(world: World, op: Op) -> None:
    """One out-of-band change, bracketed by the journal's sequence numbers."""
    kind, digits, expires_ms = op
    path = f"/_sandbox/dnc-groups/{GROUP_ID}/records"
    lo = next_seq(world.stack)
    world.rounds[-1].op_seqs.append(lo)
    if kind in REMOVALS:
        answer = world.stack.sandbox("POST", path, {REMOVALS[kind]: [digits]})
        world.counts[kind if answer["deleted"] + answer["expired"] else f"{kind}_unchanged"] += 1
        return
    record: dict[str, str] = {"phoneNumber": digits}
    if expires_ms is not None:
        record["expiredDate"] = datetime.fromtimestamp(expires_ms / 1000, UTC).isoformat()
    answer = world.stack.sandbox("POST", path, {"add": [record]})
    world.adds.append(OobAdd(digits, lo, next_seq(world.stack), bool(answer["added"])))
    world.counts[kind] += 1


async def apply_ops(world: World, ops: Sequence[Op], after_seq: int | None = None) -> None:
    """Make ``ops``; with ``after_seq``, once the journal has gone past it (a sync is
    writing, or 30 s passed), spread over about ``PACE_S`` seconds."""
    waited = 0
    while after_seq is not None and waited < 1500:
        if await asyncio.to_thread(next_seq, world.stack) > after_seq:
            break
        waited += 1
        await asyncio.sleep(0.02)
    for op in ops:
        await asyncio.to_thread(change, world, op)
        if after_seq is not None:
            await asyncio.sleep(PACE_S / len(ops))


async def settle_unpushed(stack: Stack, wanted: set[str]) -> int:
    """Acknowledge the pending opt-ins of ``wanted`` without pushing them, under the sync
    lease (what a DELETE CXone answered but did not apply would leave); how many settled."""
    client = aioredis.Redis.from_url(stack.redis_url)
    queue, token = PendingQueue(client, KEYS), "chaos-unpushed"
    try:
        for _ in range(600):
            if await queue.acquire_lease(token, 30_000):
                break
            await asyncio.sleep(0.1)
        else:
            raise HarnessError("the sync lease stayed taken")
        try:
            claims = await queue.claim(token, int(await client.zcard(KEYS.pending)) + 1)
            return sum(await queue.acknowledge([c for c in claims if c.e164 in wanted]))
        finally:
            await queue.release_lease(token)
    finally:
        await client.aclose()


def redis_view(stack: Stack) -> dict[str, Any]:
    """Pending numbers, the deferred count, dead letters and watermarks."""
    r = stack.redis()
    try:
        return {
            "pending": set(r.zrange(KEYS.pending, 0, -1)),
            "deferred": int(r.zcard(KEYS.deferred)),
            "dead": {k: json.loads(v) for k, v in r.hgetall(KEYS.dead_letters).items()},
            "watermarks": state_values(r, KEYS),
        }
    finally:
        r.close()


async def drain(world: World, env: dict[str, str], during: asyncio.Task[None]) -> list[int]:
    """Sync runs back to back until ``during`` is done and nothing waits; their exit codes."""
    codes: list[int] = []
    while len(codes) < MAX_RUNS:
        codes.append(await world.stack.arun_sync(env, SYNC_TIMEOUT_S))
        view = await asyncio.to_thread(redis_view, world.stack)
        if during.done() and not view["pending"] and not view["deferred"]:
            break
    await during
    return codes


async def reconcile(repair: bool) -> dict[str, Any]:
    """``reconcile_dnc`` in this process (imported late: Prefect reads the environment)."""
    from flows.reconcile import reconcile_dnc

    report: dict[str, Any] = await reconcile_dnc(repair=repair)
    return report


# -- one round -----------------------------------------------------------------------------------


def oracle_now(world: World) -> tuple[dict[str, set[str]], dict[str, Any]]:
    """The oracle's classes over the sandbox and the journal now, and the Redis view (with
    ``problems``: what the oracle could not decide)."""
    stack = world.stack
    view = redis_view(stack)
    owners = creators(fetch_journal(stack.sandbox, JOURNAL_TARGET), world.adds)
    truth = expected_state(world.sent)
    classes = expected(truth, active_records(stack), owners, view["dead"], int(time.time() * 1000))
    unordered = sum(1 for who in owners.values() if who == UNORDERED)
    view["problems"] = [f"creation order unknown for {unordered} number(s)"] if unordered else []
    return classes, view


def check(
    report: Mapping[str, Any], oracle: Mapping[str, set[str]], by_mask: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """``judge`` per class, and what else is wrong: an incomplete run, samples that do not
    match the counts, notes the oracle counts otherwise."""
    found, problems = found_sets(report, by_mask)
    judged = judge(oracle, found)
    notes = report["notes"]

    def oracle_count(*names: str) -> int:
        return sum(len(oracle.get(name, ())) for name in names)

    pairs = {
        UNKNOWN: (notes[UNKNOWN], oracle_count(UNKNOWN)),
        "in_sync + foreign_record": (
            notes[IN_SYNC] + notes[FOREIGN],
            oracle_count(IN_SYNC, FOREIGN),
        ),
        "in_flight + dead_lettered": (notes["in_flight"] + notes[DEAD], oracle_count(DEAD)),
    }
    problems += [f"note {k}: found {f}, oracle {o}" for k, (f, o) in pairs.items() if f != o]
    for name, figures in judged.items():
        problems += [
            f"{name}: {figures[k]} {k}" for k in ("missed", "false_positives") if figures[k]
        ]
    if not report["complete"]:
        problems.append(f"incomplete: {report['incomplete_reason']}")
    return judged, problems


async def round_(world: World, env: dict[str, str], by_mask: Mapping[str, str]) -> None:
    """One round (module docstring); its figures and problems go to ``world.rounds[-1]``."""
    stack, args = world.stack, world.args
    active = await asyncio.to_thread(active_records, stack)
    journal = await asyncio.to_thread(fetch_journal, stack.sandbox, JOURNAL_TARGET)
    this = Round(creators(journal, world.adds))
    world.rounds.append(this)
    before = expected_state(world.sent)
    world.last_event_ms = max([world.last_event_ms] + [e.event_ms + 1 for e in world.sent])
    while int(time.time() * 1000) - world.last_event_ms < 1000:
        await asyncio.sleep(0.1)
    plan_events(world, this, active, before)
    await send_all(stack.ports["receiver"], stack.bearer, this.events, 8)
    world.sent += this.events
    if this.unpushed:
        this.settled_unpushed = await settle_unpushed(stack, this.unpushed)
        world.counts["unpushed_opt_in"] += this.settled_unpushed
    plan_ops(world, this, active, before)
    early = [op[0] == "add_pending_opt_out" or world.rng.random() < 0.5 for op in this.ops]
    await asyncio.to_thread(
        stack.faults,
        lost_reply_rate=args.lost_reply_rate,
        error_rate=args.error_rate,
        timeout_rate=0,
        hang_s=HANG_S,
        latency_ms=LATENCY_MS,
        seed=args.seed * 100 + len(world.rounds),
    )
    await apply_ops(world, [op for op, first in zip(this.ops, early, strict=True) if first])
    late = [op for op, first in zip(this.ops, early, strict=True) if not first]
    first_seq = await asyncio.to_thread(next_seq, stack)
    during = asyncio.create_task(apply_ops(world, late, first_seq))
    this.sync_exit_codes = await drain(world, env, during)
    this.writes = (first_seq, await asyncio.to_thread(next_seq, stack))
    await asyncio.to_thread(stack.faults, lost_reply_rate=0, error_rate=0, latency_ms=0)
    await reconcile_round(world, this, env, by_mask)


async def reconcile_round(
    world: World, this: Round, env: dict[str, str], by_mask: Mapping[str, str]
) -> None:
    """Reconcile with repair and check it; one sync; reconcile again and check that."""
    oracle, view = await asyncio.to_thread(oracle_now, world)
    this.problems += view["problems"] + _leftovers(view, "before the reconciliation")
    if this.settled_unpushed != len(this.unpushed):
        this.problems.append(f"{this.settled_unpushed} of {len(this.unpushed)} unpushed settled")
    report = await reconcile(repair=True)
    requeued = (await asyncio.to_thread(redis_view, world.stack))["pending"]
    this.judged, problems = check(report, oracle, by_mask)
    this.repair = _repair(requeued, set().union(*(oracle[name] for name in REPAIRABLE)))
    this.problems += problems + _repair_problems(this.repair, report)
    started = time.monotonic()
    if await world.stack.arun_sync(env, SYNC_TIMEOUT_S):
        this.problems.append("the repair sync failed")
    this.converge_s = round(time.monotonic() - started, 2)
    after, view = await asyncio.to_thread(oracle_now, world)
    second = await reconcile(repair=False)
    this.after, problems = check(second, after, by_mask)
    problems += view["problems"] + _leftovers(view, "")
    this.problems += [f"after the repair sync: {p}" for p in problems]
    this.converged = _converged(this.after, this.judged, second)
    if not this.converged:
        this.problems.append(f"repair did not converge in one sync: {second['drift']}")
    await fix_by_hand(world, after)


async def fix_by_hand(world: World, oracle: Mapping[str, set[str]]) -> None:
    """What an admin does with the classes a repair leaves: removes the ``not_owned``
    records and gives each ``expiry_differs`` record the opt-out's expiry (so a class holds
    one round's drift, within the samples a report keeps)."""
    truth = expected_state(world.sent)
    ops: list[Op] = [("fix_not_owned", group_digits(e), None) for e in oracle["not_owned"]]
    for e164 in oracle["expiry_differs"]:
        ops.append(("fix_expiry", group_digits(e164), truth[e164].expires_ms))
    await apply_ops(world, sorted(ops))


def _repair(requeued: set[str], repairable: set[str]) -> dict[str, int]:
    return {
        "requeued": len(requeued),
        "oracle": len(repairable),
        "missed": len(repairable - requeued),
        "false_positives": len(requeued - repairable),
    }


def _leftovers(view: Mapping[str, Any], when: str) -> list[str]:
    found = []
    if view["pending"] or view["deferred"]:
        found.append(f"{len(view['pending'])} pending, {view['deferred']} deferred {when}")
    if view["dead"]:
        reasons = sorted({str(v.get("reason"))[:80] for v in view["dead"].values()})
        found.append(f"{len(view['dead'])} dead letter(s) {when}: {reasons[:3]}")
    return found


def _repair_problems(repair: Mapping[str, int], report: Mapping[str, Any]) -> list[str]:
    found = [f"repair: {repair[k]} {k}" for k in ("missed", "false_positives") if repair[k]]
    if report["requeued"] != repair["oracle"]:
        found.append(f"report says {report['requeued']} requeued, oracle {repair['oracle']}")
    return found


def _converged(
    after: Mapping[str, Any], before: Mapping[str, Any], second: Mapping[str, Any]
) -> bool:
    """The repairable classes are gone and the by-hand ones stayed as they were."""
    kept = all(after[k]["oracle"] == before[k]["oracle"] for k in CLASSES if k not in REPAIRABLE)
    return kept and all(second["drift"][name] == 0 for name in REPAIRABLE)


# -- the run -------------------------------------------------------------------------------------


async def scenario(world: World) -> dict[str, Any]:
    env = world.stack.flow_env(cxone_batch_size=str(world.args.batch), **SETTINGS)
    for name in [k for k in os.environ if k.startswith(("DNC_", "PREFECT_"))]:
        del os.environ[name]
    os.environ.update(env)  # for reconcile_dnc in this process
    by_mask = {"***" + e164[-4:]: e164 for e164 in world.pool + world.unknown}
    started = time.monotonic()
    for _ in range(world.args.rounds):
        await round_(world, env, by_mask)
    return summary(world, time.monotonic() - started)


def summary(world: World, seconds: float) -> dict[str, Any]:
    """The JSON the script prints."""
    view = redis_view(world.stack)
    by_status: Counter[str] = Counter()
    for counts in world.stack.sandbox("GET", "/_sandbox/state")["requests"].values():
        by_status.update(counts)
    rounds = [this.as_json(i + 1) for i, this in enumerate(world.rounds)]
    acknowledged = sum(1 for e in world.sent if e.acknowledged)
    violations = [f"round {r['round']}: {p}" for r in rounds for p in r["problems"]]
    if acknowledged < len(world.sent):
        violations.append(f"{len(world.sent) - acknowledged} event(s) not answered 202")

    def total(part: str, key: str) -> dict[str, int]:
        return {name: sum(r[part][name][key] for r in rounds) for name in CLASSES}

    found, oracle = total("drift", "found"), total("drift", "oracle")
    return {
        "suite": "reconcile_drift",
        "fault": "out-of-band deletions, additions, expiries and expiry changes of the DNC "
        f"group while syncs ran through {world.args.lost_reply_rate:.0%} lost replies and "
        f"{world.args.error_rate:.0%} 5xx; then reconcile --repair and one sync",
        "times": len(rounds),
        "rounds": len(rounds),
        "numbers": len(world.pool),
        "unknown_numbers": len(world.unknown),
        "events_sent": len(world.sent),
        "acknowledged": acknowledged,
        "lost": account(world.sent, view["watermarks"], view["dead"])["lost"],
        "out_of_band": dict(sorted(world.counts.items())),
        "lost_replies": by_status["504"],
        "errors_5xx": sum(by_status[status] for status in ("500", "502", "503")),
        "drift": {name: {"found": found[name], "oracle": oracle[name]} for name in CLASSES},
        "missed": total("drift", "missed"),
        "false_positives": total("drift", "false_positives"),
        "repair": {k: sum(r["repair"][k] for r in rounds) for k in REPAIR_FIGURES},
        "converged": all(r["converged"] for r in rounds),
        "converge_s": max(r["converge_s"] for r in rounds),
        "seconds": round(seconds, 1),
        "per_round": rounds,
        "violations": violations,
    }


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start_all(seed=str(args.seed))
    start_s = int(time.time())
    world = World(
        stack,
        args,
        random.Random(args.seed),
        numbers(args.numbers),
        numbers(args.unknown, offset=args.numbers),
        (None, *((start_s + days * 86_400) * 1000 for days in EXPIRY_DAYS)),
        last_event_ms=int(time.time() * 1000) - 60_000,
    )
    try:
        result = asyncio.run(scenario(world))
    finally:
        flush_prefect()
    result["config"] = {k: v for k, v in vars(args).items() if k != "prefect_api_url"}
    return result


def flush_prefect() -> None:
    """Send what Prefect's log and event workers of this process still hold while its server
    runs: at exit they would retry a stopped one for over a minute."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, help="numbers that get events (5000; short 300)")
    parser.add_argument("--unknown", type=int, help="numbers never sent (500; short 40)")
    parser.add_argument("--rounds", type=int, help="rounds (4; short 2)")
    parser.add_argument("--batch", type=int, help="numbers per CXone call (50; short 20)")
    parser.add_argument("--lost-reply-rate", type=float, help="answers lost (0.1; short 0.15)")
    parser.add_argument("--error-rate", type=float, help="calls answered 5xx (0.1)")
    parser.add_argument("--seed", type=int, help="random seed (11)")
    args = sized_args(parser, LONG, SHORT, argv)
    if args.numbers < 50 or args.unknown < 2 or args.numbers + args.unknown > 10_000:
        parser.error("need --numbers >= 50, --unknown >= 2 and at most 10,000 numbers in all")
    return args


main = fault_main("dnc-chaos-reconcile-", parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
