"""The audit export: every record of a range in time order, streamed, on SQLite and PostgreSQL;
`dnc-sync audit export` writes private CSV / JSON Lines files with exact numbers and no
formulas; `dnc-sync audit migrate` builds the schema."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from dnc.audit import schema
from dnc.audit.database import (
    AuditStoreNotReady,
    current_revision,
    head_revision,
    open_engine,
    upgrade,
)
from dnc.audit.export import count_rows, export_rows
from dnc.audit.export_format import COLUMNS, csv_cell, write_csv, write_jsonl
from dnc.timestamps import iso_utc
from dnc_sync.cli import app

T0 = 1_794_994_200_000
A, B, C = "+12025550101", "+12025550102", "+12025550103"
FORMULA = '=HYPERLINK("http://evil.example","click")'


def event_row(ms: int, number: str, status: str = "queued", event_id: str = "") -> dict[str, Any]:
    stored = {"eventId": event_id or f"e-{ms}", "e164": number, "action": "optOut"}
    return {
        "stream_ms": ms,
        "stream_seq": 0,
        "status": status,
        "number": number,
        "action": "optOut",
        "event_id": event_id or f"e-{ms}",
        "event_ms": ms - 5,
        "received_ms": ms,
        "expires_ms": None,
        "event": json.dumps(stored),
    }


def rejection_row(ms: int, number: str | None, stream: str = "rejected") -> dict[str, Any]:
    fields = {
        "status": "422" if stream == "rejected" else "401",
        "error": "invalid_event" if stream == "rejected" else "unauthorized",
        "detail": json.dumps("timestamp is not ISO 8601"),
        "receivedMs": str(ms),
    }
    return {
        "stream": stream,
        "stream_ms": ms,
        "stream_seq": 0,
        "received_ms": ms,
        "status": int(fields["status"]),
        "error": fields["error"],
        "number": number,
        "source": "receiver",
        "fields": json.dumps(fields),
    }


def application_row(ms: int, number: str) -> dict[str, Any]:
    return {
        "stream_ms": ms,
        "stream_seq": 1,
        "number": number,
        "action": "optOut",
        "event_id": f"e-{ms - 30}",
        "event_ms": ms - 35,
        "received_ms": ms - 30,
        "expires_ms": T0 + 86_400_000,
        "requested_ms": ms - 1,
        "settled_ms": ms,
        "outcome": "acknowledged",
        "result": "created",
        "reason": "",
        "http_status": 200,
        "record_id": "r-1",
        "adapter": "dnc-groups",
        "flow_run_id": "run-1",
    }


def seed(engine: Engine) -> None:
    """Records of three numbers, inserted out of time order, some on the range's bounds."""
    with engine.begin() as connection:
        connection.execute(
            schema.applications.insert(), [application_row(T0 + 40, A), application_row(T0 + 10, B)]
        )
        connection.execute(
            schema.events.insert(),
            [
                event_row(T0 + 30, A),
                event_row(T0 + 100, C),  # at the range's end: excluded
                event_row(T0 + 10, B),
                event_row(T0 + 50, A, "duplicate", event_id=FORMULA),
                event_row(T0 - 1, A),  # before the range
            ],
        )
        connection.execute(
            schema.rejections.insert(),
            [rejection_row(T0 + 20, A), rejection_row(T0 + 10, None, "unauthenticated")],
        )


def shape(rows: list[dict[str, str]]) -> list[tuple[str, int, str]]:
    return [(row["kind"], int(row["at_ms"]) - T0, row["number"]) for row in rows]


def test_rows_come_in_time_order_then_kind(engine: Engine) -> None:
    seed(engine)
    rows = list(export_rows(engine, T0, T0 + 100))
    assert shape(rows) == [
        ("event", 10, B),  # a tie: received before refused before applied
        ("rejection", 10, ""),  # an unauthenticated refusal: no number read
        ("application", 10, B),
        ("rejection", 20, A),
        ("event", 30, A),
        ("application", 40, A),
        ("event", 50, A),
    ]
    assert all(list(row) == list(COLUMNS) for row in rows)


