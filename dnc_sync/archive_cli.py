"""``dnc-sync archive``: run the archive-audit flow once now, or serve it on an interval.

Like ``dnc-sync sync``: Prefect's scheduler needs a real API (``prefect server start`` and
``PREFECT_API_URL``).

``run`` exit codes: 0 archived; 1 the archive is lagging, or Redis or the audit store cannot be
reached (one line, checked before Prefect starts; never the database URL or its password);
2 an invalid ``DNC_*`` setting.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from dnc.audit.database import open_engine
from dnc.errors import StoreError
from dnc.keys import RedisKeys
from dnc.settings import AuditSettings, IntakeSettings, RedisSettings
from dnc.store import EventStore, StoreLimits, open_redis
from dnc_sync.audit_errors import database_failure, load_settings, redis_failure

app = typer.Typer(
    help="The archive-audit flow: copy the audit streams into the audit store.",
    no_args_is_help=True,
)


@app.command("run")
def run_once(
    time_budget_s: Annotated[
        float | None, typer.Option(min=0.1, help="Stop copying after this many seconds.")
    ] = None,
) -> None:
    """One archive run now; prints its counts (exit 1 when the archive is lagging or Redis or
    the audit store cannot be reached)."""
    redis_settings, audit = load_settings(RedisSettings), load_settings(AuditSettings)
    load_settings(IntakeSettings)  # the flow reads numbers in DNC_INTAKE_DEFAULT_REGION
    try:
        asyncio.run(_ping_redis(redis_settings))
        _open_store(audit)
    except StoreError as exc:
        _fail(f"error: {redis_failure(exc, 'reach')}")
    except (SQLAlchemyError, OSError) as exc:
        _fail(f"error: {database_failure(exc, 'open')}")

    from dnc.audit.archive_writes import AuditWriteError
    from flows.archive import ArchiveLagging, archive_audit  # Prefect loads only here

    try:
        counts = asyncio.run(archive_audit(time_budget_s=time_budget_s))
    except ArchiveLagging as exc:
        _fail(f"archive lagging: {exc}")
    except StoreError as exc:  # failed midway: nothing unarchived was trimmed
        _fail(f"error: {redis_failure(exc, 'reach')}")
    except SQLAlchemyError as exc:
        _fail(f"error: {database_failure(exc, 'write')}")
    except AuditWriteError as exc:  # already stripped of what the rows held
        _fail(f"error: {exc}")
    Console().print_json(json.dumps(counts))


async def _ping_redis(settings: RedisSettings) -> None:
    """Raise ``StoreError`` unless Redis answers."""
    store = EventStore(
        open_redis(settings), RedisKeys(settings.namespace), StoreLimits.from_settings(settings)
    )
    try:
        await store.ping()
    finally:
        await store.close()


def _open_store(audit: AuditSettings) -> None:
    """Connect to the audit store once, as the flow will (a SQLite file is created, as the
    flow would). Raises SQLAlchemy's errors, or ``OSError`` when the file cannot be made."""
    engine = open_engine(audit.database_url.get_secret_value())
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _fail(line: str) -> NoReturn:
    """Print ``line`` on standard error and exit 1."""
    Console(stderr=True).print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command("serve")
def serve(
    interval_s: Annotated[int, typer.Option(min=5, help="Seconds between runs.")] = 60,
) -> None:
    """Serve the archive on an interval, one run at a time (a run that would overlap is
    cancelled; overlapping runs would still write each entry once)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.archive import archive_audit

    archive_audit.serve(
        name="archive-audit",
        interval=interval_s,
        global_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
    )
