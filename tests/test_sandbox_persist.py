"""The sandbox keeps tenant data across restarts when DNC_SANDBOX_STATE_FILE is set."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox import persist
from sandbox.app import SandboxApp
from sandbox.context import Sandbox
from sandbox.settings import SandboxSettings
from sandbox.state import Contact, DncRecord, SandboxState


def filled() -> SandboxState:
    state = SandboxState.empty(["1001", "1002"])
    state.groups["1001"].active["2025550101"] = DncRecord("2025550101", None, 1_800_000_000.0)
    state.groups["1001"].active["442079460123"] = DncRecord(
        "442079460123", 1_900_000_000.5, 1_800_000_001.0
    )
    state.groups["1001"].expired.append(DncRecord("2025550102", 1_800_000_005.0, 1_800_000_000.0))
    state.contacts["+12025550103"] = Contact(
        "rec-7", "+12025550103", True, "2026-11-01T00:00:00.000Z", ["list-1", 5], 1.0, 2.0
    )
    state.next_record = 8
    return state


def test_dump_and_restore_round_trip() -> None:
    state = filled()
    data = json.loads(json.dumps(persist.dump(state)))
    back = persist.restore(data, ["1001", "1002"])
    assert back.snapshot(1_800_000_002.0) == state.snapshot(1_800_000_002.0)
    assert back.next_record == 8


def test_groups_no_longer_configured_are_dropped_and_new_ones_start_empty() -> None:
    back = persist.restore(persist.dump(filled()), ["1001", "2000"])
    assert set(back.groups) == {"1001", "2000"}
    assert back.groups["2000"].active == {}


def test_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    state = persist.load(tmp_path / "none.json", ["1001"])
    assert state.groups["1001"].active == {}


@pytest.mark.parametrize(
    "text", ["{not json", '{"format": 99}', '{"format": 1, "nextRecord": 1, "groups": {"1001": 3}}']
)
def test_damaged_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(persist.StateFileError):
        persist.load(path, ["1001"])


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    persist.save(filled(), path)
    persist.save(SandboxState.empty(["1001"]), path)
    assert json.loads(path.read_text())["groups"]["1001"]["active"] == []
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary left


async def run_lifespan(app: SandboxApp, during: Any) -> None:
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: Any) -> None:
        sent.append(message["type"])

    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    while "lifespan.startup.complete" not in sent:
        await asyncio.sleep(0.01)
    await during()
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    settings = SandboxSettings(state_file=str(tmp_path / "sandbox.json"))
    first = SandboxApp(Sandbox.start(settings))

    async def add_record() -> None:
        group = first.sandbox.state.groups["1001"]
        group.active["2025550101"] = DncRecord("2025550101", None, 1_800_000_000.0)

    await run_lifespan(first, add_record)
    second = Sandbox.start(settings)
    assert list(second.state.groups["1001"].active) == ["2025550101"]


async def test_changes_are_saved_while_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SIGKILLed sandbox loses at most the last few seconds, not everything.
    monkeypatch.setattr("sandbox.app.SAVE_EVERY_S", 0.02)
    path = tmp_path / "sandbox.json"
    app = SandboxApp(Sandbox.start(SandboxSettings(state_file=str(path))))

    async def add_and_wait() -> None:
        group = app.sandbox.state.groups["1001"]
        group.active["2025550101"] = DncRecord("2025550101", None, 1_800_000_000.0)
        for _ in range(200):
            if path.exists() and "2025550101" in path.read_text():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the running sandbox never saved its change")

    await run_lifespan(app, add_and_wait)
