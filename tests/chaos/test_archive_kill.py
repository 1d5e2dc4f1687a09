"""The archive chaos case (``reliability/faults/archive_kill.py``): the archive SIGKILLed mid-batch
under load loses and duplicates no stream entry, checked entry by entry. Its checker is shown
failing first, on planted faults; the script runs in its short size on SQLite (the
PostgreSQL variant, with server restarts, runs in ``make reliability``)."""

from __future__ import annotations

import json

import pytest

from reliability.faults import archive_kill
from reliability.processes import run_script

WRITTEN = ["a", "b", "c", "d"]


def test_a_complete_archive_passes() -> None:
    archived = [("queued", event_id) for event_id in WRITTEN]
    assert not any(archive_kill.compare(WRITTEN, archived).values())


def test_a_missing_entry_is_caught() -> None:
    archived = [("queued", event_id) for event_id in ("a", "b", "d")]
    found = archive_kill.compare(WRITTEN, archived)
    assert found["lost"] == 1 and found["duplicated"] == 0


def test_a_duplicated_entry_is_caught() -> None:
    archived = [("queued", event_id) for event_id in ("a", "b", "b", "c", "d")]
    found = archive_kill.compare(WRITTEN, archived)
    assert found["duplicated"] == 1 and found["lost"] == 0


def test_an_unknown_wrong_status_or_reordered_entry_is_caught() -> None:
    archived = [("queued", "a"), ("superseded", "c"), ("queued", "b"), ("queued", "d")]
    archived.append(("queued", "zz"))
    found = archive_kill.compare(WRITTEN, archived)
    assert found["unknown"] == 1 and found["not_queued"] == 1 and found["out_of_order"] == 2


@pytest.mark.redis
@pytest.mark.socket
def test_archive_killed_mid_batch_loses_and_duplicates_nothing() -> None:
    result = run_script(archive_kill.MODULE, "--short", "--database", "sqlite", timeout_s=120)
    assert result.returncode == 0, (
        f"archive_kill exited {result.returncode}:\n{result.stderr[-6000:]}"
    )
    report = json.loads(result.stdout)
    assert report["ok"] and report["violations"] == []
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["gaps"] == 0
    assert report["kills"] >= 3 and report["rows"] == report["events"] > 0
