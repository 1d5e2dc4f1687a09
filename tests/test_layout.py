"""Package boundaries: the domain core imports no side, the receiver never imports Prefect, and
no product package imports the reliability harness or the benchmarks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> our packages it may import (besides itself)
ALLOWED = {
    "dnc": set(),
    "receiver": {"dnc"},
    "sandbox": {"receiver", "dnc"},  # receiver.asgi plumbing, dnc.settings helpers only
    "tasks": {"dnc"},
    "flows": {"dnc", "tasks"},
    "dnc_sync": {"dnc", "receiver", "sandbox", "flows", "tasks"},
    # the harness drives the product from outside; nothing of the product imports it
    "reliability": {"dnc", "receiver", "sandbox", "flows", "dnc_sync"},
    "bench": {"dnc", "receiver", "sandbox", "flows", "dnc_sync", "reliability"},
}
OURS = {"dnc", "receiver", "sandbox", "dnc_sync", "flows", "tasks", "reliability", "bench"}
# the one module of the core that may import Prefect, inside its functions only: it reads a
# Prefect Secret block when a setting names one (nothing imports Prefect otherwise)
LAZY_PREFECT = {Path("dnc/secret_blocks.py")}


def imported_roots(path: Path) -> set[str]:
    return imported_roots_of(ast.parse(path.read_text(encoding="utf-8")))


def imported_roots_of(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        ours = imported_roots(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {ours}"


@pytest.mark.parametrize("package", ["dnc", "receiver", "sandbox"])
def test_no_prefect_import(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        if path.relative_to(ROOT) not in LAZY_PREFECT:
            assert "prefect" not in imported_roots(path), path


@pytest.mark.parametrize("path", sorted(LAZY_PREFECT))
def test_prefect_is_imported_lazily(path: Path) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    outside_functions = [node for node in tree.body if not isinstance(node, ast.FunctionDef)]
    top_level = ast.Module(body=outside_functions, type_ignores=[])
    assert "prefect" not in imported_roots_of(top_level), path
    assert "prefect" in imported_roots_of(tree), f"{path} no longer needs its exemption"


def test_receiver_process_does_not_load_prefect() -> None:
    code = (
        "import sys, receiver.main, receiver.cli, dnc_sync.cli; sys.exit('prefect' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


PRODUCT = ("dnc", "dnc_sync", "receiver", "sandbox", "flows", "tasks")
MAX_MODULE_LINES = 300


def test_no_product_module_passes_300_lines() -> None:
    # Issue 16: small modules named for what they hold; a module that grows past this is split
    # along its seams (the old module re-exporting its names).
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
