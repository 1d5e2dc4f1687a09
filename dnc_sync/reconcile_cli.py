"""``dnc-sync reconcile``: compare CXone with this service now (``--repair`` requeues what the
sync can fix), adopt the records an older deployment created (``--adopt``, once), or serve the
reconciliation on a schedule (``serve``).

Exit codes: 0 no drift (adoption: done); 1 drift found; 3 the run could not finish (the sync
lease stayed taken, CXone or Redis failed, the time budget ran out; one line, never a secret);
2 an invalid ``DNC_*`` setting or option.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from dnc.cxone.errors import CxoneError
from dnc.errors import StoreError
from dnc.masking import redact
from dnc.settings import CxoneSettings, ReconcileSettings, RedisSettings, SyncSettings
from dnc_sync.audit_errors import load_settings, redis_failure

app = typer.Typer(
    help="Reconciliation: read CXone back, report drift, repair it; adopt older records.",
    invoke_without_command=True,
)


@app.callback()
def reconcile(
    context: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", help="Requeue the numbers the next sync can fix.")
    ] = False,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Once, after upgrading: mark as this service's the records that match its "
            "acknowledged opt-outs (nothing is compared or repaired).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --adopt: adopt again after a first time.")
    ] = False,
    time_budget_s: Annotated[
        float | None, typer.Option(min=0.1, help="Stop paging after this many seconds.")
    ] = None,
) -> None:
    """Reconcile once now and print the report (exit 1 when drift was found)."""
    if context.invoked_subcommand is not None:
        return
    if force and not adopt:
        raise typer.BadParameter("--force goes with --adopt", param_hint="--force")
    if adopt and repair:
        raise typer.BadParameter("--adopt compares nothing to repair", param_hint="--repair")
    if adopt:
        _adopt(force)
    else:
        _reconcile(repair, time_budget_s)


def _reconcile(repair: bool, time_budget_s: float | None) -> None:
    from dnc.reconcile.lease import LeaseBusy
    from flows.reconcile import ReconcileIncomplete, reconcile_dnc  # Prefect loads only here

    for cls in (RedisSettings, CxoneSettings, SyncSettings, ReconcileSettings):
        load_settings(cls)  # a bad DNC_* setting: exit 2, before Prefect starts
    try:
        report = asyncio.run(reconcile_dnc(repair=repair, time_budget_s=time_budget_s))
    except ValueError as exc:  # a setting the adapter needs is missing
        raise typer.BadParameter(str(exc), param_hint="DNC_CXONE_*") from None
    except (ReconcileIncomplete, LeaseBusy, CxoneError) as exc:
        _fail(str(exc))
    except StoreError as exc:
        _fail(redis_failure(exc, "reach"))
    except Exception as exc:  # one line, exit 3: never taken for "drift found" (exit 1)
        _fail(f"{type(exc).__name__}: {redact(str(exc))}")
    Console().print_json(json.dumps(report))
    drift = report.get("drift")
    if isinstance(drift, dict) and any(drift.values()):
        raise typer.Exit(1)


def _adopt(force: bool) -> None:
    settings = (
        load_settings(RedisSettings),
        load_settings(CxoneSettings),
        load_settings(SyncSettings),
        load_settings(ReconcileSettings),
    )
    from dnc.reconcile.adopt import AlreadyAdopted
    from dnc.reconcile.lease import LeaseBusy

    try:
        report = asyncio.run(_run_adoption(*settings, force=force))
    except AlreadyAdopted as exc:
        Console(stderr=True).print(f"{exc}", markup=False)
        raise typer.Exit(2) from None
    except ValueError as exc:  # a setting the adapter needs is missing
        raise typer.BadParameter(str(exc), param_hint="DNC_CXONE_*") from None
    except (LeaseBusy, CxoneError) as exc:
        _fail(str(exc))
    except StoreError as exc:
        _fail(redis_failure(exc, "reach"))
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {redact(str(exc))}")
    Console().print_json(json.dumps(report))


async def _run_adoption(
    redis_settings: RedisSettings,
    cxone: CxoneSettings,
    sync: SyncSettings,
    settings: ReconcileSettings,
    *,
    force: bool,
) -> dict[str, int]:
    """Adopt under the sync lease; returns the adoption report as a dict."""
    from dnc.cxone.dnc_groups import DncGroupsTarget
    from dnc.cxone.factory import build_http_client, build_reader, build_target
    from dnc.fence import takeover_grace_s
    from dnc.handover import Handover
    from dnc.keys import RedisKeys
    from dnc.pending import PendingQueue
    from dnc.reconcile.adopt import adopt
    from dnc.reconcile.lease import LeaseBusy, SyncLeaseHolder
    from dnc.store import open_redis

    keys = RedisKeys(redis_settings.namespace)
    client, http = open_redis(redis_settings), build_http_client(cxone)
    try:
        target = build_target(cxone, http)
        holder = SyncLeaseHolder(
            PendingQueue(client, keys),
            f"reconcile-adopt-{uuid.uuid4()}",
            ttl_s=sync.lease_ttl_s,
            grace_s=takeover_grace_s(sync, cxone),
            wait_s=settings.lease_wait_s,
            handover=Handover(client, keys),
        )
        async with holder:
            if isinstance(target, DncGroupsTarget):
                await target.transport.retrying(target.endpoints)
            reader = build_reader(target, settings.page_size, settings.page_concurrency)
            report = await adopt(client, keys, reader, force=force)
        if holder.lost:  # a sync may have settled numbers meanwhile: adopt again to be sure
            raise LeaseBusy(f"{holder.lost} during the adoption; run it again with --force")
    finally:
        await http.aclose()
        await client.aclose()
    return dataclasses.asdict(report)


@app.command("serve")
def serve(
    cron: Annotated[str | None, typer.Option(help="Cron schedule (UTC), e.g. '0 3 * * *'.")] = None,
    interval_s: Annotated[
        int | None, typer.Option(min=60, help="Seconds between runs (instead of --cron).")
    ] = None,
) -> None:
    """Serve the reconciliation on a schedule, one run at a time (default: daily at 03:00
    UTC, as deployed from prefect.yaml; with --interval-s the first run comes one interval
    after start, not while a starting stack syncs its first events)."""
    if cron and interval_s:
        raise typer.BadParameter("give --cron or --interval-s, not both", param_hint="--cron")
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.reconcile import reconcile_dnc

    limit = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    if interval_s:  # the first run one interval from now, not at start: it holds the lease
        from prefect.schedules import Interval

        first = datetime.now(UTC) + timedelta(seconds=interval_s)
        schedule = Interval(timedelta(seconds=interval_s), anchor_date=first)
        reconcile_dnc.serve(name="reconcile-dnc", schedule=schedule, global_limit=limit)
    else:
        reconcile_dnc.serve(name="reconcile-dnc", cron=cron or "0 3 * * *", global_limit=limit)


def _fail(line: str) -> NoReturn:
    """Print ``line`` on standard error and exit 3."""
    Console(stderr=True).print(f"reconciliation failed: {line}", markup=False, soft_wrap=True)
    raise typer.Exit(3)
