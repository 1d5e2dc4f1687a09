"""The sync flow end to end, under one Prefect test harness: events through the receiver into
the real Redis, one flow run, the sandbox (a real socket) holding the oracle's state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest

from dnc.pending import LeaseLost, PendingQueue
from flows.sync import sync_dnc

pytestmark = [
    pytest.mark.socket,
    # Prefect's own client leaves a socket to its temporary test server open; only here.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


async def post(world: dict[str, Any], number: str, action: str, offset_ms: int) -> None:
    response = await world["receiver"].post(
        "/v1/events",
        json={
            "phoneNumber": number,
            "eventName": action,
            "timestamp": world["base_ms"] - 600_000 + offset_ms,
        },
    )
    assert response.status_code == 202, response.text


async def active(world: dict[str, Any]) -> set[str]:
    snapshot = (await world["control"].get("/_sandbox/state")).json()
    return {r["phoneNumber"] for r in snapshot["dncGroups"]["1001"]["active"]}


EVENTS = [  # (number, action, offset): the oracle is the latest action per number
    ("+12025550101", "optOut", 0),
    ("+12025550102", "optOut", 0),
    ("+12025550102", "optIn", 10),
    ("+12025550103", "optIn", 0),
    ("+12025550104", "optOut", 5),
    ("+12025550104", "optIn", 5),  # tie: opt-out wins
    *[(f"+1202555{n:04d}", "optOut", n) for n in range(200, 212)],
]
EXPECTED = {"2025550101", "2025550104", *[f"202555{n:04d}" for n in range(200, 212)]}


async def test_one_run_applies_the_latest_state_of_every_number(
    world: dict[str, Any],
) -> None:
    for number, action, offset in EVENTS:
        await post(world, number, action, offset)
    result = await sync_dnc()
    assert await active(world) == EXPECTED
    assert (await world["queue"].backlog()) == (0, None)
    assert result["claimed"] == 16 and result["applied_opt_outs"] == 14
    assert result["remaining_backlog"] == 0 and result["dead_lettered"] == 0
    rows = await world["redis"].xrange(world["keys"].applications)
    records = [json.loads(row[b"application"]) | {"outcome": row[b"outcome"]} for _, row in rows]
    assert len(records) == 16  # one per pushed number, with CXone's answer and the run
    sent = [r for r in records if r["result"] != "not_owned"]
    assert {(r["outcome"], r["httpStatus"], r["adapter"]) for r in sent} == {
        (b"acknowledged", 200, "dnc-groups")
    }
    assert all(r["flowRunId"] and r["recordId"] == r["number"][-10:] for r in sent)
    # the two opt-ins had no record of ours to remove: settled without a request
    kept = [r for r in records if r["result"] == "not_owned"]
    assert [(r["action"], r["httpStatus"], r["outcome"]) for r in kept] == [
        ("optIn", None, b"acknowledged")
    ] * 2
    assert result["not_owned"] == 2


async def test_opt_in_after_sync_expires_the_record(world: dict[str, Any]) -> None:
    await post(world, "+12025550101", "optOut", 0)
    await sync_dnc()
    await post(world, "+12025550101", "optIn", 50)
    await sync_dnc()
    assert await active(world) == set()


async def test_faults_converge_over_runs_with_nothing_lost(world: dict[str, Any]) -> None:
    for number, action, offset in EVENTS:
        await post(world, number, action, offset)
    await world["control"].post(
        "/_sandbox/faults", json={"error_rate": 0.3, "rate_limit_rps": 20, "seed": 3}
    )
    for _ in range(8):
        with contextlib.suppress(Exception):  # a run may fail when its retries run out
            await sync_dnc()
        if (await world["queue"].backlog())[0] == 0:
            break
    assert (await world["queue"].backlog()) == (0, None)
    assert await active(world) == EXPECTED


async def test_a_permanently_refused_number_is_dead_lettered(world: dict[str, Any]) -> None:
    # +49 30 123456 is 10 digits: in the default format it would name a +1 number
    await post(world, "+49 30 123456", "optOut", 0)
    await post(world, "+12025550101", "optOut", 0)
    result = await sync_dnc()
    assert result["dead_lettered"] == 1
    letters = await world["queue"].dead_letters()
    assert set(letters) == {"+4930123456"} and "e164-digits" in letters["+4930123456"].reason
    assert await active(world) == {"2025550101"}


async def test_a_run_that_dies_after_pushing_is_made_good_by_the_next(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import task

    import flows.sync_push as sync_module

    for number, action, offset in EVENTS:
        await post(world, number, action, offset)

    @task
    async def crash_before_ack(queue: PendingQueue, claims: Any) -> int:
        raise RuntimeError("killed after the push, before the ack")

    original = sync_module.ack_applied
    monkeypatch.setattr(sync_module, "ack_applied", crash_before_ack)
    from flows.sync import SyncBatchesFailed

    with pytest.raises(SyncBatchesFailed, match="left pending") as failed:
        await sync_dnc()  # the run ends Failed, its summary written
    result = failed.value.counters
    assert result["failed_batches"] >= 1 and result["remaining_backlog"] == 16
    assert await active(world) == EXPECTED  # pushed, not acknowledged
    monkeypatch.setattr(sync_module, "ack_applied", original)
    second = await sync_dnc()
    assert (await world["queue"].backlog()) == (0, None)
    assert await active(world) == EXPECTED
    assert second["already_applied"] >= 14 and second["dead_lettered"] == 0


async def test_cli_run_once(world: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from dnc_sync.cli import app

    await post(world, "+12025550101", "optOut", 0)
    # The CLI runs its own event loop: run it in a thread, away from this test's loop.
    result = await asyncio.to_thread(
        CliRunner(env={"COLUMNS": "120"}).invoke, app, ["sync", "run", "--batch-size", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "applied_opt_outs" in result.output
    assert await active(world) == {"2025550101"}


async def test_a_change_waiting_too_long_fails_the_run_as_lagging(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.sync import SyncLagging

    monkeypatch.setenv("DNC_SYNC_LAG_LIMIT_S", "60")
    await post(world, "+12025550101", "optOut", 0)
    # As if it had arrived ten minutes ago and never been applied.
    ten_minutes_ago = int(time.time() * 1000) - 600_000
    await world["redis"].zadd(world["keys"].pending, {"+12025550101": ten_minutes_ago}, xx=True)
    with pytest.raises(SyncLagging, match="oldest pending change has waited 6"):
        await sync_dnc(max_batches=0)  # push nothing: the backlog stays, and so does the lag
    assert (await world["queue"].backlog())[0] == 1


async def test_an_old_backfill_received_now_is_not_lagging(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_SYNC_LAG_LIMIT_S", "60")
    await post(world, "+12025550101", "optOut", -400 * 86_400_000)  # event time: 400 days ago
    counters = await sync_dnc(max_batches=0)
    assert counters["remaining_backlog"] == 1
    assert counters["oldest_pending_age_s"] < 60


async def test_no_batch_is_pushed_once_the_lease_is_lost(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One batch at a time, each taking 1 s; the heartbeat (every 6/3 s) or the fence (an
    # attempt needs 4.5 + 0.5 s of lease) finds the lease gone.
    for name, value in {
        "DNC_SYNC_LEASE_TTL_S": "6",
        "DNC_SYNC_FENCE_MARGIN_S": "0.5",
        "DNC_CXONE_CONNECT_TIMEOUT_S": "0.5",
        "DNC_CXONE_POOL_TIMEOUT_S": "0.5",
        "DNC_CXONE_WRITE_TIMEOUT_S": "1",
        "DNC_CXONE_READ_TIMEOUT_S": "2.5",
        "DNC_CXONE_BATCH_SIZE": "1",
        "DNC_CXONE_MAX_CONCURRENCY": "1",
    }.items():
        monkeypatch.setenv(name, value)
    numbers = [f"+1202555{n:04d}" for n in range(300, 306)]
    for number in numbers:
        await post(world, number, "optOut", 0)
    await world["control"].post("/_sandbox/faults", json={"latency_ms": 1000})

    renewals: list[str] = []

    async def renew(self: PendingQueue, token: str, ttl_ms: int) -> bool:
        renewals.append(token)
        return len(renewals) == 1  # the first renewal holds, then another run took it

    monkeypatch.setattr(PendingQueue, "renew_lease", renew)
    with pytest.raises(LeaseLost):  # the run fails: an operator sees it lost its lease
        await sync_dnc()
    pushed = await active(world)
    assert 1 <= len(pushed) < len(numbers)  # batches after the loss were not pushed
    assert (await world["queue"].backlog())[0] >= len(numbers) - len(pushed)


async def test_a_run_with_nothing_to_do_shows_full_progress(world: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    await sync_dnc()  # empty queue
    async with get_client() as prefect:
        artifacts = await prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dnc-sync-progress"])),
            sort=ArtifactSort.UPDATED_DESC,
            limit=1,
        )
    assert float(artifacts[0].data) == 100.0  # type: ignore[arg-type]


async def test_stuck_numbers_do_not_starve_a_newer_opt_out(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten numbers CXone keeps answering "temporary failure" are the oldest; each claim takes
    # five. They wait out a backoff instead of blocking the claim, so the newer one goes out.
    monkeypatch.setenv("DNC_SYNC_CLAIM_SIZE", "5")
    monkeypatch.setenv("DNC_SYNC_RETRY_BACKOFF_BASE_S", "30")
    stuck = [f"+1202555{n:04d}" for n in range(400, 410)]
    for number in stuck:
        await post(world, number, "optOut", 0)
    await post(world, "+12025550499", "optOut", 1_000)
    await world["control"].post("/_sandbox/faults", json={"failing_numbers": stuck})
    counters = await sync_dnc()
    assert await active(world) == {"2025550499"}
    assert counters["deferred"] == len(stuck)
    queue: PendingQueue = world["queue"]
    assert await queue.deferred_count() == len(stuck)
    assert (await queue.backlog())[0] == len(stuck)  # still waiting, still counted
    assert await queue.dead_letters() == {}
