"""Audit store benchmark: archive throughput, per-number history latency, export rate, on
SQLite and/or PostgreSQL; prints one JSON object.

    .venv/bin/python -m bench.audit [--database sqlite|postgresql|both] [--entries 200000]
        [--history-rows 10000000] [--export-rows 1000000] [--lookups 1000] [--batch 5000]
        [--seed 7] [--quick]

Per database, in a fresh database (SQLite: a file in a temporary folder; PostgreSQL: a
throwaway cluster, ``scripts/pg-throwaway``, fsync off) and a throwaway ``redis-server``:

a. ``archive``: ``--entries`` events with distinct numbers and eventIds are recorded through
   ``EventStore.record_many`` (128 per script call) into a fresh namespace's audit stream,
   timed (``intake_events_per_s``: one client, sequential script calls, no HTTP: the Redis
   side's ceiling, not the receiver's rate); then ``Archiver.run`` (``--batch`` entries per
   transaction, the deployment's default 5,000) is timed from full to empty.
b. ``history``: ``--history-rows`` rows (80 % events, 10 % rejections, 10 % applications,
   over rows / 10 distinct numbers, at most 1M: 10 rows per number at 10M, each number's rows
   scattered over the whole time range) are bulk-loaded straight into the tables the way a DBA
   would: the record tables' secondary indexes dropped (primary keys kept), rows generated in
   primary-key order (SQLite: ``executemany`` on one connection, a transaction per 1M rows,
   ``journal_mode=OFF``/``synchronous=OFF`` on this throwaway file during the load only, then
   back to WAL/FULL; PostgreSQL: ``COPY``), then the indexes created once, exactly as
   ``dnc.audit.schema`` declares them (``Index.create``; PostgreSQL with a session
   ``maintenance_work_mem`` of 512MB), then ``ANALYZE``: load and index build timed apart.
   Then ``--lookups`` random loaded numbers' timelines are read with
   ``dnc.audit.history.timeline`` (newest 200 over the three tables; it checks the schema
   revision on each call, as the CLI does): p50/p99/max ms. The database is warm (just
   loaded).
c. ``export``: ``dnc.audit.export.export_rows`` over a time range holding ``--export-rows``
   of the loaded rows, written by ``write_csv`` to ``/dev/null``: rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Engine, inspect, text

from dnc.audit import schema
from dnc.audit.archive import Archiver
from dnc.audit.database import open_engine, upgrade
from dnc.audit.entries import normaliser
from dnc.audit.export import export_rows
from dnc.audit.export_format import write_csv
from dnc.audit.history import timeline
from dnc.audit.streams import streams
from dnc.events import Action, StoredEvent
from dnc.keys import RedisKeys
from dnc.store import EventStore, StoreLimits
from reliability.processes import HarnessError, run_main
from reliability.services import Services

RECEIVER_DOCUMENTED_PEAK = 10_900
"""The receiver's best measured rate, events/s (README "Performance": 2 workers, WARNING logs,
2-core box). Not measured by this run."""
HISTORY_BASE_MS = 1_704_067_200_000  # 2024-01-01: loaded history stays apart from (a)'s rows
LOAD_CHUNK = 100_000
SQLITE_COMMIT_ROWS = 1_000_000
PG_INDEX_MEMORY = "512MB"
FLOW_RUN_ID = "3f1c2a9e-5d6b-4c1e-9a0b-2c7d8e9f0a1b"
RECORD_CHUNK = 128 * 50


# -- services ----------------------------------------------------------------------------------


def database_url(services: Services, database: str) -> str:
    """A fresh database of kind ``database``."""
    if database == "sqlite":
        return f"sqlite:///{services.tmp}/audit-bench.sqlite3"
    return services.start_postgres().url


# -- (a) archive throughput --------------------------------------------------------------------


def stored_event(index: int, now_ms: int) -> StoredEvent:
    """Event ``index``: its own number and eventId, 80 % opt-outs (a fifth of them expiring)."""
    opt_out = index % 5 != 0
    return StoredEvent(
        eventId=f"bench-audit-{index:09d}-7f3c9a1e",
        eventIdDerived=False,
        e164=f"+1202{index % 10_000_000:07d}",
        action=Action.OPT_OUT if opt_out else Action.OPT_IN,
        eventMs=now_ms - 60_000 + index % 60_000,
        receivedMs=now_ms,
        region="US",
        expiresMs=now_ms + 86_400_000 * 365 if opt_out and index % 25 == 1 else None,
        metadata={"source": "bench", "campaign": f"c{index % 97}"},
    )


async def archive_phase(
    redis_url: str, url: str, namespace: str, entries: int, batch: int
) -> dict[str, Any]:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=60)
    keys = RedisKeys(namespace)
    store = EventStore(client, keys, StoreLimits())
    engine = open_engine(url)
    try:
        await asyncio.to_thread(upgrade, engine)
        now_ms = int(time.time() * 1000)
        record_s = 0.0
        for start in range(0, entries, RECORD_CHUNK):
            chunk = [
                stored_event(i, now_ms) for i in range(start, min(entries, start + RECORD_CHUNK))
            ]
            began = time.perf_counter()
            statuses = await store.record_many(chunk)
            record_s += time.perf_counter() - began
            if any(s != "queued" for s in statuses):
                raise HarnessError(f"an event was not queued: {set(statuses)}")
        length = int(await client.xlen(keys.audit))
        if length != entries:
            raise HarnessError(f"the audit stream holds {length} entries, not {entries}")
        archiver = Archiver(client, engine, streams(keys, normaliser("US")), batch=batch)
        began = time.perf_counter()
        report = await archiver.run(budget_s=3600)
        archive_s = time.perf_counter() - began
        if report.archived.get("events") != entries or not report.drained:
            raise HarnessError(f"archive incomplete: {report}")
        intake = entries / record_s
        archive = entries / archive_s
        return {
            "entries": entries,
            "batch": batch,
            "archive_s": round(archive_s, 2),
            "archive_entries_per_s": round(archive),
            "intake_events_per_s": round(intake),
            "archive_vs_intake": round(archive / intake, 2),
            "archive_vs_receiver_documented": round(archive / RECEIVER_DOCUMENTED_PEAK, 2),
        }
    finally:
        await client.aclose()
        engine.dispose()


# -- (b) history latency -----------------------------------------------------------------------

EVENT_COLUMNS = ("stream_ms", "stream_seq", "status", "number", "action", "event_id",
                 "event_ms", "received_ms", "expires_ms", "event")  # fmt: skip
REJECTION_COLUMNS = ("stream", "stream_ms", "stream_seq", "received_ms", "status", "error",
                     "number", "source", "fields")  # fmt: skip
APPLICATION_COLUMNS = ("stream_ms", "stream_seq", "number", "action", "event_id", "event_ms",
                       "received_ms", "expires_ms", "requested_ms", "settled_ms", "outcome",
                       "result", "reason", "http_status", "record_id", "adapter",
                       "flow_run_id")  # fmt: skip


def number_order(total: int, seed: int) -> tuple[int, int]:
    """``(a, b)`` of the bijection ``i -> (a * i + b) % total`` that scatters row ``i`` to slot
    ``j``: ``a`` near ``total`` times the golden ratio, coprime with ``total``."""
    a = max(1, int(total * 0.6180339887498949))
    while math.gcd(a, total) != 1:
        a += 1
    return a, random.Random(seed).randrange(total)


def history_rows(
    total: int, numbers: int, seed: int, seen: bytearray
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """``total`` rows as (table name, values in that table's column order), in primary-key
    order: row ``i`` is at ``HISTORY_BASE_MS + i`` (unique ids, time order); rows 8 and 9 of
    every 10 are a rejection and an application. Row ``i``'s number is slot
    ``j = (a * i + b) % total`` (a bijection, ``number_order``) cut into ``numbers`` runs of
    consecutive slots: every number gets ``total / numbers`` rows (10 by default) spread over
    the whole time range and, when 10 divides ``total``, all three kinds. Each number used is
    marked in ``seen``."""
    a, b = number_order(total, seed)
    for i in range(total):
        ms = HISTORY_BASE_MS + i
        n = (a * i + b) % total * numbers // total
        seen[n] = 1
        e164 = f"+1303{n:07d}"
        action = "optOut" if i % 3 else "optIn"
        event_id = f"hist-{i:010d}"
        kind = i % 10
        if kind == 8:
            fields = (
                f'{{"phoneNumber":"{e164}","error":"invalid_event_time","detail":"eventTime is '
                f'in the future","receivedMs":"{ms}","status":"422","source":"receiver"}}'
            )
            yield "audit_rejections", ("rejected", ms, 0, ms, 422, "invalid_event_time", e164,
                                       "receiver", fields)  # fmt: skip
        elif kind == 9:
            yield "audit_applications", (ms, 0, e164, action, event_id, ms - 5000, ms - 4000, None,
                                         ms - 500, ms, "acknowledged", "Success", "", 200,
                                         f"rec-{i}", "cxone", FLOW_RUN_ID)  # fmt: skip
        else:
            event = (
                f'{{"eventId":"{event_id}","eventIdDerived":false,"e164":"{e164}",'
                f'"action":"{action}","eventMs":{ms - 2000},"receivedMs":{ms},"region":"US",'
                f'"metadata":{{"source":"bench","campaign":"c{i % 97}"}}}}'
            )
            yield "audit_events", (ms, 0, "queued", e164, action, event_id, ms - 2000, ms,
                                   None, event)  # fmt: skip


COLUMNS = {
    "audit_events": EVENT_COLUMNS,
    "audit_rejections": REJECTION_COLUMNS,
    "audit_applications": APPLICATION_COLUMNS,
}
RECORD_TABLES = (schema.events, schema.rejections, schema.applications)


def chunks(
    rows: Iterator[tuple[str, tuple[Any, ...]]],
) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """``rows`` grouped per table, ``LOAD_CHUNK`` rows at a time (bounded memory)."""
    while True:
        chunk: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
        taken = 0
        for name, values in rows:
            chunk[name].append(values)
            taken += 1
            if taken == LOAD_CHUNK:
                break
        if not taken:
            return
        yield chunk


def drop_indexes(engine: Engine) -> list[str]:
    """Drop the record tables' secondary indexes (``dnc.audit.schema``; primary keys stay);
    their names."""
    names = []
    with engine.begin() as connection:
        for table in RECORD_TABLES:
            names += [str(ix["name"]) for ix in inspect(connection).get_indexes(table.name)]
            for index in table.indexes:
                index.drop(connection)
        left = [ix for t in RECORD_TABLES for ix in inspect(connection).get_indexes(t.name)]
    if left:
        raise HarnessError(f"indexes left after dropping: {left}")
    return sorted(names)


def create_indexes(engine: Engine) -> dict[str, float]:
    """Create the record tables' indexes exactly as ``dnc.audit.schema`` declares them
    (``Index.create``), one transaction each; seconds per index. PostgreSQL builds them with
    ``maintenance_work_mem`` at ``PG_INDEX_MEMORY`` (this session only)."""
    seconds = {}
    for table in RECORD_TABLES:
        for index in sorted(table.indexes, key=lambda ix: [c.name for c in ix.columns]):
            began = time.perf_counter()
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SET LOCAL maintenance_work_mem = '{PG_INDEX_MEMORY}'"
                    )
                index.create(connection)
            name = f"{table.name}({', '.join(c.name for c in index.columns)})"
            seconds[name] = round(time.perf_counter() - began, 1)
    return seconds


def load_history(engine: Engine, total: int, numbers: int, seed: int) -> dict[str, Any]:
    """Bulk-load ``history_rows`` into the record tables (their secondary indexes dropped):
    rows per table and the distinct numbers used."""
    counts = dict.fromkeys(COLUMNS, 0)
    seen = bytearray(numbers)
    loaded = chunks(history_rows(total, numbers, seed, seen))
    if engine.dialect.name == "postgresql":
        copy_chunks(engine, loaded, counts)
    else:
        sqlite_chunks(engine, loaded, counts)
    return {"rows_by_table": counts, "distinct_numbers": numbers - seen.count(0)}


def insert_sql(name: str) -> str:
    """``INSERT`` of a whole row of table ``name`` (one of ``COLUMNS``), ``?`` placeholders."""
    names, marks = ", ".join(COLUMNS[name]), ", ".join("?" * len(COLUMNS[name]))
    return f"INSERT INTO {name} ({names}) VALUES ({marks})"  # noqa: S608 (constants only)


def sqlite_chunks(
    engine: Engine, loaded: Iterator[dict[str, list[tuple[Any, ...]]]], counts: dict[str, int]
) -> None:
    """``executemany`` the chunks on one connection, a transaction per ``SQLITE_COMMIT_ROWS``
    rows, with ``journal_mode=OFF`` and ``synchronous=OFF`` (the bench's throwaway file, during
    the load only); then back to ``open_engine``'s WAL and ``synchronous=FULL``."""
    raw = engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        connection.commit()
        pragma(connection, "journal_mode", "OFF", "off")
        pragma(connection, "synchronous", "OFF", 0)
        pending = 0
        for chunk in loaded:
            for name, values_list in chunk.items():
                if values_list:
                    connection.executemany(insert_sql(name), values_list)
                    counts[name] += len(values_list)
                    pending += len(values_list)
            if pending >= SQLITE_COMMIT_ROWS:
                connection.commit()
                pending = 0
        connection.commit()
        pragma(connection, "journal_mode", "WAL", "wal")
        pragma(connection, "synchronous", "FULL", 2)
    finally:
        raw.close()


def pragma(connection: Any, name: str, value: str, expected: object) -> None:
    """Set SQLite's ``PRAGMA name=value``; raises ``HarnessError`` unless it reads ``expected``."""
    connection.execute(f"PRAGMA {name}={value}").fetchall()
    found = connection.execute(f"PRAGMA {name}").fetchone()[0]
    if found != expected:
        raise HarnessError(f"PRAGMA {name} is {found!r}, not {expected!r}")


def copy_chunks(
    engine: Engine, loaded: Iterator[dict[str, list[tuple[Any, ...]]]], counts: dict[str, int]
) -> None:
    """``COPY`` the chunks in (psycopg 3) on one connection, one transaction per chunk."""
    raw = engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        for chunk in loaded:
            with connection.cursor() as cursor:
                for name, values_list in chunk.items():
                    if values_list:
                        with cursor.copy(
                            f"COPY {name} ({', '.join(COLUMNS[name])}) FROM STDIN"
                        ) as copy:
                            for values in values_list:
                                copy.write_row(values)
                        counts[name] += len(values_list)
            connection.commit()
    finally:
        raw.close()


def history_phase(url: str, total: int, lookups: int, seed: int) -> dict[str, Any]:
    engine = open_engine(url)
    try:
        numbers = max(1, min(1_000_000, total // 10))
        dropped = drop_indexes(engine)
        began = time.perf_counter()
        loaded = load_history(engine, total, numbers, seed)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        index_s = create_indexes(engine)
        index_build_s = time.perf_counter() - began
        with engine.connect() as connection:
            created = sorted(
                str(ix["name"])
                for t in RECORD_TABLES
                for ix in inspect(connection).get_indexes(t.name)
            )
        if created != dropped:
            raise HarnessError(f"indexes after the load {created}, before {dropped}")
        began = time.perf_counter()
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        analyze_s = time.perf_counter() - began
        rng = random.Random(seed + 1)
        timings, counts = [], []
        for _ in range(lookups):
            e164 = f"+1303{rng.randrange(numbers):07d}"
            began = time.perf_counter()
            entries = timeline(engine, e164)
            timings.append((time.perf_counter() - began) * 1000)
            if not entries:
                raise HarnessError(f"no timeline for {e164}, a number that was loaded")
            counts.append(len(entries))
        timings.sort()
        postgresql = engine.dialect.name == "postgresql"
        return {
            "rows": total,
            **loaded,
            "rows_per_number": round(total / numbers, 1),
            "load_s": round(load_s, 1),
            "load_rows_per_s": round(total / load_s),
            "load_method": (
                f"COPY (psycopg), one transaction per {LOAD_CHUNK} rows"
                if postgresql
                else f"executemany, one transaction per {SQLITE_COMMIT_ROWS} rows, "
                "journal_mode=OFF and synchronous=OFF during the load only (then WAL, FULL)"
            )
            + ", rows in primary-key order, secondary indexes dropped",
            "indexes": created,
            "index_build_s": round(index_build_s, 1),
            "index_build_s_by_index": index_s,
            "index_build_method": "dnc.audit.schema Index.create after the load"
            + (f", maintenance_work_mem={PG_INDEX_MEMORY}" if postgresql else ""),
            "analyze_s": round(analyze_s, 1),
            "query": "dnc.audit.history.timeline(engine, e164) (limit 200; schema check per call)",
            "lookups": lookups,
            "lookup_sample": "uniform over the loaded numbers (every one has rows)",
            "entries_per_lookup": {
                "mean": round(statistics.fmean(counts), 1) if counts else 0,
                "min": min(counts, default=0),
                "max": max(counts, default=0),
            },
            "p50_ms": round(statistics.median(timings), 2) if timings else None,
            "p99_ms": (
                round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2)
                if timings
                else None
            ),
            "max_ms": round(timings[-1], 2) if timings else None,
        }
    finally:
        engine.dispose()


# -- (c) export --------------------------------------------------------------------------------


def export_phase(url: str, rows: int) -> dict[str, Any]:
    engine = open_engine(url)
    try:
        began = time.perf_counter()
        with open(os.devnull, "w", newline="", encoding="utf-8") as sink:
            written = write_csv(export_rows(engine, HISTORY_BASE_MS, HISTORY_BASE_MS + rows), sink)
        export_s = time.perf_counter() - began
        if written != rows:
            raise HarnessError(f"exported {written} rows, expected {rows}")
        return {
            "rows": written,
            "method": "dnc.audit.export.export_rows + write_csv to /dev/null",
            "export_s": round(export_s, 2),
            "rows_per_s": round(written / export_s),
        }
    finally:
        engine.dispose()


def size_on_disk(url: str, services: Services) -> dict[str, float]:
    if url.startswith("sqlite"):
        files = [services.tmp / f"audit-bench.sqlite3{suffix}" for suffix in ("", "-wal", "-shm")]
        return {
            "sqlite_file_mb": round(sum(f.stat().st_size for f in files if f.exists()) / 1e6, 1)
        }
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            size = connection.execute(
                text("SELECT pg_database_size(current_database())")
            ).scalar_one()
        return {"postgresql_database_mb": round(int(size) / 1e6, 1)}
    finally:
        engine.dispose()


# -- main --------------------------------------------------------------------------------------


def run(services: Services, args: argparse.Namespace) -> dict[str, Any]:
    services.start_redis()
    redis_url = services.redis_url
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    export_rows_count = min(args.export_rows, args.history_rows)
    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores",
        "sizes": {
            "entries": args.entries,
            "history_rows": args.history_rows,
            "export_rows": export_rows_count,
            "lookups": args.lookups,
        },
        "note": (
            "intake_events_per_s is how fast EventStore.record_many (one client, 128 events "
            "per Lua call, sequential, no HTTP) filled the audit stream on this redis-server: "
            "the Redis side's ceiling for one writer, measured in this run; the receiver's "
            f"documented peak ({RECEIVER_DOCUMENTED_PEAK} events/s, README Performance, 2 "
            "workers) was not measured here. Redis, the database and this process share the "
            "same cores; PostgreSQL runs with fsync=off (throwaway cluster), SQLite with "
            "synchronous=FULL in WAL mode (the history bulk load alone runs with "
            "journal_mode=OFF, synchronous=OFF). History lookups run on a warm cache right after "
            "the load."
        ),
        "databases": {},
    }
    for index, database in enumerate(databases):
        print(f"{database}: preparing", file=sys.stderr, flush=True)
        url = database_url(services, database)
        figures: dict[str, Any] = {}
        print(f"{database}: archive of {args.entries} entries", file=sys.stderr, flush=True)
        figures["archive"] = asyncio.run(
            archive_phase(redis_url, url, f"bench-audit-{index}", args.entries, args.batch)
        )
        print(f"{database}: loading {args.history_rows} history rows", file=sys.stderr, flush=True)
        figures["history"] = history_phase(url, args.history_rows, args.lookups, args.seed)
        print(f"{database}: export of {export_rows_count} rows", file=sys.stderr, flush=True)
        figures["export"] = export_phase(url, export_rows_count)
        figures["size"] = size_on_disk(url, services)
        result["databases"][database] = figures
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--history-rows", type=int, default=10_000_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=5_000, help="archive batch (entries)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.entries = min(args.entries, 5_000)
        args.history_rows = min(args.history_rows, 50_000)
        args.export_rows = min(args.export_rows, 20_000)
        args.lookups = min(args.lookups, 200)
    return run_main("dnc-bench-audit-", Services, lambda services: run(services, args))


if __name__ == "__main__":
    sys.exit(main())
