"""The sync flow as deployed: a run that keeps draining, woken by Redis as events arrive, that
hands the drain over to a newer run, and the states and log lines an operator reads. Real
Redis, the sandbox over a socket, one Prefect test harness for the package."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.objects import State

from dnc.handover import Handover, lease_token
from flows.sync import DEAD_LETTERED_STATE, JOINED_STATE, sync_dnc
from tests.flows.test_sync_flow import active, post

pytestmark = [
    pytest.mark.socket,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


async def _holder(world: dict[str, Any]) -> str | None:
    value = await world["redis"].get(world["keys"].sync_lease)
    return None if value is None else value.decode()


async def _until(check: Any, timeout_s: float = 30.0) -> None:
    """Poll ``check()`` (async, truthy when done) on a generous clock: CI is slow."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_a_draining_run_applies_opt_outs_that_arrive_while_it_runs(
    world: dict[str, Any],
) -> None:
    # Nothing pending when it starts: a drain-once run would end at once and apply nothing.
    run = asyncio.create_task(sync_dnc(keep_draining_s=30))
    await _until(lambda: _holder(world))
    await post(world, "+12025550301", "optOut", 0)
    await _until(lambda: _has(world, "2025550301"))
    await post(world, "+12025550302", "optOut", 0)
    await _until(lambda: _has(world, "2025550302"))
    assert not run.done()  # applied by the run that was already waiting, not a new one
    run.cancel()
    with _quiet():
        await asyncio.gather(run, return_exceptions=True)


async def _has(world: dict[str, Any], digits: str) -> bool:
    return digits in await active(world)


async def test_a_newer_run_takes_the_drain_over_and_goes_on(world: dict[str, Any]) -> None:
    first = asyncio.create_task(sync_dnc(keep_draining_s=60))
    await _until(lambda: _holder(world))
    first_token = await _holder(world)
    second = asyncio.create_task(sync_dnc(keep_draining_s=3))
    counters = await asyncio.wait_for(first, timeout=60)  # it hands over long before 60 s
    assert counters["ended"] == "handed over"
    await _until(lambda: _taken_over(world, first_token))
    await post(world, "+12025550303", "optOut", 0)
    await _until(lambda: _has(world, "2025550303"))  # the new holder drains
    later = await asyncio.wait_for(second, timeout=60)
    assert later["ended"] == "budget spent" and later["claimed"] == 1


async def _taken_over(world: dict[str, Any], old: str | None) -> bool:
    holder = await _holder(world)
    return holder is not None and holder != old


async def test_a_drain_once_run_joins_the_run_draining(world: dict[str, Any]) -> None:
    draining = asyncio.create_task(sync_dnc(keep_draining_s=60))
    await _until(lambda: _holder(world))
    state: State[Any] = await sync_dnc(return_state=True)  # type: ignore[call-overload]
    assert state.is_completed() and state.name == JOINED_STATE
    counters = await state.result()  # type: ignore[misc]
    assert counters["ended"] == "joined" and counters["claimed"] == 0
    assert not draining.done()
    draining.cancel()
    with _quiet():
        await asyncio.gather(draining, return_exceptions=True)