def test_each_kind_fills_its_columns(engine: Engine) -> None:
    seed(engine)
    rows = {row["stream_id"]: row for row in export_rows(engine, T0 + 20, T0 + 41)}
    assert rows[f"{T0 + 30}-0"] == {
        **dict.fromkeys(COLUMNS, ""),
        "kind": "event",
        "at": iso_utc(T0 + 30),
        "at_ms": str(T0 + 30),
        "number": A,
        "action": "optOut",
        "status": "queued",
        "event_id": f"e-{T0 + 30}",
        "event_at": iso_utc(T0 + 25),
        "stream_id": f"{T0 + 30}-0",
        "raw": event_row(T0 + 30, A)["event"],
    }
    assert rows[f"rejected:{T0 + 20}-0"] == {
        **dict.fromkeys(COLUMNS, ""),
        "kind": "rejection",
        "at": iso_utc(T0 + 20),
        "at_ms": str(T0 + 20),
        "number": A,
        "status": "422",
        "http_status": "422",
        "reason": "invalid_event: timestamp is not ISO 8601",
        "stream_id": f"rejected:{T0 + 20}-0",
        "source": "receiver",
        "raw": rejection_row(T0 + 20, A)["fields"],
    }
    assert rows[f"{T0 + 40}-1"] == {
        **dict.fromkeys(COLUMNS, ""),
        "kind": "application",
        "at": iso_utc(T0 + 40),
        "at_ms": str(T0 + 40),
        "number": A,
        "action": "optOut",
        "status": "acknowledged",
        "event_id": f"e-{T0 + 10}",
        "event_at": iso_utc(T0 + 5),
        "expires_at": iso_utc(T0 + 86_400_000),
        "result": "created",
        "http_status": "200",
        "record_id": "r-1",
        "flow_run_id": "run-1",
        "adapter": "dnc-groups",
        "stream_id": f"{T0 + 40}-1",
    }


def test_since_is_included_and_until_is_not(engine: Engine) -> None:
    seed(engine)
    assert shape(list(export_rows(engine, T0 + 10, T0 + 30))) == [
        ("event", 10, B),
        ("rejection", 10, ""),
        ("application", 10, B),
        ("rejection", 20, A),
    ]
    assert list(export_rows(engine, T0 + 51, T0 + 100)) == []
    assert shape(list(export_rows(engine, T0 - 1, T0))) == [("event", -1, A)]


def test_one_number(engine: Engine) -> None:
    seed(engine)
    assert shape(list(export_rows(engine, T0, T0 + 100, A))) == [
        ("rejection", 20, A),
        ("event", 30, A),
        ("application", 40, A),
        ("event", 50, A),
    ]
    assert list(export_rows(engine, T0, T0 + 100, "+12025550199")) == []


@pytest.mark.parametrize(
    ("since", "until", "number"),
    [(0, 1_000, None), (10, 11, None), (0, 1_000, A), (0, 1_000, B), (-1, 30, A), (60, 99, None)],
)
def test_count_is_the_number_of_rows(
    engine: Engine, since: int, until: int, number: str | None
) -> None:
    seed(engine)
    rows = list(export_rows(engine, T0 + since, T0 + until, number))
    assert count_rows(engine, T0 + since, T0 + until, number) == len(rows)


def test_a_store_not_migrated_is_refused_at_the_call(audit_database_url: str) -> None:
    engine = open_engine(audit_database_url)
    with pytest.raises(AuditStoreNotReady):
        export_rows(engine, T0, T0 + 1)  # not at the first next()
    with pytest.raises(AuditStoreNotReady):
        count_rows(engine, T0, T0 + 1)
    engine.dispose()


