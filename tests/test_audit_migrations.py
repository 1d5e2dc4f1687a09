"""Audit store migrations: from an empty database and from the previous revision, on SQLite
and PostgreSQL; the migrated schema is the one the code uses (``dnc.audit.schema``). Opening
the store: readers create no SQLite file, and DNC_AUDIT_DATABASE_URL is checked up front."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from dnc.audit import schema
from dnc.audit.database import (
    AuditStoreNotReady,
    current_revision,
    head_revision,
    open_engine,
    require_current,
    shown_url,
    upgrade,
)
from dnc.settings import AuditSettings
from dnc_sync.check_cli import find_problems
from dnc_sync.cli import app


def test_from_an_empty_database_to_head(audit_database_url: str) -> None:
    engine = open_engine(audit_database_url)
    assert current_revision(engine) is None
    with pytest.raises(AuditStoreNotReady):
        require_current(engine)
    upgrade(engine)
    upgrade(engine)  # again: a no-op, as at every archive start
    assert current_revision(engine) == head_revision()
    require_current(engine)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert drift == []  # the migrations build exactly the tables the code reads and writes
    engine.dispose()


def test_from_the_previous_revision_keeps_the_records(audit_database_url: str) -> None:
    engine = open_engine(audit_database_url)
    upgrade(engine, "0001")
    row = {
        "stream_ms": 1,
        "stream_seq": 0,
        "status": "queued",
        "number": "+12025550101",
        "action": "optOut",
        "event_id": "e-1",
        "event_ms": 1,
        "received_ms": 1,
        "event": "{}",
    }
    with engine.begin() as connection:
        connection.execute(schema.events.insert().values(row))
    with pytest.raises(AuditStoreNotReady):
        require_current(engine)
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.events)).scalar() == 1
        assert connection.execute(select(func.count()).select_from(schema.purges)).scalar() == 0
    engine.dispose()


def test_the_sqlite_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "audit.sqlite3"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds full phone numbers
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_a_reader_creates_no_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "audit.sqlite3"
    with pytest.raises(AuditStoreNotReady, match=f"no audit store at {path}"):
        open_engine(f"sqlite:///{path}", create=False)
    assert not path.parent.exists()
    open_engine(f"sqlite:///{path}").dispose()  # a writer creates it
    engine = open_engine(f"sqlite:///{path}", create=False)  # then readers open it
    with pytest.raises(AuditStoreNotReady, match="dnc-sync audit migrate"):
        require_current(engine)
    engine.dispose()
    open_engine("sqlite://", create=False).dispose()  # in memory: nothing to find


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///.data/audit.sqlite3",
        "sqlite:////var/lib/dnc/audit.sqlite3",
        "sqlite://",
        "postgresql+psycopg://dnc:pw@db.example.com:5432/dnc_audit?connect_timeout=2",
        "postgresql+psycopg://dnc@db.example.com/dnc_audit",
    ],
)
def test_database_urls_the_store_runs_on(url: str) -> None:
    assert AuditSettings(database_url=url).database_url.get_secret_value() == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+psycopg://u:pa55word@db.example.com:54x32/x", "a port that is not a number"),
        ("postgresql+psycopg://u:pa55word@db.example.com:99999/x", "a port outside 1-65535"),
        ("mysql+pymysql://u:pa55word@db.example.com/x", "SQLite or PostgreSQL only"),
        ("db.example.com:5432 pa55word", "not a URL SQLAlchemy can read"),
        ("", "not a URL SQLAlchemy can read"),
    ],
)
def test_a_database_url_the_store_cannot_open_is_refused_unechoed(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AuditSettings(database_url=url)
    text = str(refused.value)
    assert "DNC_AUDIT_DATABASE_URL" in text and reason in text
    assert "pa55word" not in text and "db.example.com" not in text and "54x32" not in text


def test_check_names_a_bad_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", "postgresql+psycopg://u:pa55word@db:54x32/x")
    problems = find_problems(receiver=False, cxone=False)
    assert problems == [
        "DNC_AUDIT_DATABASE_URL: Value error, DNC_AUDIT_DATABASE_URL has a port that is not a "
        "number"
    ]
    result = CliRunner().invoke(app, ["check", "--no-receiver", "--no-cxone", "--no-redis"])
    assert result.exit_code == 2 and "configuration OK" not in result.output
    assert "DNC_AUDIT_DATABASE_URL" in result.output and "pa55word" not in result.output


def test_a_url_is_shown_without_its_password() -> None:
    # scripts/run-local prints the audit store's URL (issue 16's newcomer pass: it printed a
    # PostgreSQL password); shown_url is what it prints.
    given = "postgresql+psycopg://dnc:S3cretPassw0rd@127.0.0.1:5432/dnc"
    assert shown_url(given) == "postgresql+psycopg://dnc:***@127.0.0.1:5432/dnc"
    assert shown_url("sqlite:////srv/dnc/audit.sqlite3") == "sqlite:////srv/dnc/audit.sqlite3"
    for unreadable in ("S3cretPassw0rd", "postgresql://dnc:S3cretPassw0rd@db:port/dnc"):
        assert "S3cret" not in shown_url(unreadable)
