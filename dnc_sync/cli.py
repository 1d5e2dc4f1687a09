"""``dnc-sync``: the typer application (``dnc-sync --help``)."""

from __future__ import annotations

import typer

from dnc_sync import alerts_cli, archive_cli, audit_cli, dead_letters, reconcile_cli, sync_cli
from dnc_sync.check_cli import check
from dnc_sync.history_cli import history
from dnc_sync.import_cli import import_command
from dnc_sync.replay_cli import replay_command
from dnc_sync.status_cli import status
from receiver.cli import serve
from sandbox.cli import sandbox_command

app = typer.Typer(
    name="dnc-sync",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)


@app.callback()
def main() -> None:
    """Keep a NICE CXone tenant's Do-Not-Call state in step with opt-in/opt-out events."""


app.command("serve")(serve)
app.command("sandbox")(sandbox_command)
app.add_typer(dead_letters.app, name="dead-letters")
app.add_typer(sync_cli.app, name="sync")
app.add_typer(archive_cli.app, name="archive")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(reconcile_cli.app, name="reconcile")
app.add_typer(alerts_cli.app, name="alerts")
app.command("replay")(replay_command)
app.command("status")(status)
app.command("check")(check)
app.command("import")(import_command)
app.command("history")(history)