def test_rows_are_streamed_not_loaded(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            schema.events.insert(), [event_row(T0 + i, A) for i in range(20_000, 0, -1)]
        )
    cursors: list[tuple[str, dict[str, Any]]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(_conn: Any, cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        cursors.append((type(cursor).__name__, dict(context.execution_options)))

    rows = export_rows(engine, T0, T0 + 30_000, batch=500)
    cursors.clear()  # the schema check
    assert engine.pool.checkedout() == 0  # nothing read before the first next()
    first = list(islice(rows, 3))
    assert [row["at_ms"] for row in first] == [str(T0 + 1), str(T0 + 2), str(T0 + 3)]
    assert engine.pool.checkedout() == 1  # the query is still being read
    [(cursor, options)] = cursors
    assert options["stream_results"] is True and options["yield_per"] == 500
    if engine.dialect.name == "postgresql":
        assert cursor == "ServerCursor"  # psycopg's named cursor: rows stay on the server
    assert sum(1 for _ in rows) == 20_000 - 3
    assert engine.pool.checkedout() == 0  # exhausted: the connection is back


def test_closing_early_returns_the_connection(engine: Engine) -> None:
    seed(engine)
    rows = export_rows(engine, T0, T0 + 100)
    next(rows)
    assert engine.pool.checkedout() == 1
    rows.close()
    assert engine.pool.checkedout() == 0


def test_csv_cells_that_could_run_as_formulas_are_neutralised() -> None:
    kept = [A, "-12", "+1", "", "plain", "a=b", "42", "{}", "'quoted"]
    assert [csv_cell(text) for text in kept] == kept
    for text in [FORMULA, "@SUM(A1)", "+1+cmd", "-2+3", "\t=1", "\r=1", "+", "-", "+१२३"]:
        assert csv_cell(text) == "'" + text


def test_writers_give_a_header_and_one_line_per_row() -> None:
    row = dict.fromkeys(COLUMNS, "") | {"number": A, "reason": 'a, "b"\nc', "event_id": FORMULA}
    text = io.StringIO(newline="")
    assert write_csv([row, row], text) == 2
    parsed = list(csv.reader(io.StringIO(text.getvalue(), newline="")))
    assert parsed[0] == list(COLUMNS) and len(parsed) == 3
    assert dict(zip(COLUMNS, parsed[1], strict=True)) == row | {"event_id": "'" + FORMULA}
    lines = io.StringIO()
    assert write_jsonl([row], lines) == 1
    assert lines.getvalue().endswith("}\n") and lines.getvalue().count("\n") == 1
    assert json.loads(lines.getvalue()) == row  # exact: no CSV guard in JSON


# The command, on a SQLite file named by DNC_AUDIT_DATABASE_URL.


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path}/store/audit.sqlite3"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    monkeypatch.setenv("DNC_INTAKE_DEFAULT_REGION", "US")
    engine = open_engine(url)
    upgrade(engine)
    seed(engine)
    yield engine
    engine.dispose()


def export(output: Path | str, *args: str) -> Any:
    since, until = iso_utc(T0), iso_utc(T0 + 100)
    command = ["audit", "export", "--since", since, "--until", until, "--output", str(output)]
    return CliRunner().invoke(app, [*command, *args])


def test_csv_export_reads_back_with_exact_numbers(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "out" / "export.csv"
    path.parent.mkdir()
    result = export(path)
    assert result.exit_code == 0, result.output
    assert "7 row(s)" in result.stderr and str(path) in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open(newline="", encoding="utf-8") as file:
        parsed = list(csv.DictReader(file))
    expected = list(export_rows(store, T0, T0 + 100))
    assert parsed[:-1] == expected[:-1]
    assert parsed[-1] == expected[-1] | {"event_id": "'" + FORMULA}  # no formula in a sheet
    text = path.read_text(encoding="utf-8")
    assert f",{A}," in text and f"'{A}" not in text  # E.164 exactly, not quoted or prefixed


def test_jsonl_export_is_exact(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    result = export(path, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(export_rows(store, T0, T0 + 100))
    assert [list(json.loads(line)) for line in lines] == [list(COLUMNS)] * 7


def test_an_existing_file_becomes_private(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("old content that is much longer than nothing\n" * 1_000)
    path.chmod(0o644)
    result = export(path, "--number", "(202) 555-0102")  # any form intake reads
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open(newline="", encoding="utf-8") as file:
        assert [row["number"] for row in csv.DictReader(file)] == [B, B]  # truncated first


def test_a_symbolic_link_is_not_written_through(store: Engine, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "export.csv"
    link.symlink_to(target)
    result = export(link)
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr and "Traceback" not in result.output
    assert target.read_text() == "keep me"


def test_the_audit_store_itself_is_refused(store: Engine, tmp_path: Path) -> None:
    database = tmp_path / "store" / "audit.sqlite3"
    result = export(database)
    assert result.exit_code == 2 and "audit store itself" in result.output
    assert count_rows(store, T0, T0 + 100) == 7


def test_standard_output(store: Engine) -> None:
    result = export("-", "--format", "jsonl", "--number", A)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["number"] for line in result.stdout.splitlines()] == [A] * 4
    assert "4 row(s)" in result.stderr and "standard output" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--number", "12345"],
        ["--number", A, "--region", "XX"],
        ["--since", "yesterday"],
        ["--since", iso_utc(T0 + 100)],  # not before --until
    ],
)
def test_bad_usage_exits_2(store: Engine, tmp_path: Path, args: list[str]) -> None:
    result = export(tmp_path / "export.csv", *args)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "export.csv").exists()


def test_dates_and_times_without_a_zone_are_utc(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"

    def exported(*args: str) -> list[int]:
        command = ["audit", "export", "--output", str(path), "--format", "jsonl", *args]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
        return [int(json.loads(line)["at_ms"]) - T0 for line in path.read_text().splitlines()]

    assert iso_utc(T0) == "2026-11-18T09:30:00.000Z"
    day = ["--since", "2026-11-18", "--until", "2026-11-18T09:30:00.030"]  # 00:00 UTC; UTC
    assert exported(*day) == [-1, 10, 10, 10, 20]
    assert exported("--since", "2026-11-18T10:30:00.030+01:00", "--until", str(T0 + 100)) == [
        30,
        40,
        50,
    ]
    now_ms = int(time.time() * 1000)  # --until: now
    assert len(exported("--since", "2000-01-01")) == sum(
        T0 + ms < now_ms for ms in (-1, 10, 10, 10, 20, 30, 40, 50, 100)
    )


def test_a_store_not_migrated_exits_1_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/empty.sqlite3")
    path = tmp_path / "export.csv"
    path.write_text("an earlier export")
    result = export(path)
    assert result.exit_code == 1
    assert "dnc-sync audit migrate" in result.stderr and "Traceback" not in result.output
    assert path.read_text() == "an earlier export"  # the store is checked first


def test_an_unreachable_store_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://dnc:secret-password@127.0.0.1:1/audit"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    result = export(tmp_path / "export.csv")
    assert result.exit_code == 1 and "cannot read the audit store" in result.stderr
    assert "secret-password" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "export.csv").exists()


def test_a_failure_midway_leaves_no_file(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dnc_sync import audit_cli

    def broken(rows: Iterator[dict[str, str]], stream: Any) -> int:
        stream.write("half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(audit_cli._WRITERS, audit_cli.ExportFormat.CSV, broken)
    path = tmp_path / "export.csv"
    result = export(path)
    assert result.exit_code == 1 and not path.exists()
    assert "No space left on device" in result.stderr and "Traceback" not in result.output


def test_migrate_builds_an_empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/new/audit.sqlite3"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    first = CliRunner().invoke(app, ["audit", "migrate"])
    assert first.exit_code == 0, first.output
    assert f"from an empty database to {head_revision()}" in first.stdout
    again = CliRunner().invoke(app, ["audit", "migrate"])
    assert again.exit_code == 0 and "already" in again.stdout
    engine = open_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "audit.sqlite3").st_mode) == 0o600


def test_migrate_from_the_previous_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    engine = open_engine(url)
    upgrade(engine, "0001")
    engine.dispose()
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["audit", "migrate"])
    assert result.exit_code == 0, result.output
    assert f"from 0001 to {head_revision()}" in result.stdout


def test_export_never_creates_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    typo = tmp_path / "typo" / "audit.sqlite3"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{typo}")
    path = tmp_path / "export.csv"
    result = export(path)
    assert result.exit_code == 1, result.output
    assert f"no audit store at {typo}" in result.stderr and "Traceback" not in result.output
    assert not typo.parent.exists() and not path.exists()


def test_migrate_still_creates_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fresh" / "audit.sqlite3"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{path}")
    result = CliRunner().invoke(app, ["audit", "migrate"])
    assert result.exit_code == 0, result.output
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("command", ["export", "migrate"])
def test_a_malformed_database_url_is_a_usage_error(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://dnc:pa55word@db.example.com:54x32/x"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    path = tmp_path / "export.csv"
    result = export(path) if command == "export" else CliRunner().invoke(app, ["audit", command])
    assert result.exit_code == 2, result.output
    assert "DNC_AUDIT_DATABASE_URL has a port that is not a number" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "pa55word" not in result.output and "54x32" not in result.output
    assert not path.exists()


def test_migrate_an_unreachable_store_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://dnc:secret-password@127.0.0.1:1/audit"
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["audit", "migrate"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        "error: cannot migrate the audit store (DNC_AUDIT_DATABASE_URL): OperationalError"
        " (unreachable, refused the credentials, or locked by another writer)"
    )
    assert "secret-password" not in result.output and "Traceback" not in result.output


# -- gaps: entries lost before archiving, rows of every export -----------------------------


def gap_row(stream: str, after: str, through: str, missing: int | None) -> dict[str, Any]:
    return {
        "stream": stream,
        "after_id": after,
        "through_id": through,
        "missing": missing,
        "found_ms": T0 + 5_000,
    }


def seed_gaps(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            schema.gaps.insert(),
            [
                gap_row("events", f"{T0 + 30}-0", f"{T0 + 45}-2", 12),
                gap_row("unauthenticated", "0-0", f"{T0 + 10}-0", None),  # from the first id
                gap_row("rejected", f"{T0 + 100}-0", f"{T0 + 200}-0", 1),  # after the range
                gap_row("applications", "0-0", "-", None),  # no id: when it was found
            ],
        )


def test_gaps_are_rows_of_the_export_for_every_number(engine: Engine) -> None:
    seed(engine)
    seed_gaps(engine)
    rows = list(export_rows(engine, T0, T0 + 100))
    assert shape(rows) == [
        ("event", 10, B),
        ("rejection", 10, ""),
        ("application", 10, B),
        ("gap", 10, ""),  # after the records of its time
        ("rejection", 20, A),
        ("event", 30, A),
        ("gap", 30, ""),
        ("application", 40, A),
        ("event", 50, A),
    ]
    assert rows[6] == {
        **dict.fromkeys(COLUMNS, ""),
        "kind": "gap",
        "at": iso_utc(T0 + 30),
        "at_ms": str(T0 + 30),
        "status": "lost",
        "reason": f"12 events entries lost before archiving, ids after {T0 + 30}-0 up to "
        f"{T0 + 45}-2",
        "stream_id": f"events:{T0 + 30}-0..{T0 + 45}-2",
    }
    assert rows[3]["reason"] == (
        "an unknown number of unauthenticated entries lost before archiving, ids after 0-0 "
        f"up to {T0 + 10}-0"
    )
    assert rows[3]["stream_id"] == f"unauthenticated:0-0..{T0 + 10}-0"
    one = list(export_rows(engine, T0, T0 + 100, C))  # C has no record in the range
    assert shape(one) == [("gap", 10, ""), ("gap", 30, "")]
    assert count_rows(engine, T0, T0 + 100) == 9 and count_rows(engine, T0, T0 + 100, C) == 2
    later = list(export_rows(engine, T0 + 100, T0 + 6_000))
    assert [(row["kind"], row["at_ms"]) for row in later] == [
        ("event", str(T0 + 100)),
        ("gap", str(T0 + 100)),
        ("gap", str(T0 + 5_000)),  # "0-0" up to "-": the time it was found
    ]
    assert count_rows(engine, T0 + 100, T0 + 6_000) == 3


def test_gap_rows_are_written_like_the_others(engine: Engine) -> None:
    seed_gaps(engine)
    rows = list(export_rows(engine, T0, T0 + 100))
    out = io.StringIO(newline="")
    assert write_csv(rows, out) == 2
    out.seek(0)
    assert list(csv.DictReader(out)) == rows


# -- purges: records deleted past retention, rows of every export it concerns ----------------


def purge_row(cutoff_ms: int, flow_run_id: str = "run-9") -> dict[str, Any]:
    return {
        "purged_ms": cutoff_ms + 30 * 86_400_000,
        "cutoff_ms": cutoff_ms,
        "retention_days": 30,
        "events": 7,
        "rejections": 2,
        "applications": 5,
        "flow_run_id": flow_run_id,
    }


def seed_purges(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            schema.purges.insert(),
            [
                purge_row(T0 + 20, "in-range"),
                purge_row(T0, "at-since"),  # deleted only records before the range: left out
                purge_row(T0 - 5_000, "before"),  # left out
                purge_row(T0 + 9_000, "after"),  # deleted the whole range: at its last ms
            ],
        )


def test_purges_are_rows_of_the_export_for_every_number(engine: Engine) -> None:
    seed(engine)
    seed_purges(engine)
    rows = list(export_rows(engine, T0, T0 + 100))
    assert shape(rows) == [
        ("event", 10, B),
        ("rejection", 10, ""),
        ("application", 10, B),
        ("rejection", 20, A),
        ("purge", 20, ""),  # after the records of its time
        ("event", 30, A),
        ("application", 40, A),
        ("event", 50, A),
        ("purge", 99, ""),  # cutoff after the range: clipped to its last ms
    ]
    assert rows[4] == {
        **dict.fromkeys(COLUMNS, ""),
        "kind": "purge",
        "at": iso_utc(T0 + 20),
        "at_ms": str(T0 + 20),
        "status": "purged",
        "reason": f"7 events, 2 refusals, 5 CXone applications received before "
        f"{iso_utc(T0 + 20)} were purged on {iso_utc(T0 + 20 + 30 * 86_400_000)} "
        "(retention 30 days; each number's current state kept)",
        "flow_run_id": "in-range",
        "stream_id": "purge:1",
    }
    assert rows[8]["flow_run_id"] == "after" and rows[8]["stream_id"] == "purge:4"
    assert f"before {iso_utc(T0 + 9_000)} were" in rows[8]["reason"]  # the cutoff, unclipped
    one = list(export_rows(engine, T0, T0 + 100, C))  # C has no record in the range
    assert shape(one) == [("purge", 20, ""), ("purge", 99, "")]
    assert [row["flow_run_id"] for row in one] == ["in-range", "after"]
    assert count_rows(engine, T0, T0 + 100) == len(rows) == 9
    assert count_rows(engine, T0, T0 + 100, C) == len(one) == 2
    before = list(export_rows(engine, T0 - 10_000, T0 - 9_000))  # every cutoff is later
    assert [(row["flow_run_id"], row["at_ms"]) for row in before] == [
        ("in-range", str(T0 - 9_001)),  # a tie: in the order they were recorded
        ("at-since", str(T0 - 9_001)),
        ("before", str(T0 - 9_001)),
        ("after", str(T0 - 9_001)),
    ]
    assert count_rows(engine, T0 - 10_000, T0 - 9_000) == 4
    assert list(export_rows(engine, T0 + 9_000, T0 + 9_500)) == []  # no cutoff after since
    assert count_rows(engine, T0 + 9_000, T0 + 9_500) == 0
