"""The reconciliation chaos case (``reliability/faults/reconcile_drift.py``). Its oracle is shown
sorting planted states into each drift class, telling who created a record, and its judge
catching a missed and a false finding; then the script runs in its short size against real
processes (redis-server, the sandbox, the receiver, sync runs, a Prefect server): every
drifted number of every class found, nothing false, the repair converged in one sync."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reliability.faults import reconcile_drift as drift
from reliability.faults.oracle import OPT_IN, OPT_OUT, Sent
from reliability.processes import run_script
from tests.chaos.conftest import PrefectServer

NOW_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z
DAY_MS = 86_400_000
A, B, C, D = "+12025550001", "+12025550002", "+12025550003", "+12025550004"


def sent(action: str, expires_ms: int | None = None, e164: str = A) -> Sent:
    event = Sent(e164, action, NOW_MS - 60_000, f"id-{e164}-{action}", expires_ms=expires_ms)
    event.status = 202
    return event


# -- the oracle and the judge can fail -----------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "record", "creator", "expected"),
    [
        (sent(OPT_OUT), None, None, "opt_out_missing"),
        (sent(OPT_OUT, NOW_MS + DAY_MS), None, drift.OURS, "opt_out_missing"),
        (sent(OPT_IN), None, None, "in_sync"),
        (sent(OPT_IN), (None,), drift.OURS, "opt_in_record"),
        (sent(OPT_IN), (NOW_MS + DAY_MS,), drift.THEIRS, "not_owned"),
        (sent(OPT_IN), (None,), drift.UNORDERED, "not_owned"),
        # an opt-out in force meeting a record that lapses sooner, whoever's: less protection
        (sent(OPT_OUT, NOW_MS + 2 * DAY_MS), (NOW_MS + DAY_MS,), drift.OURS, "expiry_differs"),
        (sent(OPT_OUT), (NOW_MS + DAY_MS,), drift.THEIRS, "expiry_differs"),
        # the same second, or longer protection than asked, is a note by owner
        (sent(OPT_OUT, NOW_MS + DAY_MS), (NOW_MS + DAY_MS + 400,), drift.OURS, "in_sync"),
        (sent(OPT_OUT, NOW_MS + DAY_MS), (NOW_MS + 2 * DAY_MS,), drift.OURS, "in_sync"),
        (sent(OPT_OUT, NOW_MS + DAY_MS), (None,), drift.THEIRS, "foreign_record"),
        (sent(OPT_OUT), (None,), drift.THEIRS, "foreign_record"),
        # a lapsed opt-out: no record is in step, one outliving it is not drift
        (sent(OPT_OUT, NOW_MS - 1000), None, None, "in_sync"),
        (sent(OPT_OUT, NOW_MS - 1000), (NOW_MS + DAY_MS,), drift.THEIRS, "foreign_record"),
        (None, (None,), drift.THEIRS, "unknown_number"),
        (None, None, None, None),
    ],
)
def test_the_oracle_sorts_each_case(
    event: Sent | None,
    record: tuple[int | None] | None,
    creator: str | None,
    expected: str | None,
) -> None:
    assert drift.expected_class(event, record, creator, NOW_MS) == expected


def test_the_last_creation_of_a_record_says_whose_it_is() -> None:
    journal = [
        {"seq": 5, "method": "POST", "changed": True, "phoneNumber": "1"},
        {"seq": 6, "method": "POST", "changed": False, "phoneNumber": "2"},  # met a record
        {"seq": 7, "method": "DELETE", "changed": True, "phoneNumber": "3"},
    ]
    assert drift.creators(journal, []) == {"1": drift.OURS}
    later = drift.OobAdd("1", 6, 7, added=True)
    assert drift.creators(journal, [later])["1"] == drift.THEIRS
    assert drift.creators(journal, [drift.OobAdd("1", 3, 4, added=True)])["1"] == drift.OURS
    assert drift.creators(journal, [drift.OobAdd("1", 4, 6, added=True)])["1"] == drift.UNORDERED
    expiry_change = drift.OobAdd("1", 6, 7, added=False)  # keeps the creator
    assert drift.creators(journal, [expiry_change])["1"] == drift.OURS
    onto_absent = drift.OobAdd("2", 1, 2, added=True)  # our later add found it there
    assert drift.creators(journal, [onto_absent])["2"] == drift.THEIRS
    assert "3" not in drift.creators(journal, [])


def test_the_oracle_covers_every_number_sent_or_held() -> None:
    truth = {A: sent(OPT_OUT), B: sent(OPT_IN, e164=B), C: sent(OPT_OUT, e164=C)}
    active = {"12025550002": None, "12025550004": None}
    found = drift.expected(truth, active, {"12025550002": drift.THEIRS}, {C}, NOW_MS)
    assert found["opt_out_missing"] == {A} and found["not_owned"] == {B}
    assert found["unknown_number"] == {D} and found["dead_lettered"] == {C}


def test_a_missed_and_a_false_finding_are_counted() -> None:
    oracle = {"opt_out_missing": {A, B}, "not_owned": {C}}
    judged = drift.judge(oracle, {"opt_out_missing": {A}, "not_owned": {C, D}})
    assert judged["opt_out_missing"] == {"oracle": 2, "found": 1, "missed": 1, "false_positives": 0}
    assert judged["not_owned"] == {"oracle": 1, "found": 2, "missed": 0, "false_positives": 1}
    assert judged["opt_in_record"]["missed"] == judged["expiry_differs"]["found"] == 0


def report(**drifted: list[str]) -> dict[str, Any]:
    """A reconciliation report naming these masked numbers per class, nothing else."""
    notes = dict.fromkeys(("in_sync", "in_flight", "dead_lettered", "foreign_record"), 0)
    return {
        "complete": True,
        "drift": {name: len(drifted.get(name, [])) for name in drift.CLASSES},
        "samples": drifted,
        "notes": notes | {"unknown_number": 0},
    }


def test_the_check_reads_the_samples_back_and_flags_what_is_off() -> None:
    by_mask = {"***0001": A, "***0002": B}
    judged, problems = drift.check(report(not_owned=["***0001"]), {"not_owned": {A}}, by_mask)
    assert problems == [] and judged["not_owned"]["found"] == 1
    judged, problems = drift.check(report(not_owned=["***0002"]), {"not_owned": {A}}, by_mask)
    assert problems == ["not_owned: 1 missed", "not_owned: 1 false_positives"]
    short = report(not_owned=["***0001"]) | {"drift": dict.fromkeys(drift.CLASSES, 1)}
    _, problems = drift.check(short, {"not_owned": {A}}, by_mask)
    assert "opt_out_missing: 1 counted, 0 sampled" in problems
    noted = report()
    noted["notes"]["unknown_number"] = 1
    _, problems = drift.check(noted | {"complete": False, "incomplete_reason": "x"}, {}, by_mask)
    assert problems == ["note unknown_number: found 1, oracle 0", "incomplete: x"]


# -- the script, short ---------------------------------------------------------------------------


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object a chaos script printed last (pretty-printed: from the last ``{``)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    found: dict[str, Any] = json.loads("\n".join(lines[start:]))
    return found


@pytest.mark.redis
@pytest.mark.socket
def test_every_drifted_number_is_found_and_repair_converges_in_one_sync(
    prefect: PrefectServer,
) -> None:
    script = "reliability.faults.reconcile_drift"
    result = run_script(script, "--short", "--prefect-api-url", prefect.url(), timeout_s=240)
    assert result.returncode == 0, f"exited {result.returncode}:\n{result.stderr[-6000:]}"
    figures = last_json(result.stdout)
    assert figures["suite"] == "reconcile_drift" and figures["violations"] == []
    assert figures["missed"] == figures["false_positives"] == dict.fromkeys(drift.CLASSES, 0)
    assert figures["converged"] is True
    for name in drift.CLASSES:  # every class exercised, each number of it found
        assert figures["drift"][name]["oracle"] > 0, name
        assert figures["drift"][name]["found"] == figures["drift"][name]["oracle"], name
    repair = figures["repair"]
    assert repair["requeued"] == repair["oracle"] > 0 and repair["missed"] == 0
    assert repair["false_positives"] == 0
    assert figures["lost_replies"] > 0 and figures["errors_5xx"] > 0 and figures["lost"] == 0
    kinds = ("delete", "expire", "expiry_update", "add_opted_in", "add_unknown")
    assert all(figures["out_of_band"].get(kind, 0) > 0 for kind in kinds)
    assert figures["out_of_band"]["add_pending_opt_out"] > 0
    assert sum(r["out_of_band_between_writes"] for r in figures["per_round"]) > 0
