"""``dnc.reconcile.report``: the markdown, the table rows, and the last report kept in
Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from dnc.keys import RedisKeys
from dnc.reconcile.drift import DriftClass, Note
from dnc.reconcile.report import MEANING, ReconcileReport, Tally, load_last, save_last

NOW = 1_800_000_000_000


def drifted(**changes: object) -> ReconcileReport:
    report = ReconcileReport(
        flow_run_id="run-7",
        adapter="dnc-groups",
        started_ms=NOW - 60_000,
        finished_ms=NOW,
        complete=True,
        records=1_200,
        numbers=1_150,
        api_calls=4,
        page_size=1_000,
        drift={"opt_out_missing": 3, "opt_in_record": 1, "expiry_differs": 0, "not_owned": 2},
        notes={
            "in_sync": 1_100,
            "in_flight": 5,
            "dead_lettered": 1,
            "foreign_record": 7,
            "unknown_number": 50,
        },
        samples={
            "opt_out_missing": ["***0101", "***0102", "***0103"],
            "opt_in_record": ["***0200"],
            "not_owned": ["***0300", "***0301"],
        },
    )
    return report.model_copy(update=changes)


def test_defaults_count_every_class_and_note_as_zero() -> None:
    report = ReconcileReport(flow_run_id="r", adapter="dnc-groups", started_ms=NOW)
    assert report.drift == {c.value: 0 for c in DriftClass}
    assert report.notes == {n.value: 0 for n in Note}
    assert (report.complete, report.requeued, report.total_drift) == (False, None, 0)


def test_markdown_names_each_class_with_its_count_and_samples() -> None:
    text = drifted().markdown()
    lines = text.splitlines()
    assert lines[0] == "# Reconciliation (dnc-groups): 6 number(s) drifted"
    assert lines[2] == (
        "Run complete: 1200 record(s) listed, 1150 number(s) compared, 4 CXone call(s)."
    )
    for drift_class, count in (
        (DriftClass.OPT_OUT_MISSING, 3),
        (DriftClass.OPT_IN_RECORD, 1),
        (DriftClass.EXPIRY_DIFFERS, 0),
        (DriftClass.NOT_OWNED, 2),
    ):
        meaning, action = MEANING[drift_class]
        assert f"| `{drift_class.value}` | {count} | {meaning} | {action} |" in lines
    assert "## `opt_out_missing` (sample)" in lines
    assert "***0101, ***0102, ***0103" in lines
    assert "## `not_owned` (sample)" in lines and "***0300, ***0301" in lines
    assert "## `expiry_differs` (sample)" not in text  # no sample: no section
    assert "requeued" not in text and "looked up" not in text
    assert text.endswith("\n")


def test_markdown_of_an_incomplete_repair_run() -> None:
    report = drifted(complete=False, incomplete_reason="lease lost", requeued=4, unconfirmed=2)
    lines = report.markdown().splitlines()
    assert lines[2].startswith("Run INCOMPLETE (lease lost): 1200 record(s)")
    assert "Repair: 4 number(s) requeued for the next sync." in lines
    assert "2 missing opt-out(s) were not looked up one by one." in lines


def test_table_rows() -> None:
    rows = drifted().table_rows()
    assert [(row["class"], row["count"]) for row in rows] == [
        ("opt_out_missing", 3),
        ("opt_in_record", 1),
        ("expiry_differs", 0),
        ("not_owned", 2),
        ("note: in_sync", 1_100),
        ("note: in_flight", 5),
        ("note: dead_lettered", 1),
        ("note: foreign_record", 7),
        ("note: unknown_number", 50),
    ]
    assert rows[0] == {
        "class": "opt_out_missing",
        "count": 3,
        "meaning": MEANING[DriftClass.OPT_OUT_MISSING][0],
        "what to do": MEANING[DriftClass.OPT_OUT_MISSING][1],
    }
    assert set(rows[4]) == {"class", "count"}


def test_tally_fills_the_report() -> None:
    tally = Tally(sample_size=1)
    tally.add("+12025550101", DriftClass.NOT_OWNED)
    tally.add("+12025550102", DriftClass.NOT_OWNED)
    tally.add("+12025550103", Note.FOREIGN_RECORD)
    report = ReconcileReport(flow_run_id="r", adapter="dnc-groups", started_ms=NOW)
    tally.fill(report)
    assert report.drift == {
        "opt_out_missing": 0,
        "opt_in_record": 0,
        "expiry_differs": 0,
        "not_owned": 2,
    }
    assert report.notes["foreign_record"] == 1 and sum(report.notes.values()) == 1
    assert report.samples == {"not_owned": ["***0101"]}
    assert report.total_drift == 2


async def test_save_and_load_the_last_report(any_redis: aioredis.Redis, namespace: str) -> None:
    keys = RedisKeys(namespace)
    assert await load_last(any_redis, keys) is None
    report = drifted(requeued=3)
    await save_last(any_redis, keys, report)
    assert await load_last(any_redis, keys) == report
    await save_last(any_redis, keys, drifted(records=1))
    loaded = await load_last(any_redis, keys)
    assert loaded is not None and loaded.records == 1


@pytest.mark.parametrize(
    "junk",
    [b"not json", b"[]", b'{"adapter": "dnc-groups"}', b'{"flow_run_id": 1}', b"\xff\xfe"],
)
async def test_an_unreadable_last_report_is_none(
    any_redis: aioredis.Redis, namespace: str, junk: bytes
) -> None:
    keys = RedisKeys(namespace)
    await any_redis.set(keys.reconcile_last, junk)
    assert await load_last(any_redis, keys) is None
