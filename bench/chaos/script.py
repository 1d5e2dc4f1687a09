"""What every chaos script shares: ``bench/harness.py`` (loaded by path), the ``main``
wrapper (one JSON object on stdout, exit 1 when an invariant was violated) and the size
options (``--short`` for CI, the long on-demand size by default)."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeVar

BENCH = Path(__file__).resolve().parent.parent
LOGS = ("redis.log", "sandbox.log", "receiver.log", "prefect.log", "sync.log")
"""The logs a ``Stack`` writes in its folder, whose last lines a failed run prints."""


def load_module(name: str, path: Path) -> ModuleType:
    """Import the file ``path`` as module ``name`` (once). ``bench/`` is not put on
    ``sys.path``: its ``receiver.py`` would shadow the product's ``receiver`` package, which
    the editable install finds only after every ``sys.path`` entry."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_harness = load_module("harness", BENCH / "harness.py")
BenchError: type[RuntimeError] = _harness.BenchError
free_ports: Callable[[int], list[int]] = _harness.free_ports
print_log_tail: Callable[[Path, Sequence[str]], None] = _harness.print_log_tail
run_main = _harness.run_main


class Services(Protocol):
    """What ``chaos_main`` needs of a script's ``Stack``."""

    def stop_all(self) -> None: ...

    def log_tails(self) -> None: ...


S = TypeVar("S", bound=Services)


def chaos_main(
    prefix: str, make_stack: Callable[[Path], S], run: Callable[[S], dict[str, Any]]
) -> int:
    """Run one chaos script through ``harness.run_main`` (temporary folder, everything stopped
    also on Ctrl-C or failure, JSON on stdout). Returns 0, or 1 when the result lists
    ``violations`` (named on stderr, with the logs' last lines) or the run failed; 130 when
    interrupted."""
    result: dict[str, Any] = {}

    def run_and_check(stack: S) -> dict[str, Any]:
        result.update(run(stack))
        if result.get("violations"):
            stack.log_tails()
        return result

    def stop_all(stack: S) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it short
        stack.stop_all()

    code = run_main(prefix, make_stack, run_and_check, stop_all, LOGS)
    if code == 0 and result.get("violations"):
        print("violated:", *result["violations"], sep="\n  ", file=sys.stderr)
        return 1
    return int(code)


def sized_args(
    parser: argparse.ArgumentParser,
    long: dict[str, Any],
    short: dict[str, Any],
    argv: Sequence[str] | None,
) -> argparse.Namespace:
    """Parse ``argv`` with ``--short`` (the CI size) and ``--prefect-api-url`` added: every
    option left out takes its value from ``short`` with ``--short``, else from ``long``."""
    parser.add_argument("--short", action="store_true", help="the short CI size")
    parser.add_argument(
        "--prefect-api-url", default=None, help="use this Prefect server instead of starting one"
    )
    parser.set_defaults(**dict.fromkeys(long))
    args = parser.parse_args(argv)
    sizes = short if args.short else long
    for name, value in long.items():
        if getattr(args, name) is None:
            setattr(args, name, sizes.get(name, value))
    return args
