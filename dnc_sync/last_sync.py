"""The last sync run for ``dnc-sync status``: the latest finished run of the sync flow in
Prefect and its summary artifact. Prefect is imported only inside ``read_last_sync``
(``dnc_sync.cli`` loads this module, and must not load Prefect for its other commands)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SUMMARY_KEY = "dnc-sync-summary"
"""Key of the table artifact each sync run writes (``flows/sync.py``)."""
FLOW_NAME = "sync-dnc"
"""Name of the sync flow in Prefect."""


@dataclass(frozen=True, slots=True)
class LastSync:
    """The latest finished sync run: its ``name``, ``state`` (Completed, Failed...),
    ``ended`` (ISO 8601 UTC), ``message`` and its summary counters (metric -> value, empty
    when the run wrote none)."""

    name: str
    state: str
    ended: str | None
    message: str | None
    summary: dict[str, Any] = field(default_factory=dict)


async def read_last_sync(prefect: Any) -> LastSync | None:
    """The latest finished run of the sync flow and its summary artifact, read through
    ``prefect`` (a ``PrefectClient``); ``None`` when no run finished yet. Raises what the
    client raises (``httpx.HTTPError``, ``prefect.exceptions.PrefectHTTPStatusError``)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
    runs = await prefect.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=finished))
        ),
        sort=FlowRunSort.END_TIME_DESC,
        limit=1,
    )
    if not runs:
        return None
    run = runs[0]
    artifacts = await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[SUMMARY_KEY]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
        ),
        limit=1,
    )
    summary = _summary(artifacts[0].data) if artifacts else {}
    state = run.state
    return LastSync(
        name=run.name,
        state=state.name if state is not None else "unknown",
        ended=_iso(run.end_time),
        message=state.message if state is not None else None,
        summary=summary,
    )


async def read_running_sync(prefect: Any) -> str | None:
    """The name of the sync run running now (the latest started; a run keeps draining for
    about 2.5 intervals, so before the first one ends this is the only sign of a sync), or
    ``None``. Raises what ``prefect`` (a ``PrefectClient``) raises."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    runs = await prefect.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
        ),
        sort=FlowRunSort.START_TIME_DESC,
        limit=1,
    )
    return str(runs[0].name) if runs else None


def _summary(data: object) -> dict[str, Any]:
    rows = json.loads(data) if isinstance(data, str) else data
    if not isinstance(rows, list):
        return {}
    return {
        str(row["metric"]): row["value"]
        for row in rows
        if isinstance(row, dict) and {"metric", "value"} <= row.keys()
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
