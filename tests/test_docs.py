"""The documentation site stays true: its generated reference pages name everything the code
has (each check is first shown to catch a planted omission), and it builds with --strict."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings

from dnc_sync.cli import app
from dnc_sync.reference.cli import cli_page
from dnc_sync.reference.configuration import configuration_page, constraints, type_name
from dnc_sync.reference.http_api import http_api_page
from dnc_sync.reference.markdown import paragraphs, text
from receiver.openapi import build_document

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dnc", "dnc_sync", "receiver", "sandbox", "flows", "tasks")


def missing(page: str, names: list[str]) -> list[str]:
    """The names the page does not contain."""
    return [name for name in names if name not in page]


def section(page: str, title: str) -> str:
    """The part of the page under the level-2 heading ``title``, up to the next one."""
    start = page.index(f"\n## {title} ")
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else None]


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class in our packages, found in the source: a class based on
    BaseSettings or on another one found (so a subclass of a settings class counts too)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(base).rpartition(".")[2] for base in node.bases]
                    found[node.name] = (module, bases)
    names = {"BaseSettings"}
    while grown := {n for n, (_, bases) in found.items() if names & set(bases)} - names:
        names |= grown
    names.discard("BaseSettings")
    return [getattr(importlib.import_module(found[name][0]), name) for name in sorted(names)]


def settings_variables() -> list[str]:
    return [
        f"`{cls.model_config['env_prefix']}{name.upper()}`"
        for cls in settings_classes()
        for name in cls.model_fields
    ]


def test_the_settings_classes_are_found() -> None:
    names = {cls.__name__ for cls in settings_classes()}
    assert {"ReceiverSettings", "AuditSettings", "SandboxSettings"} <= names, names


def test_a_missing_setting_is_caught() -> None:
    page = configuration_page()
    planted = "\n".join(line for line in page.splitlines() if "`DNC_REDIS_URL`" not in line)
    assert missing(planted, settings_variables()) == ["`DNC_REDIS_URL`"]


def test_configuration_page_names_every_setting() -> None:
    assert missing(configuration_page(), settings_variables()) == []


def test_every_setting_is_described() -> None:
    undescribed = [
        f"{cls.__name__}.{name}"
        for cls in settings_classes()
        for name, field in cls.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undescribed == []


def test_configuration_page_shows_no_secret_default() -> None:
    page = configuration_page()
    secrets = [
        default.get_secret_value()
        for cls in settings_classes()
        for field in cls.model_fields.values()
        if isinstance(default := field.get_default(call_default_factory=True), SecretStr)
        and default.get_secret_value()
    ]
    assert "sandbox-cxone-client-secret-0123456789" in secrets  # the check has teeth
    assert [secret for secret in secrets if secret in page] == []


def commands(command: Any, path: str = "dnc-sync") -> Iterator[tuple[str, Any]]:
    """Each (path, click command) of the typer app, walked here apart from the generator."""
    yield path, command
    for name, subcommand in (getattr(command, "commands", None) or {}).items():
        if not subcommand.hidden:
            yield from commands(subcommand, f"{path} {name}")


def table_names(page_section: str) -> set[str]:
    """The option and argument names in the first column of the section's table rows
    (``-o, --output`` and ``--audit / --no-audit`` name two each)."""
    cells = [line.split("`")[1] for line in page_section.splitlines() if line.startswith("| `")]
    return {name for cell in cells for name in cell.replace(" / ", ", ").split(", ")}


def cli_names() -> dict[str, list[str]]:
    """Each command path's heading and the options and arguments it declares."""
    return {
        f"## `{path}` ": [
            opt
            for param in command.params
            if not getattr(param, "hidden", False)
            for opt in [*param.opts, *param.secondary_opts]
            if param.metavar is None
        ]
        + [param.metavar for param in command.params if param.metavar is not None]
        for path, command in commands(typer.main.get_command(app))
    }


def test_a_missing_command_or_option_is_caught() -> None:
    page = cli_page()
    planted = page.replace("## `dnc-sync audit export` ", "## `dnc-sync audit exports` ")
    headings = list(cli_names())
    assert missing(planted, headings) == ["## `dnc-sync audit export` "]
    planted = page.replace("`--since`", "`--from`")
    planted_section = section(planted, "`dnc-sync audit export`")
    assert "--since" in planted_section  # --until's help names it: a substring check would pass
    assert "--since" not in table_names(planted_section)


