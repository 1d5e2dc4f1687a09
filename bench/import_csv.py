"""Throughput benchmark of ``dnc-sync import``: a generated CSV into a throwaway Redis.

Usage, from the repository root::

    .venv/bin/python -m bench.import_csv [--rows 1000000] [--invalid-share 0.03]
        [--batch-size 1000] [--workers N] [--seed 20240601]

What it does:

1. Writes ``--rows`` rows (``phoneNumber,eventName,timestamp,region,expiresAt``) to a CSV in a
   temporary directory: distinct valid numbers of the US (national forms, read in the default
   region), GB (national, with ``region``), DE (international) and FR (``tel:`` URIs); ~80%
   opt-outs (a tenth of them with an expiry), event times within the last year, as ISO 8601
   or epoch ms; and ``--invalid-share`` of refused rows (too short, not a number, unknown
   action, bad time, expiry before the event).
2. Starts a throwaway ``redis-server`` on a free 127.0.0.1 port (no RDB, no AOF).
3. Imports the file in this process with ``dnc_sync.importer.import_file``, what the command
   runs (the command adds only option parsing and the progress bar), with as many worker
   processes as the command would use (``--workers`` to choose), and prints one JSON object:
   ``rows``, ``seconds`` (the import's wall time, worker start-up included, generation not),
   ``rows_per_s``, ``counts`` (outcomes and refusals by ``field:reason``), CPU seconds of this
   process (not its workers) and of Redis during the import, and the settings.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from dnc.intake import IntakePolicy
from dnc.keys import RedisKeys
from dnc.store import EventStore, StoreLimits
from dnc.timestamps import iso_utc
from dnc_sync.importer import CsvFormat, auto_workers, import_file
from reliability.processes import run_main
from reliability.services import Services

NAMESPACE = "benchimport"
YEAR_MS = 365 * 86_400_000
US_AREAS = ("202", "212", "312", "415", "617", "713", "305", "404")
INVALID = (
    ("phoneNumber", "555-01"),
    ("phoneNumber", "n/a"),
    ("eventName", "unsubscribe"),
    ("timestamp", "yesterday"),
    ("expiresAt", "before"),
)


def phone(index: int, rng: random.Random) -> tuple[str, str]:
    """A distinct valid number for ``index`` in one of four forms, and its region cell."""
    kind = index % 4
    tail = f"{index // 4:07d}"
    if kind == 0:  # US, national: exchange 2xx-9xx, never N11
        area = US_AREAS[index // 4 % len(US_AREAS)]
        exchange = f"{rng.randrange(2, 10)}{rng.randrange(2, 10)}{rng.randrange(0, 10)}"
        return f"({area}) {exchange}-{tail[-4:]}", ""
    if kind == 1:  # GB London, national, region column
        return f"020 7{tail[:3]} {tail[3:]}", "GB"
    if kind == 2:  # DE Berlin, international
        return f"+49 30 {rng.randrange(2, 10)}{tail}", ""
    return f"tel:+33-1-{tail[:1]}{rng.randrange(1, 10)}-{tail[1:3]}-{tail[3:5]}-{tail[5:]}", ""


def row(index: int, rng: random.Random, now_ms: int, invalid_share: float) -> list[str]:
    """One CSV row: valid, or (with ``invalid_share``) refused for one reason."""
    number, region = phone(index, rng)
    action = "optOut" if rng.random() < 0.8 else "optIn"
    event_ms = now_ms - rng.randrange(60_000, YEAR_MS)
    when = iso_utc(event_ms) if index % 2 else str(event_ms)
    expiry = iso_utc(now_ms + YEAR_MS) if action == "optOut" and rng.random() < 0.1 else ""
    cells = {"phoneNumber": number, "eventName": action, "timestamp": when, "expiresAt": expiry}
    if rng.random() < invalid_share:
        field, value = rng.choice(INVALID)
        if field == "expiresAt":
            value, cells["eventName"] = iso_utc(event_ms - 1), "optOut"
        cells[field] = value
    return [
        cells["phoneNumber"],
        cells["eventName"],
        cells["timestamp"],
        region,
        cells["expiresAt"],
    ]


def generate(path: Path, rows: int, invalid_share: float, seed: int) -> None:
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["phoneNumber", "eventName", "timestamp", "region", "expiresAt"])
        for index in range(rows):
            writer.writerow(row(index, rng, now_ms, invalid_share))


def redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def run_import(url: str, path: Path, batch_size: int, workers: int | None) -> Any:
    store = EventStore(
        aioredis.Redis.from_url(url, socket_timeout=30),
        RedisKeys(NAMESPACE),
        StoreLimits(max_batch=batch_size),
    )
    try:
        return await import_file(
            path,
            CsvFormat(),
            IntakePolicy(default_region="US"),
            store,
            path.with_name("rejects.csv"),
            batch_size=batch_size,
            workers=auto_workers(path) if workers is None else workers,
        )
    finally:
        await store.close()


def run_bench(args: argparse.Namespace, services: Services) -> dict[str, Any]:
    path = services.tmp / "list.csv"
    started = time.monotonic()
    generate(path, args.rows, args.invalid_share, args.seed)
    generated_s = time.monotonic() - started
    services.start_redis()
    client = services.redis(decode_responses=False, socket_timeout=30)
    url = services.redis_url
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    redis_before = redis_cpu_s(client)
    report = asyncio.run(run_import(url, path, args.batch_size, args.workers))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    redis_used = redis_cpu_s(client) - redis_before
    client.close()
    return {
        "rows": report.rows,
        "seconds": round(report.seconds, 2),
        "rows_per_s": round(report.rows_per_s),
        "counts": {
            **dict(report.outcomes),
            **{f"rejected {k}": v for k, v in sorted(report.rejections.items())},
        },
        "cpu_s": {
            "import_process": round(
                cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime,
                2,
            ),
            "redis": round(redis_used, 2),
        },
        "config": {
            "batch_size": args.batch_size,
            "workers": args.workers if args.workers is not None else auto_workers(path),
            "invalid_share": args.invalid_share,
            "seed": args.seed,
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "generate_s": round(generated_s, 1),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark dnc-sync import.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--invalid-share", type=float, default=0.03, help="refused rows")
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per Lua call")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed")
    parser.add_argument(
        "--workers", type=int, default=None, help="judging processes (default: as the command)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 40_000_000 or not 1 <= args.batch_size <= 10_000:
        parser.error("need 1 <= --rows <= 40000000 and 1 <= --batch-size <= 10000")
    if not 0 <= args.invalid_share <= 1:
        parser.error("need 0 <= --invalid-share <= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main("dnc-bench-import-", Services, lambda services: run_bench(args, services))


if __name__ == "__main__":
    sys.exit(main())
