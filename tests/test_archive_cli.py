"""``dnc-sync archive run`` when it cannot work: Redis or the audit store out of reach, a bad
setting. One line naming what failed (never the database URL or its password), exit 1 (2 for
a setting), no traceback; checked before Prefect starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from dnc.errors import StoreUnavailable
from dnc_sync.cli import app
from tests.conftest import free_port

PASSWORD = "S3cretPassw0rd"


def run() -> Result:
    return CliRunner().invoke(app, ["archive", "run"])


def one_line(result: Result) -> str:
    """The whole output, which must be one line and no traceback."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    return lines[0]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> pytest.MonkeyPatch:
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_CONNECT_TIMEOUT_S", "0.5")
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/audit.sqlite3")
    return monkeypatch


def test_redis_down(env: pytest.MonkeyPatch) -> None:
    port = free_port()
    env.setenv("DNC_REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    result = run()
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith(f"error: cannot reach Redis at 127.0.0.1:{port}/0: ")
    assert PASSWORD not in result.output


def test_postgresql_unreachable(env: pytest.MonkeyPatch) -> None:
    port = free_port()
    url = f"postgresql+psycopg://dnc:{PASSWORD}@127.0.0.1:{port}/dnc_audit?connect_timeout=2"
    env.setenv("DNC_AUDIT_DATABASE_URL", url)
    result = run()
    assert result.exit_code == 1
    assert one_line(result) == (
        "error: cannot open the audit store (DNC_AUDIT_DATABASE_URL): OperationalError"
        " (unreachable, refused the credentials, or locked by another writer)"
    )
    assert PASSWORD not in result.output and "postgresql" not in result.output


def test_a_sqlite_store_that_cannot_be_created(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/a-file/audit.sqlite3")
    result = run()
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith("error: cannot open the audit store (DNC_AUDIT_DATABASE_URL): ")


def test_a_malformed_database_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("DNC_AUDIT_DATABASE_URL", f"postgresql+psycopg://dnc:{PASSWORD}@db:54x32/x")
    result = run()
    assert result.exit_code == 2, result.output
    assert "DNC_AUDIT_DATABASE_URL has a port that is not a number" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert PASSWORD not in result.output and "54x32" not in result.output


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (
            StoreUnavailable("redis unavailable: ConnectionError"),
            "error: cannot reach Redis at 127.0.0.1:",
        ),
        (
            OperationalError("SELECT 1", {}, Exception(f"password={PASSWORD}")),
            "error: cannot write the audit store (DNC_AUDIT_DATABASE_URL): Exception",
        ),
    ],
)
def test_a_failure_during_the_run(
    env: pytest.MonkeyPatch, failure: Exception, expected: str
) -> None:
    import flows.archive

    async def failing(**_: Any) -> dict[str, object]:
        raise failure

    env.setattr(flows.archive, "archive_audit", failing)  # the checks before it pass
    result = run()
    assert result.exit_code == 1
    assert one_line(result).startswith(expected)
    assert PASSWORD not in result.output
