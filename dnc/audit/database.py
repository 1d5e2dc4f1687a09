"""Engines and migrations of the audit store.

``open_engine(url)``: a SQLAlchemy engine for ``DNC_AUDIT_DATABASE_URL``. SQLite (the embedded
default) is opened in WAL mode with ``synchronous=FULL`` (a committed row survives a power
cut: the archive trims Redis only after a commit) and a busy timeout, its file created mode
0600 in a 0700 folder (it holds full phone numbers) by the writers (the archive flow, ``audit
migrate``); readers (``history``, ``audit export``, the receiver's ``GET /v1/numbers``) open
with ``create=False`` and are refused a file that is not there rather than create an empty
one. PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``) with pre-ping, so a
restarted server costs one failed attempt.

``upgrade(engine)`` brings the schema to the newest revision (Alembic, ``migrations/``);
``require_current(engine)`` refuses to read a database that is not there yet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_S = 10
"""How long a SQLite statement waits for another writer's lock, seconds: well under the
archive lease (30 s), so a blocked archive run gives up before another may start."""


class AuditStoreNotReady(RuntimeError):
    """The audit database has no schema, or an older one: run ``dnc-sync audit migrate`` (the
    archive flow migrates at start)."""


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url`` (a SQLAlchemy URL: ``sqlite:///PATH`` or
    ``postgresql+psycopg://...``). Creates a SQLite file's folder (0700) and file (0600);
    with ``create=False`` (readers) creates nothing and raises ``AuditStoreNotReady`` when the
    SQLite file does not exist. Raises ``sqlalchemy.exc.ArgumentError`` for a URL SQLAlchemy
    cannot read, ``OSError`` when the file cannot be created."""
    parsed = make_url(url)
    # hide_parameters: a failed statement's message (logged by Prefect, printed by a CLI)
    # never carries the rows it wrote; they hold full phone numbers.
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if create:
            _create_private_file(path)
        elif not path.is_file():
            # A SQLite path holds no secret: name it, it is most likely a typo.
            raise AuditStoreNotReady(
                f"no audit store at {path}: check DNC_AUDIT_DATABASE_URL, or create it with "
                "'dnc-sync audit migrate' (the archive-audit flow creates it when it runs)"
            )
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S}, hide_parameters=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _create_private_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision id of the schema (e.g. ``"0002"``)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError("the audit store has no migrations")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, ``None`` when it has no schema yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest); a no-op when it is
    there already. Safe to run at every start of the archive flow."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def require_current(engine: Engine) -> None:
    """Raise ``AuditStoreNotReady`` unless the schema is at the newest revision."""
    found, wanted = current_revision(engine), head_revision()
    if found != wanted:
        raise AuditStoreNotReady(
            f"the audit store's schema is at {found or 'nothing'}, not {wanted}: run "
            "'dnc-sync audit migrate' (the archive-audit flow migrates when it starts)"
        )


def shown_url(url: str) -> str:
    """``url`` safe to print: its password as ``***`` (``postgresql+psycopg://dnc:***@host/db``),
    anything else as given. A string SQLAlchemy cannot read as a URL is shown as
    ``(not shown: not a URL)``, since it could be anything, a secret included."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(not shown: not a URL)"


if __name__ == "__main__":  # scripts/run-local prints the audit store's URL through this
    import sys

    print(shown_url(sys.argv[1]))
