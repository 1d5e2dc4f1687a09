"""The reliability suite in one command: run every fault, fuzz and secret-scan script, keep
their JSON, and write ``docs/reliability.md`` from it (``report.py``).

    .venv/bin/python -m reliability.suite            # long versions (tens of minutes)
    .venv/bin/python -m reliability.suite --short    # CI sizes, a few minutes
    .venv/bin/python -m reliability.suite --render   # only rewrite the report from the JSON

Each script prints one JSON object on its last stdout line and exits non-zero when an
invariant broke (a loss, a wrong state, a 5xx, a leaked secret). The figures go to
``docs/reliability.json`` (kept in git beside the report, so the report can be checked
against its data) and the table to ``docs/reliability.md``. Exit status: 0 when every suite
passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reliability.processes import run_script
from reliability.report import render

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DATA = DOCS / "reliability.json"
REPORT = DOCS / "reliability.md"


@dataclass(frozen=True)
class Suite:
    """One script of the suite: its ``name``, its module (run as ``python -m``), and the
    extra arguments of its short (CI) size."""

    name: str
    module: str
    short_args: tuple[str, ...] = ()


SUITES = (
    Suite("flow_kill", "reliability.faults.flow_kill", ("--short",)),
    Suite("redis_restart", "reliability.faults.redis_restart", ("--short",)),
    Suite("cxone_faults", "reliability.faults.cxone_faults", ("--short",)),
    Suite("token_expiry", "reliability.faults.token_expiry", ("--short",)),
    Suite("lease_takeover", "reliability.faults.lease_takeover", ("--short",)),
    Suite("replica_cut", "reliability.faults.replica_cut", ("--short",)),
    Suite("soak", "reliability.faults.soak", ("--short",)),
    Suite("archive_kill", "reliability.faults.archive_kill", ("--short",)),
    Suite("reconcile_drift", "reliability.faults.reconcile_drift", ("--short",)),
    Suite("fuzz", "reliability.fuzz_receiver", ("--cases", "2000")),
    Suite("secrets", "reliability.secret_scan", ()),
)


def run_suite(suite: Suite, short: bool) -> dict[str, Any]:
    """Run one script; its last stdout line parsed as JSON, plus ``passed`` (exit status 0)
    and ``wall_s``. A script that printed no JSON gives ``{"error": ...}``."""
    started = time.monotonic()
    result = run_script(suite.module, *(suite.short_args if short else ()))
    wall_s = round(time.monotonic() - started, 1)
    figures = last_json_object(result.stdout)
    if figures is None:
        figures = {"error": (result.stderr or result.stdout)[-2000:]}
    figures.update(suite=suite.name, passed=result.returncode == 0, wall_s=wall_s)
    return figures


def last_json_object(stdout: str) -> dict[str, Any] | None:
    """The last JSON object a script printed, on one line or pretty-printed over several
    (from the last line that starts with ``{``, to the end); ``None`` when there is none."""
    lines = stdout.rstrip().splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            try:
                parsed = json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
            return parsed if isinstance(parsed, dict) else None
    return None


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def main() -> int:
    """Run the suite (or only render), write the JSON and the report; 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI sizes")
    parser.add_argument("--render", action="store_true", help="only rewrite the report")
    parser.add_argument("--only", action="append", default=[], help="run only this suite")
    args = parser.parse_args()
    DOCS.mkdir(exist_ok=True)
    if args.render:
        data = json.loads(DATA.read_text())
    else:
        chosen = [s for s in SUITES if not args.only or s.name in args.only]
        data = {
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _commit(),
            "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}",
            "short": args.short,
            "suites": {},
        }
        for suite in chosen:
            print(f"running {suite.name}...", file=sys.stderr, flush=True)
            figures = run_suite(suite, args.short)
            data["suites"][suite.name] = figures
            print(json.dumps(figures), flush=True)
        DATA.write_text(json.dumps(data, indent=2) + "\n")
    REPORT.write_text(render(data))
    failed = [name for name, s in data["suites"].items() if not s.get("passed")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
