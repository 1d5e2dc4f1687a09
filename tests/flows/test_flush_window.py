"""A flush is never cancelled for a concurrency slot (issue 14, item 2), at the Prefect API.

The window as it was: with ``concurrency_limit: 1`` and ``CANCEL_NEW``, a worker that picks up
the next scheduled run ahead of its time (its prefetch: ~10 s) moves it to Pending, which takes
the deployment's only slot; a flush (``prefect deployment run``) created in those seconds is
rejected into Cancelled ("Deployment concurrency limit reached.") while no sync runs. The
test replays that at the API of a real Prefect server, first with the old settings (the
cancellation is reproduced), then with ``prefect.yaml``'s sync-dnc deployment as written:
the flush goes to Pending; one-at-a-time is the Redis lease's job (``dnc.handover``)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.states import Pending, Scheduled, StateType

pytestmark = [
    pytest.mark.socket,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def _sync_deployment() -> dict[str, Any]:
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    return next(d for d in document["deployments"] if d["name"] == "sync-dnc")


def _concurrency(spec: dict[str, Any]) -> dict[str, Any]:
    """The create_deployment arguments that ``prefect deploy`` derives from ``spec``."""
    limit = spec.get("concurrency_limit")
    if limit is None:
        return {}
    strategy = ConcurrencyLimitStrategy(limit["collision_strategy"])
    return {
        "concurrency_limit": limit["limit"],
        "concurrency_options": ConcurrencyOptions(collision_strategy=strategy),
    }


async def _flush_after_prefetch(name: str, spec: dict[str, Any]) -> StateType:
    """Deploy ``spec``'s concurrency, let a worker prefetch the next scheduled run (Pending,
    10 s ahead), then create a flush and propose Pending for it; the flush's state after."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("sync-dnc")
        deployment_id = await client.create_deployment(
            flow_id, name, entrypoint="flows/sync.py:sync_dnc", **_concurrency(spec)
        )
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=10)
        scheduled = await client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=soon)
        )
        await client.set_flow_run_state(scheduled.id, Pending())  # the worker's prefetch
        flush = await client.create_flow_run_from_deployment(deployment_id)
        await client.set_flow_run_state(flush.id, Pending())  # the worker submits the flush
        state = (await client.read_flow_run(flush.id)).state
        assert state is not None
        return state.type


async def test_the_old_limit_cancelled_a_flush_made_just_before_a_scheduled_run(
    harness: None,
) -> None:
    old = {"concurrency_limit": {"limit": 1, "collision_strategy": "CANCEL_NEW"}}
    assert await _flush_after_prefetch("sync-dnc-old-shape", old) is StateType.CANCELLED


async def test_prefect_yaml_lets_a_flush_made_just_before_a_scheduled_run_start(
    harness: None,
) -> None:
    spec = _sync_deployment()
    assert await _flush_after_prefetch("sync-dnc-as-deployed", spec) is StateType.PENDING
    assert spec["parameters"]["keep_draining_s"] > max(
        s["interval"] for s in spec["schedules"]
    )  # each run outlives the interval: the next run takes over, no gap between drains
