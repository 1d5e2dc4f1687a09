"""Chaos: the archive killed mid-batch (SIGKILL) and, on PostgreSQL, the database restarted,
under load: every audit stream entry must end up in the audit store exactly once, checked
entry by entry, with nothing recorded as lost.

Usage, from the repository root::

    .venv/bin/python -m reliability.faults.archive_kill [--database postgresql|sqlite]
        [--events 20000] [--write-s 30] [--kills 10] [--db-restarts 2] [--batch 500]
        [--seed 7] [--short]

What it does:

1. Starts a throwaway ``redis-server`` and the database (PostgreSQL: ``scripts/pg-throwaway``,
   fsync off; SQLite: a file, WAL, ``synchronous=FULL``), migrated to the newest schema.
2. A writer records ``--events`` events through ``EventStore.record_many`` over about
   ``--write-s`` seconds, in batches of 50, each with its own eventId and a later time than
   the one before (so each is ``queued`` and adds exactly one audit stream entry).
3. Meanwhile an archiver runs as a separate process (this file with ``--archiver``:
   ``Archiver.run`` in a loop, ``--batch`` entries per transaction); at random moments it is
   SIGKILLed and started again, ``--kills`` times; on PostgreSQL the server is restarted
   ``--db-restarts`` times (alternately ``pg_ctl restart -m immediate``, a crash restart, and
   ``-m fast``).
4. After the writer finished, the last archiver is stopped and one archive run in this
   process drains the stream. Then ``compare``: the ``audit_events`` rows read in stream
   entry id order must be exactly the events written, in the order written (the stream's
   order); none missing (``lost``), none twice (``duplicated``), none unknown, each
   ``queued``. Also: the stream is empty, its ``entries-added`` equals the rows,
   ``audit_archive_gaps`` is empty and the cursor's ``lost`` is 0.

Prints ``{suite, fault, kills, db_restarts, times, events, events_sent, acknowledged, rows,
lost, duplicated, gaps, archived_during_chaos, archiver_failed_runs, violations, ok}``
(``archiver_failed_runs``: archive runs that raised, e.g. while the database restarted);
exits 1 unless ``ok``. The kills land at random moments, so some hit a transaction in
flight and some an idle poll; the figures do not say which.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import func, select

from dnc.audit import schema
from dnc.audit.archive import Archiver
from dnc.audit.database import open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.streams import streams
from dnc.events import Action, StoredEvent
from dnc.keys import RedisKeys
from dnc.store import EventStore, StoreLimits
from reliability.faults.script import fault_main, sized_args
from reliability.processes import HarnessError
from reliability.services import Postgres, Services

MODULE = "reliability.faults.archive_kill"
NAMESPACE = "chaos-archive"
KEYS = RedisKeys(NAMESPACE)
WRITE_BATCH = 50
LONG = {
    "database": "postgresql",
    "events": 20_000,
    "write_s": 30.0,
    "kills": 10,
    "db_restarts": 2,
    "batch": 500,
    "seed": 7,
}
SHORT = LONG | {"events": 3_000, "write_s": 6.0, "kills": 3, "db_restarts": 1}


# -- the check ---------------------------------------------------------------------------------


def compare(written: Sequence[str], archived: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Archived rows ``(status, event_id)`` in stream entry id order against the eventIds
    ``written`` in order: ``lost`` (written, not archived), ``duplicated`` (archived copies
    beyond the first), ``unknown`` (archived, never written), ``not_queued`` (a status other
    than ``queued``) and ``out_of_order`` (positions where the archived order, which is the
    stream's, differs from the written order, counted over the ids both hold once)."""
    wanted = set(written)
    seen = Counter(event_id for _status, event_id in archived)
    once = [event_id for _status, event_id in archived if seen[event_id] == 1]
    expected = [event_id for event_id in written if seen[event_id] == 1]
    return {
        "lost": len(wanted - seen.keys()),
        "duplicated": sum(count - 1 for count in seen.values()),
        "unknown": sum(1 for event_id in seen if event_id not in wanted),
        "not_queued": sum(1 for status, _id in archived if status != "queued"),
        "out_of_order": sum(1 for a, b in zip(once, expected, strict=False) if a != b),
    }


# -- the archiver process ----------------------------------------------------------------------

LEASE_TTL_S = 1.0
"""The archivers' lease, seconds: how long a killed one keeps the next waiting."""


