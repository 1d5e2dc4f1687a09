"""Give the deployments that ``prefect deploy --all`` made from prefect.yaml the local stack's
intervals (``scripts/run-local``), drop the runs a stopped stack missed, start one sync run at
once, and print the sync interval in effect, in seconds.

Usage: ``local_schedules.py ARCHIVE_INTERVAL_S RECONCILE_INTERVAL_S [SYNC_INTERVAL_S]``, with
``PREFECT_API_URL`` set. Without ``SYNC_INTERVAL_S`` the sync keeps prefect.yaml's schedule
and parameters; with it, each run keeps draining for 2.5 intervals (``keep_draining_s``, as
prefect.yaml's 150 s for its 60 s).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import DeploymentScheduleUpdate, DeploymentUpdate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.schedules import IntervalSchedule

SYNC = "sync-dnc/sync-dnc"
ARCHIVE = "archive-audit/archive-audit"
RECONCILE = "reconcile-dnc/reconcile-dnc"
KEEP_DRAINING_INTERVALS = 2.5


async def set_interval(
    client: PrefectClient, name: str, interval_s: int, parameters: dict[str, Any] | None = None
) -> None:
    """Replace deployment ``name``'s schedules by one every ``interval_s`` seconds (the
    server drops the runs it had scheduled for the old ones), merging in ``parameters``."""
    deployment = await client.read_deployment_by_name(name)
    every = IntervalSchedule(interval=timedelta(seconds=interval_s))
    fields: dict[str, Any] = {"schedules": [DeploymentScheduleUpdate(schedule=every, active=True)]}
    if parameters is not None:
        fields["parameters"] = {**deployment.parameters, **parameters}
    await client.update_deployment(deployment.id, DeploymentUpdate(**fields))


async def drop_missed_runs(client: PrefectClient, names: list[str]) -> int:
    """Delete the runs of deployments ``names`` still scheduled for a time already past (the
    runs a stopped stack missed, kept with its data): the worker would start them all at once.
    Returns how many were deleted."""
    ids = [(await client.read_deployment_by_name(name)).id for name in names]
    missed = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        expected_start_time=FlowRunFilterExpectedStartTime(before_=datetime.now(UTC)),
    )
    deployments = DeploymentFilter(id=DeploymentFilterId(any_=ids))
    count = 0
    while runs := await client.read_flow_runs(
        flow_run_filter=missed, deployment_filter=deployments, limit=200
    ):
        for run in runs:
            await client.delete_flow_run(run.id)
        count += len(runs)
    return count


async def sync_interval_s(client: PrefectClient) -> int:
    """The sync deployment's interval, in seconds (prefect.yaml gives it one schedule)."""
    deployment = await client.read_deployment_by_name(SYNC)
    schedule = deployment.schedules[0].schedule
    if not isinstance(schedule, IntervalSchedule):
        raise SystemExit(f"error: {SYNC} has no interval schedule: {schedule}")
    return int(schedule.interval.total_seconds())


async def main(archive_s: int, reconcile_s: int, sync_s: int | None) -> None:
    async with get_client() as client:
        missed = await drop_missed_runs(client, [SYNC, ARCHIVE, RECONCILE])
        print(f"dropped {missed} run(s) missed while the stack was stopped", file=sys.stderr)
        await set_interval(client, ARCHIVE, archive_s)
        await set_interval(client, RECONCILE, reconcile_s)
        if sync_s is not None:
            keep_s = sync_s * KEEP_DRAINING_INTERVALS
            keep = int(keep_s) if keep_s.is_integer() else keep_s
            await set_interval(client, SYNC, sync_s, {"keep_draining_s": keep})
        interval_s = await sync_interval_s(client)
        # A sync now, as `prefect deployment run` would: the first scheduled one is an
        # interval away, and the replay (or data kept from the last run) is waiting.
        sync = await client.read_deployment_by_name(SYNC)
        await client.create_flow_run_from_deployment(sync.id)
    print(interval_s)


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:]]
    asyncio.run(main(args[0], args[1], args[2] if len(args) > 2 else None))
