"""``dnc-sync check``: every setting read before anything starts, each problem named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnc.audit.database import open_engine, upgrade
from dnc_sync.check_cli import find_problems
from dnc_sync.cli import app

GOOD = {
    "DNC_RECEIVER_BEARER_SECRETS": "0123456789abcdef0123",
    "DNC_CXONE_CLIENT_ID": "client",
    "DNC_CXONE_CLIENT_SECRET": "client-secret-value",
    "DNC_CXONE_ACCESS_KEY_ID": "KEYID",
    "DNC_CXONE_ACCESS_KEY_SECRET": "access-key-secret-value",
    "DNC_CXONE_DNC_GROUP_ID": "1001",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> pytest.MonkeyPatch:
    for key, value in GOOD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)  # `check` also reads Redis's eviction policy
    store = f"sqlite:///{tmp_path}/audit.sqlite3"  # and opens the audit store
    upgrade(open_engine(store))
    monkeypatch.setenv("DNC_AUDIT_DATABASE_URL", store)
    return monkeypatch


def test_an_audit_store_not_migrated_or_a_short_retention_is_a_warning(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("DNC_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path}/missing/audit.sqlite3")
    env.setenv("DNC_AUDIT_RETENTION_DAYS", "365")
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "no audit store at" in result.output and "under five years" in result.output
    assert not (tmp_path / "missing").exists()  # a check creates nothing


def test_a_complete_configuration_passes(env: pytest.MonkeyPatch) -> None:
    assert find_problems() == []
    result = CliRunner().invoke(app, ["check"])
    assert (result.exit_code, result.output.splitlines()[-1]) == (0, "configuration OK")
    assert "secret DNC_CXONE_CLIENT_SECRET: environment" in result.output  # never the value
    assert all(value not in result.output for key, value in GOOD.items() if "SECRET" in key)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DNC_CXONE_BATCH_SIZE", "0", "DNC_CXONE_BATCH_SIZE: Input should be greater"),
        ("DNC_CXONE_DNC_GROUP_ID", "", "DNC_CXONE_DNC_GROUP_ID is required"),
        ("DNC_CXONE_ACCESS_KEY_SECRET", "", "DNC_CXONE_ACCESS_KEY_SECRET is required"),
        ("DNC_RECEIVER_BEARER_SECRETS", "", "the receiver needs a secret"),
        ("DNC_REDIS_NAMESPACE", "Bad Space", "DNC_REDIS_NAMESPACE: String should match"),
        ("DNC_SYNC_LAG_LIMIT_S", "x", "DNC_SYNC_LAG_LIMIT_S: Input should be a valid integer"),
    ],
)
def test_each_problem_is_named(
    env: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    env.setenv(name, value)
    assert any(expected in problem for problem in find_problems()), find_problems()
    assert CliRunner().invoke(app, ["check"]).exit_code == 2


def test_outbound_contacts_needs_its_base_url_not_access_keys(env: pytest.MonkeyPatch) -> None:
    env.setenv("DNC_CXONE_ADAPTER", "outbound-contacts")
    env.delenv("DNC_CXONE_ACCESS_KEY_ID")
    assert find_problems() == ["DNC_CXONE_CONTACTS_BASE_URL is required for outbound-contacts"]


def test_secrets_are_not_echoed(env: pytest.MonkeyPatch) -> None:
    env.setenv("DNC_RECEIVER_BEARER_SECRETS", "short-secret")  # too short: refused
    problems = " ".join(find_problems())
    assert "DNC_RECEIVER_BEARER_SECRETS" in problems and "short-secret" not in problems
