"""How ``make test`` shares the suite between pytest-xdist workers (``pytest -n 2``).

A work unit is a whole test module, except that every module of ``tests/flows`` is one unit:
they share a package-scoped Prefect test harness (about 10 s to start), which one worker
should start once, not once for each module it is given. Units go out in collection order,
and :func:`longest_first` puts the slowest module (the whole local stack, about 3 minutes of
mostly waiting on its processes) and then the flow tests at the front, so that they overlap
the many short modules instead of running after them.

Source of the contract: pytest-xdist's ``pytest_xdist_make_scheduler`` hook and its
``LoadScopeScheduling`` (``_split_scope`` names a test's unit).
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

FLOWS = "tests/flows/"
FIRST = ("tests/test_local_stack.py", FLOWS)


class ModuleScheduling(LoadScopeScheduling):
    """LoadScope scheduling with one unit a module and one for all of ``tests/flows``, sent
    in collection order (never re-sorted by size: :func:`longest_first` ordered them)."""

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        config.option.loadscopereorder = False
        super().__init__(config, log)  # type: ignore[arg-type]

    def _split_scope(self, nodeid: str) -> str:
        """The unit of the test ``nodeid`` (``path::name``): ``tests/flows`` for a flow
        test, otherwise its module's path."""
        path = nodeid.split("::", 1)[0]
        return FLOWS if path.startswith(FLOWS) else path


def _rank(item: pytest.Item) -> int:
    nodeid = item.nodeid
    for rank, prefix in enumerate(FIRST):
        if nodeid.startswith(prefix):
            return rank
    return len(FIRST)


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the local stack's module, then the flow tests, then the
    rest, each keeping its collection order (a stable sort, so tests inside a module keep
    theirs)."""
    items.sort(key=_rank)