async def archive_forever(redis_url: str, database_url: str, batch: int) -> None:
    """``Archiver.run`` in a loop (what the scheduled flow does, without the pauses); a
    failing run (database restarting) is retried after 0.1 s, as the next flow run would."""
    client = aioredis.Redis.from_url(redis_url, socket_timeout=10)
    engine = open_engine(database_url)
    # A short lease: a killed archiver blocks the next for at most a second (in production
    # 30 s); it is renewed before every batch.
    archiver = Archiver(
        client, engine, streams(KEYS, normaliser("US")), batch=batch, lease_ttl_s=LEASE_TTL_S
    )
    while True:
        try:
            report = await archiver.run(budget_s=5)
        except Exception as exc:  # any failure: try again, as a new run
            print(f"archive run failed: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
            await asyncio.sleep(0.1)
            continue
        if not report.total:
            await asyncio.sleep(0.02)


# -- the run -----------------------------------------------------------------------------------


@dataclass
class ArchiveStack(Services):
    """Redis, the database and the archiver process of one run, and the events written."""

    database: str = "postgresql"
    database_url: str = ""
    events: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.start_redis()
        if self.database == "postgresql":
            self.database_url = self.start_postgres().url
        else:
            self.database_url = f"sqlite:///{self.tmp}/audit.sqlite3"
        engine = open_engine(self.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    def start_archiver(self, batch: int) -> None:
        """This module with ``--archiver``, in a session of its own (``archiver.log``)."""
        command = [sys.executable, "-m", MODULE, "--archiver", self.redis_url, self.database_url]
        self.spawn("archiver", [*command, str(batch)])

    def kill_archiver(self) -> None:
        if "archiver" in self.procs:
            self.reap(self.procs["archiver"])

    @property
    def postgres_server(self) -> Postgres:
        return self.postgres[0]


def stored_event(index: int, base_ms: int) -> StoredEvent:
    """Event ``index``: its own eventId, one of 500 numbers, later than every event before."""
    return StoredEvent(
        eventId=f"archive-kill-{index:07d}",
        eventIdDerived=False,
        e164=f"+1202555{index % 500:04d}",
        action=Action.OPT_OUT if index % 3 else Action.OPT_IN,
        eventMs=base_ms + index,
        receivedMs=base_ms + index,
    )


async def write(stack: ArchiveStack, args: argparse.Namespace) -> None:
    """Record ``args.events`` events, paced over ``args.write_s``; their ids go to
    ``stack.events`` as each batch is recorded (a batch whose call failed is raised)."""
    client = aioredis.Redis.from_url(stack.redis_url, socket_timeout=30)
    store = EventStore(client, KEYS, StoreLimits())
    base_ms = int(time.time() * 1000) - args.events
    pause = args.write_s / max(1, args.events / WRITE_BATCH)
    try:
        for start in range(0, args.events, WRITE_BATCH):
            batch = [
                stored_event(i, base_ms)
                for i in range(start, min(args.events, start + WRITE_BATCH))
            ]
            statuses = await store.record_many(batch)
            if any(status != "queued" for status in statuses):
                raise HarnessError(f"an event was not queued: {set(statuses)}")
            stack.events.extend(event.eventId for event in batch)
            await asyncio.sleep(pause)
    finally:
        await client.aclose()


async def chaos(
    stack: ArchiveStack, args: argparse.Namespace, writing: asyncio.Task[None]
) -> dict[str, Any]:
    """Kill the archiver ``args.kills`` times and restart PostgreSQL ``args.db_restarts``
    times at random moments while ``writing`` runs."""
    rng = random.Random(args.seed)
    restarts = args.db_restarts if stack.database == "postgresql" else 0
    faults = ["kill"] * args.kills + ["restart"] * restarts
    rng.shuffle(faults)
    gap_s = args.write_s / (len(faults) + 1)
    done: Counter[str] = Counter()
    restart_s: list[float] = []
    stack.start_archiver(args.batch)
    for fault in faults:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * gap_s)
        if writing.done():
            break
        if fault == "kill":
            stack.kill_archiver()
            done["kill"] += 1
            stack.start_archiver(args.batch)
        else:
            mode = "immediate" if done["restart"] % 2 == 0 else "fast"
            restart = stack.postgres_server.restart
            restart_s.append(round(await asyncio.to_thread(restart, mode), 2))
            done["restart"] += 1
    await writing
    stack.kill_archiver()  # the last one is stopped the hard way too (not counted)
    return {"kills": done["kill"], "db_restarts": done["restart"], "db_restart_s": restart_s}


async def drain_and_check(stack: ArchiveStack, args: argparse.Namespace) -> dict[str, Any]:
    client = aioredis.Redis.from_url(stack.redis_url, socket_timeout=30)
    engine = open_engine(stack.database_url)
    try:
        with engine.connect() as connection:
            during = connection.execute(
                select(func.count()).select_from(schema.events)
            ).scalar_one()
        archiver = Archiver(
            client, engine, streams(KEYS, normaliser("US")), batch=args.batch,
            lease_ttl_s=LEASE_TTL_S,
        )  # fmt: skip
        final = await archiver.run(budget_s=300)
        while final.skipped:  # the last killed archiver's lease runs out first
            await asyncio.sleep(LEASE_TTL_S / 2)
            final = await archiver.run(budget_s=300)
        info = await client.xinfo_stream(KEYS.audit)
        with engine.connect() as connection:
            rows = [
                (status, event_id)
                for status, event_id in connection.execute(
                    select(schema.events.c.status, schema.events.c.event_id).order_by(
                        schema.events.c.stream_ms, schema.events.c.stream_seq
                    )
                )
            ]
            gaps = connection.execute(select(func.count()).select_from(schema.gaps)).scalar_one()
            cursor_lost = connection.execute(
                select(func.coalesce(func.sum(schema.cursors.c.lost), 0))
            ).scalar_one()
    finally:
        await client.aclose()
        engine.dispose()
    found = compare(stack.events, rows)
    failed_runs = (
        (stack.tmp / "archiver.log").read_text(errors="replace").count("archive run failed")
    )
    return found | {
        "archiver_failed_runs": failed_runs,
        "rows": len(rows),
        "gaps": int(gaps),
        "cursor_lost": int(cursor_lost),
        "stream_left": int(info["length"]),
        "stream_entries_added": int(info["entries-added"]),
        "archived_during_chaos": int(during),
        "archived_by_final_run": final.archived.get("events", 0),
    }


def run(stack: ArchiveStack, args: argparse.Namespace) -> dict[str, Any]:
    stack.start()

    async def both() -> dict[str, Any]:
        writing = asyncio.create_task(write(stack, args))
        faults = await chaos(stack, args, writing)
        return faults | await drain_and_check(stack, args)

    figures = asyncio.run(both())
    events = len(stack.events)
    violations = [
        f"{name}: {figures[name]}"
        for name in ("lost", "duplicated", "unknown", "not_queued", "out_of_order", "gaps",
                     "cursor_lost", "stream_left")
        if figures[name]
    ]  # fmt: skip
    if figures["rows"] != events or figures["stream_entries_added"] != events:
        violations.append(
            f"rows {figures['rows']}, stream entries {figures['stream_entries_added']}, "
            f"events {events}"
        )
    if events != args.events:
        violations.append(f"only {events} of {args.events} events were written")
    return {
        "suite": "archive_kill",
        "fault": f"archive SIGKILLed mid-batch"
        f"{' and PostgreSQL restarted' if stack.database == 'postgresql' else ''} under load "
        f"({stack.database})",
        "database": stack.database,
        "times": figures["kills"] + figures["db_restarts"],
        "events": events,
        "events_sent": events,
        "acknowledged": events,
        **figures,
        "violations": violations,
        "ok": not violations,
    }


def archive_stack(tmp: Path, args: argparse.Namespace) -> ArchiveStack:
    return ArchiveStack(tmp, database=args.database)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"))
    parser.add_argument("--events", type=int)
    parser.add_argument("--write-s", type=float)
    parser.add_argument("--kills", type=int)
    parser.add_argument("--db-restarts", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seed", type=int)
    return sized_args(parser, LONG, SHORT, argv)


def main(argv: list[str] | None = None) -> int:
    """The run, or with ``--archiver REDIS_URL DATABASE_URL BATCH`` one archiver process."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--archiver"]:
        redis_url, database_url, batch = argv[1:4]
        asyncio.run(archive_forever(redis_url, database_url, int(batch)))
        return 0
    return fault_main("dnc-chaos-archive-", parse_args, run, archive_stack)(argv)


if __name__ == "__main__":
    sys.exit(main())
