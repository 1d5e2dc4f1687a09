"""``dnc-sync status``'s view of Prefect: the last finished sync run, and the run syncing now
before any has finished (the newcomer pass read "last sync: unknown" while the first run of
``make run`` was draining)."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Completed, Running
from rich.console import Console

from dnc_sync.last_sync import FLOW_NAME, read_last_sync, read_running_sync
from dnc_sync.status import QueueStatus, Status
from dnc_sync.status_cli import render


@flow(name=FLOW_NAME)
def _a_sync_run() -> None:
    """Only its name matters: the runs below are made through the API, never executed."""


async def test_the_run_syncing_now_is_found_and_a_finished_one_is_the_last(harness: None) -> None:
    async with get_client() as prefect:
        running = await prefect.create_flow_run(_a_sync_run, state=Running())
        assert await read_running_sync(prefect) == running.name
        await prefect.set_flow_run_state(running.id, Completed(), force=True)
        last = await read_last_sync(prefect)
        assert last is not None and last.name == running.name and last.state == "Completed"
        assert await read_running_sync(prefect) != running.name


@pytest.mark.parametrize(
    ("running", "error", "said"),
    [
        ("brave-otter", None, "last sync: none finished yet (run brave-otter is syncing now)"),
        (None, None, "last sync: none finished yet"),
        (None, "PREFECT_API_URL is not set", "last sync: unknown (PREFECT_API_URL is not set)"),
    ],
)
def test_status_says_what_it_knows_before_a_run_finished(
    running: str | None, error: str | None, said: str
) -> None:
    queue = QueueStatus(backlog=0, oldest_pending_age_s=0, dead_letters=0, rejected=0,
                        rejected_by_reason={})  # fmt: skip
    report = Status(queue, 3_600, None, error, running_sync=running)
    console = Console(record=True, width=250)
    render(report, console)
    assert said in console.export_text()
