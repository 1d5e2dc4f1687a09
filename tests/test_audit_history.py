"""A number's history: the timeline merged from the three audit tables (on SQLite and
PostgreSQL), its state in Redis (fakeredis and the real redis-server), and `dnc-sync history`."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import click
import fakeredis
import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine
from typer.testing import CliRunner

from dnc.applications import ApplicationRecord
from dnc.audit import schema
from dnc.audit.archive import Archiver
from dnc.audit.database import AuditStoreNotReady, open_engine, upgrade
from dnc.audit.entries import application_row, event_row, normaliser, rejection_row
from dnc.audit.history import (
    current_state,
    last_application,
    number_history,
    read_number,
    stored_records,
    timeline,
)
from dnc.audit.streams import streams
from dnc.e164 import PhoneNumberProblem
from dnc.errors import StoreUnavailable
from dnc.events import Action, StoredEvent
from dnc.intake import derive_event_id
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue, Retry
from dnc.store import EventStore, StoreLimits
from dnc.timestamps import iso_utc
from dnc_sync.cli import app
from tests.conftest import free_port

T0 = 1_794_994_200_000
NUMBER = "+12025550101"
OTHER = "+12025550199"


def stored(number: str, ms: int, action: Action = Action.OPT_OUT) -> StoredEvent:
    return StoredEvent(
        eventId=derive_event_id(f"{number}|{action.value}|{ms}"),
        eventIdDerived=True,
        e164=number,
        action=action,
        eventMs=ms - 1_000,
        receivedMs=ms,
    )


def event_at(
    entry_ms: int, number: str, received_ms: int, status: str = "queued"
) -> dict[str, Any]:
    body = stored(number, received_ms).model_dump_json(exclude_none=True)
    return event_row(f"{entry_ms}-0", {"status": status, "event": body})


def rejection_at(entry_ms: int, raw_number: str, received_ms: int) -> dict[str, Any]:
    problems = [{"field": "timestamp", "reason": "too_old", "message": "timestamp is before 2000"}]
    fields = {
        "status": "422",
        "error": "invalid_event",
        "detail": json.dumps(problems),
        "receivedMs": str(received_ms),
        "phoneNumber": raw_number,
    }
    return rejection_row("rejected", f"{entry_ms}-0", fields, normaliser("US"))


def application_at(
    entry_ms: int, number: str, settled_ms: int, result: str = "applied"
) -> dict[str, Any]:
    record = ApplicationRecord(
        number=number,
        action="optOut",
        eventId="e-1",
        eventMs=T0,
        receivedMs=T0,
        requestedAtMs=settled_ms - 50,
        adapter="dnc-groups",
        flowRunId="run-7",
        result=result,
        httpStatus=200,
        recordId="2025550101",
    )
    fields = {
        "outcome": "acknowledged",
        "settledMs": str(settled_ms),
        "application": record.model_dump_json(),
    }
    return application_row(f"{entry_ms}-0", fields)


def insert(engine: Engine, table: schema.Table, *rows: dict[str, Any]) -> None:
    with engine.begin() as connection:
        for row in rows:  # one by one: the insertion order is the test's
            connection.execute(table.insert(), [row])


def fill_mixed(engine: Engine) -> None:
    """Rows whose insertion (and stream id) order is not their time order."""
    insert(engine, schema.applications, application_at(T0 + 1, NUMBER, T0 + 400))
    insert(engine, schema.events, event_at(T0 + 2, NUMBER, T0 + 300))
    insert(engine, schema.rejections, rejection_at(T0 + 3, "(202) 555-0101", T0 + 200))
    insert(engine, schema.events, event_at(T0 + 4, NUMBER, T0 + 100))
    insert(engine, schema.applications, application_at(T0 + 5, NUMBER, T0 + 250, "rejected"))
    insert(engine, schema.events, event_at(T0 + 6, OTHER, T0 + 350))  # someone else's
    insert(engine, schema.rejections, rejection_at(T0 + 7, "not a number", T0 + 150))


def test_timeline_merges_the_tables_oldest_first(engine: Engine) -> None:
    fill_mixed(engine)
    entries = timeline(engine, NUMBER)
    assert [(e.at_ms - T0, e.kind) for e in entries] == [
        (100, "event"),
        (200, "rejection"),
        (250, "application"),
        (300, "event"),
        (400, "application"),
    ]
    assert {e.number for e in entries} == {NUMBER}


def test_timeline_keeps_the_newest_limit(engine: Engine) -> None:
    fill_mixed(engine)
    newest = timeline(engine, NUMBER, limit=2)
    assert [(e.at_ms - T0, e.kind) for e in newest] == [(300, "event"), (400, "application")]
    records = stored_records(engine, NUMBER, limit=2)
    assert records.truncated and records.timeline == newest
    assert not stored_records(engine, NUMBER, limit=5).truncated


def test_each_table_gives_its_newest_rows(engine: Engine) -> None:
    # More rows in one table than the limit, inserted out of time order: the query must take
    # the newest by time, not the first stored.
    for entry, offset in enumerate([50, 10, 40, 20, 30]):
        insert(engine, schema.events, event_at(T0 + entry, NUMBER, T0 + offset))
    assert [e.at_ms - T0 for e in timeline(engine, NUMBER, limit=2)] == [40, 50]


def test_timeline_lines_and_details(engine: Engine) -> None:
    fill_mixed(engine)
    event, refused, rejected, _, applied = timeline(engine, NUMBER)
    assert event.summary.startswith("optOut queued (event time ")
    assert f"eventId {event.detail['event_id']}" in event.summary
    assert event.detail["event"]["e164"] == NUMBER  # the stored JSON, parsed
    assert refused.summary == "refused 422 invalid_event: timestamp: timestamp is before 2000"
    assert refused.detail["fields"]["phoneNumber"] == "(202) 555-0101"
    assert applied.summary == (
        "CXone optOut: applied, HTTP 200, record 2025550101, acknowledged (run run-7)"
    )
    assert rejected.summary.startswith("CXone optOut: rejected, HTTP 200")
    line = applied.as_dict()
    assert line["at"].endswith("Z") and line["kind"] == "application"
    assert json.loads(json.dumps(line)) == line  # JSON-ready


def test_last_application_is_the_newest_settled(engine: Engine) -> None:
    fill_mixed(engine)
    found = last_application(engine, NUMBER)
    assert found is not None and (found["settled_ms"], found["result"]) == (T0 + 400, "applied")
    assert last_application(engine, OTHER) is None
    assert timeline(engine, "+12025550000") == []


def test_a_store_without_schema_is_not_read(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/empty.sqlite3")
    with pytest.raises(AuditStoreNotReady, match="dnc-sync audit migrate"):
        timeline(engine, NUMBER)
    with pytest.raises(AuditStoreNotReady):
        last_application(engine, NUMBER)
    engine.dispose()


@pytest.mark.parametrize("raw", ["(202) 555-0101", "+1 202-555-0101", "2025550101", "x", "12"])
def test_numbers_are_read_as_the_archive_reads_them(raw: str) -> None:
    try:
        found: str | None = read_number(raw, "US")
    except PhoneNumberProblem:
        found = None
    assert found == normaliser("US")(raw)


# -- the state in Redis ---------------------------------------------------------------------


async def test_current_state_of_a_pending_number(any_redis: aioredis.Redis, namespace: str) -> None:
    keys = RedisKeys(namespace)
    await EventStore(any_redis, keys, StoreLimits()).record(stored(NUMBER, T0))
    state = await current_state(any_redis, keys, NUMBER)
    assert state.latest_event is not None and state.latest_event["e164"] == NUMBER
    assert (state.pending_since_ms, state.retry, state.dead_letter) == (T0, None, None)
    nothing = await current_state(any_redis, keys, OTHER)
    assert nothing.latest_event is None and nothing.pending_since_ms is None


async def test_current_state_of_a_retried_then_dead_number(
    any_redis: aioredis.Redis, namespace: str
) -> None:
    keys = RedisKeys(namespace)
    store, queue = EventStore(any_redis, keys, StoreLimits()), PendingQueue(any_redis, keys)
    await store.record(stored(NUMBER, T0))
    await queue.acquire_lease("run", 10_000)
    (claim,) = await queue.claim("run", 10, now_ms=T0 + 10)
    await queue.defer([Retry(claim, "busy")], now_ms=T0 + 20)
    retrying = await current_state(any_redis, keys, NUMBER)
    assert retrying.pending_since_ms is None and retrying.retry is not None
    assert retrying.retry.attempts == 1 and retrying.retry.first_failure_ms == T0 + 20
    assert (
        retrying.retry.deferred_until_ms is not None and retrying.retry.deferred_until_ms > T0 + 20
    )
    (claim,) = await queue.claim("run", 10, now_ms=T0 + 86_400_000)
    await queue.dead_letter([(claim, "Invalid phone number.")], now_ms=T0 + 86_400_001)
    dead = await current_state(any_redis, keys, NUMBER)
    assert dead.retry is None and dead.dead_letter is not None
    assert (dead.dead_letter["reason"], dead.dead_letter["deadAtMs"]) == (
        "Invalid phone number.",
        T0 + 86_400_001,
    )


async def test_current_state_when_redis_is_down(
    fake_redis: aioredis.Redis, fake_server: fakeredis.FakeServer
) -> None:
    fake_server.connected = False
    with pytest.raises(StoreUnavailable):
        await current_state(fake_redis, RedisKeys("x"), NUMBER)


async def test_history_counts_what_is_not_archived_yet(
    real_redis: aioredis.Redis, namespace: str, engine: Engine
) -> None:
    keys = RedisKeys(namespace)
    store = EventStore(real_redis, keys, StoreLimits())
    await store.record(stored(NUMBER, T0))
    await Archiver(real_redis, engine, streams(keys, normaliser("US"))).run(budget_s=30)
    await store.record(stored(NUMBER, T0 + 5_000, Action.OPT_IN))
    found = await number_history(real_redis, keys, engine, NUMBER)
    assert [e.kind for e in found.timeline] == ["event"]  # the opt-in is not archived yet
    assert found.unarchived["events"] == 1 and found.state.latest_event is not None
    assert found.state.latest_event["action"] == "optIn"
    shape = found.as_dict()
    assert set(shape) == {
        "number",
        "state",
        "last_application",
        "timeline",
        "truncated",
        "unarchived",
        "gaps",
        "purged_before_ms",
        "purged_before",
    }
    assert shape["gaps"] == [] and shape["purged_before_ms"] is shape["purged_before"] is None
    assert shape["state"]["pending_since_ms"] == T0 and json.dumps(shape)


# -- gaps: entries lost before archiving -----------------------------------------------------


def gap(stream: str, after: str, through: str, missing: int | None, found: int) -> dict[str, Any]:
    return {
        "stream": stream,
        "after_id": after,
        "through_id": through,
        "missing": missing,
        "found_ms": found,
    }


def test_gaps_of_the_timelines_span_are_listed(engine: Engine) -> None:
    fill_mixed(engine)  # the number's timeline spans T0 + 100 .. T0 + 400
    insert(
        engine,
        schema.gaps,
        gap("events", f"{T0 + 150}-0", f"{T0 + 180}-3", 7, T0 + 900),
        gap("events", f"{T0 - 500}-0", f"{T0 - 400}-0", 2, T0 - 300),  # before: not listed
        gap("unauthenticated", "0-0", f"{T0 + 50}-0", None, T0 + 950),  # reaches into it
        gap("rejected", f"{T0 + 600}-1", "-", None, T0 + 990),  # after the newest: listed
    )
    gaps = stored_records(engine, NUMBER).gaps
    assert [(g["stream"], g["from_ms"] - T0, g["missing"]) for g in gaps] == [
        ("events", 150, 7),
        ("rejected", 600, None),
    ]
    later = stored_records(engine, NUMBER, limit=1).gaps  # the timeline starts at T0 + 400
    assert [g["stream"] for g in later] == ["rejected"]
    assert gaps[0] == {
        "stream": "events",
        "after_id": f"{T0 + 150}-0",
        "through_id": f"{T0 + 180}-3",
        "missing": 7,
        "from_ms": T0 + 150,
        "from": iso_utc(T0 + 150),
        "found_ms": T0 + 900,
        "found": iso_utc(T0 + 900),
    }


def test_a_number_without_records_gets_every_gap(engine: Engine) -> None:
    insert(
        engine,
        schema.gaps,
        gap("events", "0-0", f"{T0}-0", None, T0 + 5),
        gap("events", "0-0", "-", 3, T0 + 9),  # no id at all: its time is when it was found
    )
    gaps = stored_records(engine, NUMBER).gaps
    assert [g["from_ms"] for g in gaps] == [T0, T0 + 9]


async def test_history_carries_the_gaps_and_the_document_describes_them(
    fake_redis: aioredis.Redis, engine: Engine
) -> None:
    from jsonschema import Draft202012Validator

    from receiver.openapi import build_document

    fill_mixed(engine)
    insert(engine, schema.gaps, gap("events", f"{T0 + 150}-0", f"{T0 + 180}-3", None, T0 + 900))
    found = await number_history(fake_redis, RedisKeys("g"), engine, NUMBER)
    shape = found.as_dict()
    assert [g["after_id"] for g in shape["gaps"]] == [f"{T0 + 150}-0"] and json.dumps(shape)
    documented = build_document()["components"]["schemas"]["NumberHistory"]
    assert "gaps" in documented["required"]
    Draft202012Validator(documented).validate(shape)
    gap_schema = documented["properties"]["gaps"]["items"]
    assert set(gap_schema["required"]) == set(shape["gaps"][0])


# -- purges: records deleted past retention --------------------------------------------------


def purge(cutoff_ms: int) -> dict[str, Any]:
    return {
        "purged_ms": cutoff_ms + 86_400_000,
        "cutoff_ms": cutoff_ms,
        "retention_days": 1,
        "events": 3,
        "rejections": 0,
        "applications": 1,
        "flow_run_id": "run-p",
    }


async def test_history_says_before_when_records_were_purged(
    fake_redis: aioredis.Redis, engine: Engine
) -> None:
    from jsonschema import Draft202012Validator

    from receiver.openapi import build_document

    fill_mixed(engine)
    assert stored_records(engine, NUMBER).purged_before_ms is None
    insert(engine, schema.purges, purge(T0 - 9_000), purge(T0 + 50), purge(T0 - 5_000))
    assert stored_records(engine, NUMBER).purged_before_ms == T0 + 50  # the latest cutoff
    found = await number_history(fake_redis, RedisKeys("p"), engine, NUMBER)
    shape = found.as_dict()
    assert (shape["purged_before_ms"], shape["purged_before"]) == (T0 + 50, iso_utc(T0 + 50))
    documented = build_document()["components"]["schemas"]["NumberHistory"]
    assert set(documented["required"]) == set(shape)
    Draft202012Validator(documented).validate(shape)
    Draft202012Validator(documented).validate(
        {**shape, "purged_before_ms": None, "purged_before": None}
    )


def test_cli_says_when_records_were_purged(cli_env: str) -> None:
    before = CliRunner().invoke(app, ["history", "(202) 555-0101"])
    assert before.exit_code == 0, before.output
    assert "purged" not in before.output
    engine = open_engine(cli_env)
    insert(engine, schema.purges, purge(T0 - 7))
    engine.dispose()
    result = CliRunner().invoke(app, ["history", "(202) 555-0101"])
    assert result.exit_code == 0, result.output
    assert (
        f"records received before {iso_utc(T0 - 7)} were purged (retention); the current "
        "state's proof is kept"
    ) in " ".join(result.output.split())
    shape = json.loads(CliRunner().invoke(app, ["history", "(202) 555-0101", "--json"]).output)
    assert shape["purged_before_ms"] == T0 - 7


# -- dnc-sync history ------------------------------------------------------------------------


async def _record_and_archive(redis_url: str, namespace: str, database_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    keys = RedisKeys(namespace)
    store = EventStore(client, keys, StoreLimits())
    await store.record(stored(NUMBER, T0))
    await store.record_rejection(
        {"status": "422", "error": "invalid_event", "detail": '"bad"', "phoneNumber": "2025550101"}
    )
    engine = open_engine(database_url)
    upgrade(engine)
    await Archiver(client, engine, streams(keys, normaliser("US"))).run(budget_s=30)
    await store.record(stored(OTHER, T0 + 1))  # left unarchived
    engine.dispose()
    await client.aclose()


@pytest.fixture
def cli_env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    namespace = "hist" + uuid.uuid4().hex[:10]
    database_url = f"sqlite:///{tmp_path}/audit.sqlite3"
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", database_url)
    monkeypatch.setenv("DNC_INTAKE_DEFAULT_REGION", "US")
    asyncio.run(_record_and_archive(redis_url, namespace, database_url))
    return database_url


def test_cli_prints_state_and_timeline(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["history", "(202) 555-0101"])
    assert result.exit_code == 0, result.output
    assert "history of +12025550101" in result.output
    assert "optOut queued (event time" in result.output
    assert "refused 422 invalid_event: bad" in result.output
    assert "not yet archived (events 1, all numbers)" in result.output


def test_cli_json(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["history", "202-555-0101", "--json", "--limit", "1"])
    assert result.exit_code == 0, result.output
    shape = json.loads(result.output)
    assert shape["number"] == NUMBER and shape["truncated"] is True
    assert [e["kind"] for e in shape["timeline"]] == ["rejection"]
    assert shape["state"]["pending_since_ms"] == T0


def test_cli_shows_the_gaps_in_red(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    engine = open_engine(cli_env)
    insert(engine, schema.gaps, gap("events", "0-0", f"{T0}-0", None, T0 + 9))
    insert(engine, schema.gaps, gap("rejected", f"{T0 - 9}-0", f"{T0 - 5}-0", 4, T0 + 9))
    engine.dispose()
    result = CliRunner().invoke(app, ["history", "(202) 555-0101"])
    assert result.exit_code == 0, result.output
    plain = click.unstyle(result.output)
    assert "the audit record has gaps in this period: an unknown number of events entries" in (
        " ".join(plain.split())
    )
    assert f"ids after 0-0 up to {T0}-0" in plain
    assert "4 rejected entries" not in " ".join(plain.split())  # before the timeline's start
    assert "\x1b[31m" in result.output  # red
    monkeypatch.delenv("FORCE_COLOR")
    shape = CliRunner().invoke(app, ["history", "(202) 555-0101", "--json"])
    assert [g["stream"] for g in json.loads(shape.output)["gaps"]] == ["events"]


def test_cli_without_gaps_says_nothing_of_them(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["history", "(202) 555-0101"])
    assert result.exit_code == 0, result.output
    assert "gaps" not in result.output


def test_cli_region(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["history", "020 7946 0018", "--region", "GB", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["number"] == "+442079460018"
    bad = CliRunner().invoke(app, ["history", "2025550101", "--region", "ZZ"])
    assert bad.exit_code == 2 and "not a region" in bad.output


def test_cli_refuses_what_is_not_a_number(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["history", "12345"])
    assert result.exit_code == 2 and "cannot be read" in result.output


def test_cli_store_not_migrated(
    cli_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/new/audit.sqlite3")
    result = CliRunner().invoke(app, ["history", "2025550101"])
    assert result.exit_code == 1 and "dnc-sync audit migrate" in result.output
    assert "Traceback" not in result.output


def test_cli_store_unreachable(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DNC_AUDIT_DATABASE_URL",
        f"postgresql+psycopg://dnc:hunter2-password@127.0.0.1:{free_port()}/audit?connect_timeout=2",
    )
    result = CliRunner().invoke(app, ["history", "2025550101", "--json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.output)
    assert error["error"] == "audit_store_unavailable" and "hunter2" not in result.output


def test_cli_redis_down(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNC_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("DNC_REDIS_CONNECT_TIMEOUT_S", "0.2")
    result = CliRunner().invoke(app, ["history", "2025550101"])
    assert result.exit_code == 1 and "cannot read Redis" in result.output
    assert "Traceback" not in result.output


def test_cli_a_store_that_is_not_there_is_not_created(
    cli_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = tmp_path / "typo" / "audit.sqlite3"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{typo}")
    result = CliRunner().invoke(app, ["history", "2025550101", "--json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.output)
    assert error["error"] == "audit_store_not_ready"
    assert error["detail"].startswith(f"no audit store at {typo}")
    assert not typo.parent.exists()  # read only: no folder, no empty database


def test_reading_creates_no_store(redis_url: str, tmp_path: Path) -> None:
    from dnc.settings import AuditSettings, RedisSettings
    from dnc_sync.history_cli import gather_history

    typo = tmp_path / "typo" / "audit.sqlite3"
    audit = AuditSettings(database_url=f"sqlite:///{typo}")
    with pytest.raises(AuditStoreNotReady, match="no audit store at"):
        asyncio.run(gather_history(NUMBER, 10, RedisSettings(url=redis_url), audit))
    assert not typo.parent.exists()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+psycopg://dnc:pa55word@db.example.com:54x32/x", "not a number"),
        ("mysql://dnc:pa55word@db.example.com/x", "SQLite or PostgreSQL"),
        ("no url at all pa55word", "not a URL"),
    ],
)
def test_cli_a_malformed_database_url_is_a_usage_error(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["history", "2025550101"])
    assert result.exit_code == 2, result.output
    assert "DNC_AUDIT_DATABASE_URL" in result.output and reason in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "pa55word" not in result.output and "54x32" not in result.output
    assert "db.example.com" not in result.output


def test_cli_unreachable_store_names_no_url(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv(
        "DNC_AUDIT_DATABASE_URL",
        f"postgresql+psycopg://dnc:hunter2-password@127.0.0.1:{port}/audit?connect_timeout=2",
    )
    result = CliRunner().invoke(app, ["history", "2025550101"])
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "cannot read the audit store (DNC_AUDIT_DATABASE_URL): OperationalError" in result.output
    assert "hunter2" not in result.output and str(port) not in result.output