def test_cli_page_names_every_command_and_option() -> None:
    page = cli_page()
    names = cli_names()
    assert "## `dnc-sync reconcile serve` " in names
    assert missing(page, list(names)) == []
    for heading, options in names.items():
        title = heading.removeprefix("## ").strip()
        assert set(options) <= table_names(section(page, title)), title


def operations() -> dict[str, list[str]]:
    """Each operation's heading and its response statuses, from the OpenAPI document."""
    return {
        f"## `{method.upper()} {path}` ": [f"| `{status}` |" for status in operation["responses"]]
        for path, methods in build_document()["paths"].items()
        for method, operation in methods.items()
    }


def test_a_missing_path_or_status_is_caught() -> None:
    page = http_api_page()
    planted = page.replace("## `GET /readyz` ", "## `GET /ready` ")
    assert missing(planted, list(operations())) == ["## `GET /readyz` "]
    planted = page.replace("| `409` |", "| `410` |")
    assert missing(section(planted, "`POST /v1/events`"), ["| `409` |"]) == ["| `409` |"]


def test_http_api_page_names_every_path_and_status() -> None:
    page = http_api_page()
    names = operations()
    assert "## `GET /v1/numbers/{number}` " in names
    assert missing(page, list(names)) == []
    for heading, statuses in names.items():
        title = heading.removeprefix("## ").strip()
        assert missing(section(page, title), statuses) == [], title


def test_text_from_the_code_is_escaped_outside_code_spans() -> None:
    assert text("DNC_* <name> `a_*b|c`\n  x") == r"DNC\_\* &lt;name&gt; `a_*b|c` x"
    assert (
        paragraphs("  - first\n  line\n\n  1. second") == r"\- first line" + "\n\n" + r"1\. second"
    )


def test_types_and_bounds_read_as_written() -> None:
    class Example(BaseModel):
        port: int = Field(default=1, ge=1, le=65_535)
        timeout_s: float = Field(default=1.0, gt=0, le=60)
        names: list[str] = Field(default_factory=list, min_length=1)
        mode: Literal["a", "b"] = "a"
        tls: bool | None = None

    fields = Example.model_fields
    assert constraints(fields["port"]) == "1 to 65535"
    assert constraints(fields["timeout_s"]) == "> 0, ≤ 60"
    assert constraints(fields["names"]) == "length ≥ 1"
    assert type_name(fields["names"].annotation) == "list of string"
    assert type_name(fields["mode"].annotation) == "one of `a`, `b`"
    assert type_name(fields["tls"].annotation) == "boolean (optional)"


def test_an_option_that_defaults_to_a_setting_says_which() -> None:
    # `serve --host` is None in code: the reference showed an empty default (newcomer pass)
    rows = [line for line in cli_page().splitlines() if line.startswith("| `--host`")]
    assert rows and all("setting `DNC_" in row for row in rows), rows
    assert "| `--batch-size` | int | setting `DNC_CXONE_BATCH_SIZE` |" in cli_page()


def test_a_block_name_is_shown_as_the_setting_it_is() -> None:
    # a Prefect Secret block's name is not the secret in it: its default (empty) is shown
    rows = [line for line in configuration_page().splitlines() if "_BLOCK` |" in line]
    assert rows and all("*empty*" in row and "not shown" not in row for row in rows), rows


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8")) <= 10_000


def test_site_builds_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("configuration", "cli", "http-api", "runbook"):
        assert (tmp_path / page / "index.html").is_file(), page


def test_help_text_is_reflowed_and_its_markup_rendered() -> None:
    # Docstrings are wrapped at 100 columns; --help reflows them (the newcomer pass found
    # "superseded" and "/ rejected" on two lines, and ``prefect.yaml`` shown raw).
    from typer.testing import CliRunner

    from dnc_sync.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"], terminal_width=200).output
    assert "duplicate / superseded / rejected (by reason)" in top
    serve = runner.invoke(app, ["sync", "serve", "--help"], terminal_width=200).output
    assert "the shape prefect.yaml deploys" in serve and "``" not in serve
    alerts = runner.invoke(app, ["alerts", "install", "--help"], terminal_width=200).output
    assert "BLOCK-TYPE/BLOCK-NAME" in alerts
