"""Retention: rows past DNC_AUDIT_RETENTION_DAYS are purged and the purge is recorded, but
the proof of each number's current state is kept however old; SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from dnc.audit import schema
from dnc.audit.retention import DAY_MS, purge

NOW = 1_900_000_000_000
OLD = NOW - 2_000 * DAY_MS  # past the default 1,830 days


def event(seq: int, number: str, status: str, received_ms: int) -> dict[str, Any]:
    return {
        "stream_ms": received_ms,
        "stream_seq": seq,
        "status": status,
        "number": number,
        "action": "optOut",
        "event_id": f"e-{seq}",
        "event_ms": received_ms,
        "received_ms": received_ms,
        "event": "{}",
    }


def application(seq: int, number: str, outcome: str, settled_ms: int) -> dict[str, Any]:
    return {
        "stream_ms": settled_ms,
        "stream_seq": seq,
        "number": number,
        "action": "optOut",
        "event_id": f"e-{seq}",
        "event_ms": settled_ms,
        "received_ms": settled_ms,
        "requested_ms": settled_ms,
        "settled_ms": settled_ms,
        "outcome": outcome,
        "result": "applied",
        "reason": "",
        "adapter": "dnc-groups",
        "flow_run_id": "r",
    }


def test_old_rows_go_but_the_proof_of_the_current_state_stays(engine: Engine) -> None:
    a, b = "+12025550101", "+12025550102"
    with engine.begin() as connection:
        connection.execute(
            schema.events.insert(),
            [
                event(1, a, "queued", OLD),  # replaced by seq 3: purged
                event(2, a, "superseded", OLD + 1),  # purged
                event(3, a, "queued", OLD + 2),  # a's current state, however old: kept
                event(4, a, "duplicate", OLD + 3),  # purged
                event(5, b, "queued", OLD),  # replaced by seq 6, which is recent: purged
                event(6, b, "queued", NOW - DAY_MS),  # recent: kept
            ],
        )
        connection.execute(
            schema.applications.insert(),
            [
                application(1, a, "acknowledged", OLD),  # purged: a later one exists
                application(2, a, "acknowledged", OLD + 5),  # a's last: kept
                application(3, a, "deferred", OLD + 6),  # purged
            ],
        )
    report = purge(engine, NOW, 1_830, "run-1")
    assert (report.events, report.applications) == (4, 2)
    with engine.connect() as connection:
        events = connection.execute(select(schema.events.c.stream_seq)).scalars().all()
        applications = connection.execute(select(schema.applications.c.stream_seq)).scalars()
        (record,) = connection.execute(select(schema.purges)).mappings().all()
    assert sorted(events) == [3, 6] and list(applications) == [2]
    assert (record["events"], record["applications"], record["flow_run_id"]) == (4, 2, "run-1")
    assert record["cutoff_ms"] == NOW - 1_830 * DAY_MS


def test_a_purge_that_deletes_nothing_leaves_no_record(engine: Engine) -> None:
    assert purge(engine, NOW, 1_830, "run-1").total == 0
    with engine.connect() as connection:
        assert connection.execute(select(schema.purges)).all() == []
