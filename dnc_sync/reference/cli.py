"""The command-line page (``cli.md``): every command of ``dnc-sync``, walked from the typer
application as click sees it, so the page shows what ``--help`` shows.

Typed against small protocols rather than click's classes: typer ships its own copy of click
in some versions and imports the real one in others; both have these members.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import typer

from dnc_sync.reference.markdown import code, heading, paragraphs, slug, table, text

ROOT_NAME = "dnc-sync"
"""The command's name, as ``[project.scripts]`` installs it."""
_SETTING = "setting "  # show_default (typer adds parentheses) of an option a setting defaults
_WIDTH = 100  # usage lines wrap here, whatever the terminal building the site


class Parameter(Protocol):
    """An option or argument of a click command."""

    @property
    def name(self) -> str | None: ...
    @property
    def opts(self) -> list[str]: ...
    @property
    def secondary_opts(self) -> list[str]: ...
    def get_help_record(self, ctx: Any) -> tuple[str, str] | None: ...


class Command(Protocol):
    """A click command or group (a group also has ``commands``)."""

    @property
    def help(self) -> str | None: ...
    @property
    def hidden(self) -> bool: ...
    def get_params(self, ctx: Any) -> Sequence[Parameter]: ...
    def get_usage(self, ctx: Any) -> str: ...
    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any: ...


def root_command() -> Command:
    """The click command behind ``dnc-sync``."""
    from dnc_sync.cli import app

    command: Command = typer.main.get_command(app)
    return command


def walk(
    command: Command, path: str = ROOT_NAME, parent: Any = None
) -> Iterator[tuple[str, Command, Any]]:
    """Each visible command under ``command`` (itself first) with its path and a context made
    without running it (``resilient_parsing``: required options are not asked for)."""
    ctx = command.make_context(
        path.rpartition(" ")[2], [], parent=parent, resilient_parsing=True, terminal_width=_WIDTH
    )
    yield path, command, ctx
    subcommands: Mapping[str, Command] = getattr(command, "commands", None) or {}
    for name, subcommand in subcommands.items():
        if not subcommand.hidden:
            yield from walk(subcommand, f"{path} {name}", ctx)


def command_paths(command: Command | None = None) -> list[str]:
    """Every visible command path, ``dnc-sync`` first (``dnc-sync audit export``, ...)."""
    return [path for path, _, _ in walk(command or root_command())]


def _split_help(help_text: str) -> tuple[str, list[str]]:
    """click's help column, ``text  [default: x; 1<=x<=9; required]``, as the text and the
    bracketed items."""
    body, found, extra = help_text.rpartition("  [")
    if not found and help_text.startswith("[") and help_text.endswith("]"):
        return "", help_text[1:-1].split("; ")
    if not found or not extra.endswith("]"):
        return help_text, []
    return body, extra[:-1].split("; ")


def parameter_row(parameter: Parameter, ctx: Any) -> list[str] | None:
    """One table row (names, type, default, description), or None for a hidden parameter."""
    record = parameter.get_help_record(ctx)
    if record is None:
        return None
    metavar = getattr(parameter, "metavar", None) or ""  # click.Parameter has none
    declared = {*parameter.opts, *parameter.secondary_opts, metavar} - {""}
    tokens = record[0].split(" ")
    named = [t for t in tokens if t == "/" or t.rstrip(",").removesuffix("...") in declared]
    kind = " ".join(t for t in tokens if t not in named).strip("<>") or "flag"
    names = [t.removesuffix("...") for t in named]  # many values: the type says list
    help_text, extras = _split_help(record[1])
    default = next((e.removeprefix("default: ") for e in extras if e.startswith("default: ")), "")
    rest = [e for e in extras if not e.startswith("default: ") and e != "required"]
    described = " ".join([help_text, *(f"({item})" for item in rest)]).strip()
    if parameter.secondary_opts and default and not default.startswith("-"):
        default = f"--{default}"  # a --x / --no-x flag: typer names the default x or no-x
    if default.strip("()").startswith(_SETTING):  # None in code: a setting's value applies
        shown_default = f"setting {code(default.strip('()').removeprefix(_SETTING))}"
    else:
        shown_default = code(default) if default else ""
    if "required" in extras:
        shown_default = "*required*"
    return [code(" ".join(names)), text(kind), shown_default, text(described)]


def command_section(path: str, command: Command, ctx: Any) -> str:
    """One command: heading, help text, usage line and a table of its parameters."""
    usage = command.get_usage(ctx).removeprefix("Usage:").strip()
    rows = [
        row
        for parameter in command.get_params(ctx)
        if parameter.opts != ["--help"] and (row := parameter_row(parameter, ctx)) is not None
    ]
    parts = [heading(2, code(path), slug(path)), paragraphs(command.help)]
    parts.append(f"```text\n{usage}\n```")
    subcommands: Mapping[str, Command] = getattr(command, "commands", None) or {}
    visible = [name for name, subcommand in subcommands.items() if not subcommand.hidden]
    if visible:
        links = [f"[{code(f'{path} {name}')}](#{slug(f'{path} {name}')})" for name in visible]
        parts.append("Commands: " + ", ".join(links) + ".")
    if rows:
        parts.append(table(["Option or argument", "Type", "Default", "Description"], rows))
    return "\n\n".join(part for part in parts if part)


def cli_page(command: Command | None = None) -> str:
    """The whole command-line page, one section per command path."""
    intro = (
        "# Command line\n\nEvery command of `dnc-sync` (also `python -m dnc_sync`); each takes "
        "`--help`. Settings come from the `DNC_*` variables of [Configuration](configuration.md); "
        "options override some of them.\n\nThis page is generated from the command's code "
        "when the site is built."
    )
    sections = [command_section(*item) for item in walk(command or root_command())]
    return "\n\n".join([intro, *sections]) + "\n"
