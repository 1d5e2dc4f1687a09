"""No test module reads the wall clock at import.

A module-level ``NOW = time.time()`` is read when pytest collects the suite; on a slow shared
2-core CI machine the module's tests run minutes later, so "now + 10 minutes" is no longer in
the future (``test_422_future_timestamp`` failed that way on a clean clone). Each test reads
the clock when it runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
CLOCK_CALLS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
}


def module_level_clock_reads(source: str) -> list[int]:
    """Line numbers of wall-clock calls evaluated when the module is imported.

    Calls inside function bodies and lambdas run later and are not counted; default argument
    values and decorators are evaluated at import and are counted.
    """
    found: list[int] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                for outer in (*child.decorator_list, *child.args.defaults, *child.args.kw_defaults):
                    if outer is not None:
                        visit(outer)
                continue
            if isinstance(child, ast.Lambda):
                continue
            visit(child)

    visit(ast.parse(source))
    return found


def test_checker_sees_an_import_time_clock() -> None:
    source = (
        "import time\nfrom datetime import datetime\n"
        "NOW_S = time.time()\n"
        "def later():\n    return time.time()\n"
        "class K:\n    START = datetime.now()\n"
    )
    assert module_level_clock_reads(source) == [3, 7]


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_no_wall_clock_at_import(path: Path) -> None:
    lines = module_level_clock_reads(path.read_text(encoding="utf-8"))
    assert not lines, f"{path.name} reads the wall clock at import on lines {lines}"