async def test_a_run_that_dead_letters_ends_in_a_state_of_its_own(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    await post(world, "+49 30 123456", "optOut", 0)  # 10 digits: refused in this format
    await post(world, "+12025550101", "optOut", 0)
    with caplog.at_level(logging.INFO):
        state: State[Any] = await sync_dnc(return_state=True)  # type: ignore[call-overload]
    assert state.is_completed() and state.name == DEAD_LETTERED_STATE
    async with get_client() as prefect:
        run = await prefect.read_flow_run(state.state_details.flow_run_id)  # type: ignore[arg-type]
    assert "dead-letters" in run.tags  # shown in the UI's run lists
    assert state.message is not None and "1 number(s) dead-lettered" in state.message
    assert "e164-digits" in state.message and "4930123456" not in state.message
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("dead-lettered" in line for line in warnings)
    summaries = [r.getMessage() for r in caplog.records if "sync run summary" in r.getMessage()]
    assert len(summaries) == 1 and "dead-lettered 1" in summaries[0]


async def test_a_clean_run_is_plain_completed_with_one_summary_line(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    await post(world, "+12025550101", "optOut", 0)
    with caplog.at_level(logging.INFO):
        state: State[Any] = await sync_dnc(return_state=True)  # type: ignore[call-overload]
    assert state.is_completed() and state.name == "Completed"
    summaries = [r.getMessage() for r in caplog.records if "sync run summary" in r.getMessage()]
    assert len(summaries) == 1 and "ended backlog empty" in summaries[0]


async def test_refused_credentials_are_said_in_the_runs_log(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DNC_CXONE_ACCESS_KEY_SECRET", "not-the-sandbox-secret-0123456789")
    await post(world, "+12025550101", "optOut", 0)
    with caplog.at_level(logging.INFO):
        state: State[Any] = await sync_dnc(return_state=True)  # type: ignore[call-overload]
    assert state.is_failed()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("CXone refused the credentials" in line for line in errors)
    summaries = [r.getMessage() for r in caplog.records if "sync run summary" in r.getMessage()]
    assert len(summaries) == 1 and "ended credentials refused" in summaries[0]
    assert not any("not-the-sandbox-secret" in r.getMessage() for r in caplog.records)
    assert (await world["queue"].backlog())[0] == 1  # still pending


class _quiet:
    """Silence the cancelled run's teardown noise in the test's output."""

    def __enter__(self) -> None:
        logging.disable(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        logging.disable(logging.NOTSET)


async def test_a_run_that_handed_over_to_a_newcomer_that_died_takes_the_drain_back(
    world: dict[str, Any],
) -> None:
    # A newcomer asks for the drain, then dies before taking the lease: the holder must not
    # leave the drain to nobody until the next scheduled run.
    run = asyncio.create_task(sync_dnc(keep_draining_s=30))
    await _until(lambda: _holder(world))
    ghost = Handover(world["redis"], world["keys"])
    await ghost.announce(lease_token("ghost", keep=True))  # and never takes the lease
    await asyncio.sleep(3.5)  # the announcement lapses (3 s) while the holder confirms
    await post(world, "+12025550305", "optOut", 0)
    await _until(lambda: _has(world, "2025550305"))
    assert not run.done()  # still draining: it took the drain back
    run.cancel()
    with _quiet():
        await asyncio.gather(run, return_exceptions=True)


async def test_a_drain_once_run_waits_its_turn_behind_one_that_drains_once(
    world: dict[str, Any],
) -> None:
    # A drain-once holder (say --max-batches 1) may stop before the rest: a flush behind it
    # waits for the lease and drains, instead of joining and leaving the work pending.
    queue = world["queue"]
    holder = lease_token("other", keep=False)
    assert await queue.acquire_lease(holder, 60_000)
    await post(world, "+12025550306", "optOut", 0)
    flush = asyncio.create_task(sync_dnc())
    await asyncio.sleep(1.0)
    assert not flush.done()  # waiting its turn, not joined
    await queue.release_lease(holder)
    counters = await asyncio.wait_for(flush, timeout=60)
    assert counters["ended"] == "backlog empty" and counters["claimed"] == 1
    assert await _has(world, "2025550306")


async def test_a_hung_drain_is_stopped_by_the_watchdog_and_says_where_it_waited(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Whatever hangs (here: a push that never returns), the run must not hold the lease for
    # ever while its heartbeat renews it: it stops one attempt after its budget.
    import flows.sync as sync_module
    import flows.sync_watchdog as watchdog_module

    async def hang(*args: object) -> int:
        await asyncio.Event().wait()
        return 0

    monkeypatch.setattr(sync_module, "push_all", hang)
    monkeypatch.setattr(watchdog_module, "WATCHDOG_SLACK_S", 0.0)
    monkeypatch.setattr(sync_module, "WATCHDOG_SLACK_S", 0.0)
    for name in ("CONNECT", "POOL", "WRITE", "READ"):
        monkeypatch.setenv(f"DNC_CXONE_{name}_TIMEOUT_S", "0.5")
    monkeypatch.setenv("DNC_SYNC_FENCE_MARGIN_S", "0.5")
    monkeypatch.setenv("DNC_SYNC_TIME_BUDGET_S", "1")
    await post(world, "+12025550307", "optOut", 0)
    with caplog.at_level(logging.INFO):
        state: State[Any] = await asyncio.wait_for(
            sync_dnc(return_state=True),  # type: ignore[call-overload]
            timeout=60,
        )
    assert state.is_failed() and "outlived its time budget" in (state.message or "")
    lines = [r.getMessage() for r in caplog.records]
    assert any("waits in" in line and "hang" in line for line in lines)  # where it hung
    assert sum("sync run summary" in line for line in lines) == 1
    assert await _holder(world) is None  # released (with the takeover grace)
    assert (await world["queue"].backlog())[0] == 1  # still pending for the next run
