"""The README and the hand-written docs stay true: the opening commands, and every `make`
target, `dnc-sync` command and `python -m` module (a benchmark, a fault script) they name
exists."""

from __future__ import annotations

import re
import tomllib
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_SPAN = re.compile(r"`([^`]+)`")
_MAKE = re.compile(r"(?<![\w./-])make\s+([A-Za-z0-9_.-]+)")
_DNC_SYNC = re.compile(r"(?<![\w-])dnc-sync(?![\w-])((?:\s+[a-z][a-z0-9-]*(?![\w.]))*)")
_MODULE = re.compile(r"python -m ([A-Za-z_][\w.]*)")
_TARGET = re.compile(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?!=)", re.M)


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]


def _code(text: str) -> list[str]:
    """The code in a markdown text: each line of its fenced blocks, then each inline span
    (a span may wrap across lines)."""
    lines = [line for block in _FENCE.findall(text) for line in block.splitlines()]
    return lines + _SPAN.findall(_FENCE.sub("", text))


def _named(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(page, what follows the pattern's keyword) for every match in the pages' code."""
    return [
        (page.name, match.group(1))
        for page in PAGES
        for code in _code(page.read_text(encoding="utf-8"))
        for match in pattern.finditer(code)
    ]


def _makefile_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {name for names in _TARGET.findall(makefile) for name in names.split()}


def _cli_root() -> object:
    """The click command of the typer app that pyproject's `dnc-sync` script points to."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    module, _, attribute = pyproject["project"]["scripts"]["dnc-sync"].partition(":")
    app = getattr(import_module(module), attribute)
    assert isinstance(app, typer.Typer)
    return typer.main.get_command(app)


def _unknown_command(root: object, words: list[str]) -> str | None:
    """The first of `words` that is not a subcommand where one is expected, or None. Words
    after a command that takes no subcommands are its arguments."""
    command, path = root, ["dnc-sync"]
    for word in words:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            return None
        if word not in subcommands:
            return " ".join([*path, word])
        command, path = subcommands[word], [*path, word]
    return None


def test_the_pages_name_code_to_check() -> None:
    assert any(name == "README.md" for name, _ in _named(_MAKE))
    assert len(_named(_DNC_SYNC)) > 50


def test_every_make_target_named_exists() -> None:
    targets = _makefile_targets()
    missing = sorted(
        {
            f"{page}: make {target}"
            for page, target in _named(_MAKE)
            if "=" not in target and target not in targets
        }
    )
    assert not missing, f"not targets of the Makefile: {missing}"


@pytest.mark.parametrize("page", [page.name for page in PAGES])
def test_every_dnc_sync_command_named_exists(page: str) -> None:
    root = _cli_root()
    unknown = sorted(
        {
            f"{name}: {wrong}"
            for name, rest in _named(_DNC_SYNC)
            if name == page and (wrong := _unknown_command(root, rest.split())) is not None
        }
    )
    assert not unknown, f"not commands of dnc-sync: {unknown}"


def test_every_python_module_named_exists() -> None:
    named = _named(_MODULE)
    assert any(module.startswith("bench.") for _, module in named)
    missing = sorted({f"{page}: python -m {m}" for page, m in named if find_spec(m) is None})
    assert not missing, f"no such modules: {missing}"
