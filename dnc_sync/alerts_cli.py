"""``dnc-sync alerts``: install, list and remove this service's Prefect automations
(``dnc_sync.alerts``: lagging, dead letters, failed or crashed sync runs, drift), each sending
to a notification block the operator names, for the namespace ``DNC_REDIS_NAMESPACE``.

Automations need a real Prefect API (``PREFECT_API_URL`` of ``prefect server start`` or Prefect
Cloud): the ephemeral API the other commands fall back to runs none. An automation's name is
its identity: installing again updates the same-named ones in place (and deletes duplicates).

Exit codes: 0 done; 2 a bad option or ``DNC_REDIS_*`` setting, ``PREFECT_API_URL`` unset, or a
block that does not exist or cannot send notifications; 3 the Prefect API failed (one line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dnc.settings import RedisSettings
from dnc_sync.audit_errors import load_settings

if TYPE_CHECKING:  # Prefect loads only when a command runs
    from uuid import UUID

    from prefect.client.orchestration import PrefectClient
    from prefect.events.schemas.automations import Automation, AutomationCore

app = typer.Typer(
    help="Prefect automations that notify you: lagging, dead letters, failed runs, drift.",
    no_args_is_help=True,
)
T = TypeVar("T")
PREFECT_TIMEOUT_S = 60.0
"""Bound on one command's Prefect API calls, seconds."""
DEFAULT_REPEAT_AFTER_S = 900
"""Quiet period after an alert fired, seconds (events meanwhile send nothing): a sync failing
every minute notifies every 15 minutes, not every minute."""
BLOCK_HELP = (
    "Notification block as BLOCK-TYPE/BLOCK-NAME, as `prefect block ls` shows it, "
    "e.g. slack-webhook/oncall."
)


class BlockUnusable(Exception):
    """The named block does not exist, or is not a notification block (exit 2)."""


@app.command("install")
def install(
    block: Annotated[str, typer.Option("--block", help=BLOCK_HELP)],
    repeat_after_s: Annotated[
        int,
        typer.Option(
            min=0,
            max=7 * 86_400,
            help="After an alert fires, send nothing for it for this many seconds "
            "(0: one notification per event).",
        ),
    ] = DEFAULT_REPEAT_AFTER_S,
) -> None:
    """Create or update one automation per alert for this namespace, sending to --block."""
    type_slug, name = _block_parts(block)
    namespace = _namespace()
    _require_api()
    done = _run(_install(namespace, type_slug, name, repeat_after_s))
    console = Console()
    for automation_name, outcome in done:
        console.print(f"{outcome} {automation_name}", markup=False)
    console.print(
        f"notifications go to {block}; see them with `dnc-sync alerts list`",
        markup=False,
        soft_wrap=True,
    )


@app.command("list")
def list_alerts() -> None:
    """Show this namespace's automations: state, the events they fire on, their block."""
    namespace = _namespace()
    _require_api()
    rows = _run(_describe_installed(namespace))
    if not rows:
        Console().print(
            f"no dnc-sync alerts installed for namespace {namespace}; install them with: "
            "dnc-sync alerts install --block BLOCK-TYPE/BLOCK-NAME",
            markup=False,
        )
        return
    table = Table("automation", "enabled", "fires on", "quiet (s)", "block")
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command("remove")
def remove() -> None:
    """Delete this namespace's automations (the notification block is kept)."""
    namespace = _namespace()
    _require_api()
    removed = _run(_remove(namespace))
    Console().print(f"removed {removed} automation(s) of namespace {namespace}", markup=False)


def _block_parts(block: str) -> tuple[str, str]:
    """``TYPE/NAME`` split in two; exit 2 for any other shape."""
    type_slug, slash, name = block.partition("/")
    if not (slash and type_slug and name) or "/" in name:
        raise typer.BadParameter(
            f"{block!r} is not <block-type-slug>/<block-name>", param_hint="--block"
        )
    return type_slug, name


def _namespace() -> str:
    """``DNC_REDIS_NAMESPACE`` (exit 2 when a ``DNC_REDIS_*`` setting is invalid)."""
    return load_settings(RedisSettings).namespace


