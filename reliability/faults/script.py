"""What every fault script shares: its ``main`` (``processes.run_main``: a temporary folder,
everything stopped also on Ctrl-C or failure, one JSON object on stdout, exit 1 when an
invariant was violated) and its size options (``--short`` for CI, the long on-demand size by
default)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from reliability.faults.stack import Stack
from reliability.processes import Stoppable, run_main

S = TypeVar("S", bound=Stoppable)


class Main(Protocol):
    """A script's ``main``: its arguments (``None``: the command line), its exit code."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


def stack_of(tmp: Path, args: argparse.Namespace) -> Stack:
    """A ``Stack`` in ``tmp``, on the Prefect server ``--prefect-api-url`` names if any."""
    return Stack(tmp, prefect_api_url=args.prefect_api_url)


def fault_main(
    prefix: str,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[S, argparse.Namespace], dict[str, Any]],
    make: Callable[[Path, argparse.Namespace], S] = stack_of,  # type: ignore[assignment]
    indent: int | None = 2,
) -> Main:
    """A script's ``main(argv)``: parse ``argv``, ``make`` what it starts in a temporary
    folder named ``prefix...``, ``run`` it (``run_main``); returns the exit code."""

    def main(argv: list[str] | None = None) -> int:
        args = parse_args(argv)
        return run_main(
            prefix, lambda tmp: make(tmp, args), lambda stack: run(stack, args), indent=indent
        )

    return main


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
