"""Audit store migrations: from an empty database and from the previous revision, on SQLite
and PostgreSQL; the migrated schema is the one the code uses (``dnc.audit.schema``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from dnc.audit import schema
from dnc.audit.database import (
    AuditStoreNotReady,
    current_revision,
    head_revision,
    open_engine,
    require_current,
    upgrade,
)


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