def _require_api() -> None:
    """Exit 2 unless Prefect is configured with a real API (setting or profile)."""
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        _fail(
            "PREFECT_API_URL is not set: automations need a real Prefect API (`prefect "
            "server start`, then PREFECT_API_URL=http://127.0.0.1:4200/api, or Prefect "
            "Cloud); Prefect's temporary API runs no automations",
            2,
        )


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` within ``PREFECT_TIMEOUT_S``; exit 2 for ``BlockUnusable``, 3 when the
    Prefect API fails or does not answer."""

    async def bounded() -> T:
        async with asyncio.timeout(PREFECT_TIMEOUT_S):
            return await work

    try:
        return asyncio.run(bounded())
    except BlockUnusable as exc:
        _fail(str(exc), 2)
    except httpx.HTTPStatusError as exc:
        detail = exc.response.text[:200]
        _fail(f"the Prefect API refused: HTTP {exc.response.status_code} {detail}", 3)
    except (httpx.HTTPError, OSError, TimeoutError) as exc:
        _fail(f"the Prefect API (PREFECT_API_URL) did not answer: {type(exc).__name__}", 3)


async def _install(
    namespace: str, type_slug: str, name: str, repeat_after_s: int
) -> list[tuple[str, str]]:
    """Upsert every automation of ``namespace``; ``(name, "created" | "updated")`` each."""
    from prefect.client.orchestration import get_client

    from dnc_sync.alerts import build_automations

    async with get_client() as client:
        block_id = await _notification_block_id(client, type_slug, name)
        automations = build_automations(namespace, block_id, repeat_after_s)
        return [(each.name, await _upsert(client, each)) for each in automations]


async def _notification_block_id(client: PrefectClient, type_slug: str, name: str) -> UUID:
    """The id of block document ``type_slug/name``; raises ``BlockUnusable`` when there is
    none or its schema lacks the ``notify`` capability."""
    from prefect.exceptions import ObjectNotFound

    try:
        document = await client.read_block_document_by_name(
            name=name, block_type_slug=type_slug, include_secrets=False
        )
    except ObjectNotFound:
        raise BlockUnusable(
            f"no block {type_slug}/{name} in this Prefect API: create it first (see "
            "`prefect block ls`; docs/operating.md, Alerts, shows a custom-webhook block)"
        ) from None
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise BlockUnusable(
            f"block {type_slug}/{name} cannot send notifications: use a notification block "
            "(custom-webhook, slack-webhook, ms-teams-webhook, email, ...)"
        )
    return document.id


async def _upsert(client: PrefectClient, automation: AutomationCore) -> str:
    """Update the automation of the same name in place (deleting any duplicates) or create
    it; ``"updated"`` or ``"created"``."""
    same_name = await client.read_automations_by_name(automation.name)
    if not same_name:
        await client.create_automation(automation)
        return "created"
    await client.update_automation(same_name[0].id, automation)
    for duplicate in same_name[1:]:
        await client.delete_automation(duplicate.id)
    return "updated"


async def _installed(client: PrefectClient, namespace: str) -> list[Automation]:
    """The automations named as ``namespace``'s alerts, in alert order."""
    from prefect.events.filters import AutomationFilter, AutomationFilterName

    from dnc_sync.alerts import automation_names

    names = automation_names(namespace)
    found = await client.read_automations(
        automations=AutomationFilter(name=AutomationFilterName(any_=names))
    )
    return sorted(found, key=lambda each: (names.index(each.name), str(each.id)))


async def _describe_installed(namespace: str) -> list[tuple[str, str, str, str, str]]:
    """One row per installed automation: name, enabled, events, quiet seconds, block."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return [await _describe(client, each) for each in await _installed(client, namespace)]


async def _describe(
    client: PrefectClient, automation: Automation
) -> tuple[str, str, str, str, str]:
    """``automation`` as a table row (the block by ``TYPE/NAME``, or its id when gone)."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger

    trigger = automation.trigger
    events, quiet = "?", "?"
    if isinstance(trigger, EventTrigger):
        events, quiet = ", ".join(sorted(trigger.expect)), f"{trigger.within.total_seconds():.0f}"
    blocks = [
        await _block_label(client, action.block_document_id)
        for action in automation.actions
        if isinstance(action, SendNotification)
    ]
    enabled = "yes" if automation.enabled else "no (paused)"
    return automation.name, enabled, events, quiet, ", ".join(blocks) or "-"


async def _block_label(client: PrefectClient, block_document_id: UUID) -> str:
    """``TYPE/NAME`` of a block document, or ``missing <id>`` when it was deleted."""
    from prefect.exceptions import ObjectNotFound

    try:
        document = await client.read_block_document(block_document_id, include_secrets=False)
    except ObjectNotFound:
        return f"missing {block_document_id}"
    type_slug = document.block_type.slug if document.block_type else "?"
    return f"{type_slug}/{document.name}"


async def _remove(namespace: str) -> int:
    """Delete ``namespace``'s automations; how many there were."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        installed = await _installed(client, namespace)
        for automation in installed:
            await client.delete_automation(automation.id)
        return len(installed)


def _fail(line: str, code: int) -> NoReturn:
    """Print ``line`` on standard error and exit ``code``."""
    Console(stderr=True).print(f"alerts: {line}", markup=False, soft_wrap=True)
    raise typer.Exit(code)
