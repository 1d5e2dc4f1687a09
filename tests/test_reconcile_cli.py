"""The reconciliation at the edges: ``dnc-sync reconcile`` option checks, ``dnc-sync status``
(exit 7 and the rendered counts) and the receiver's ``/metrics`` gauges."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from typer.testing import CliRunner

from dnc.keys import RedisKeys
from dnc.reconcile.report import ReconcileReport
from dnc_sync import reconcile_cli
from dnc_sync.cli import app
from tests.conftest import make_app, make_client, make_store

FINISHED_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z
DRIFT = {"opt_out_missing": 3, "opt_in_record": 1, "expiry_differs": 0, "not_owned": 2}
NO_DRIFT = dict.fromkeys(DRIFT, 0)


def last_report(**changes: object) -> ReconcileReport:
    report = ReconcileReport(
        flow_run_id="run-7",
        adapter="dnc-groups",
        started_ms=FINISHED_MS - 60_000,
        finished_ms=FINISHED_MS,
        complete=True,
        records=12_345,
        numbers=12_000,
        drift=DRIFT,
    )
    return report.model_copy(update=changes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconcile", "--force"], "--force goes with --adopt"),
        (["reconcile", "--adopt", "--repair"], "--adopt compares nothing to repair"),
        (["reconcile", "--repair", "--force"], "--force goes with --adopt"),
        (["reconcile", "--time-budget-s", "0"], "0.1"),
    ],
)
def test_reconcile_refuses_option_combinations(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich's error panel: one line

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("refused options must not start a run")

    monkeypatch.setattr(reconcile_cli, "_reconcile", must_not_run)
    monkeypatch.setattr(reconcile_cli, "_adopt", must_not_run)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in re.sub(r"[\s│]+", " ", result.output)


@pytest.fixture
def status_env(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[redis.Redis]:
    """``dnc-sync status`` pointed at the real Redis under this test's namespace; yields a
    client to seed it (its keys are deleted afterwards)."""
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich's tables: no wrapped cells
    client = redis.Redis.from_url(redis_url)
    yield client
    stale = list(client.scan_iter(match="{" + namespace + "}:*", count=1000))
    if stale:
        client.delete(*stale)
    client.close()


def seed(client: redis.Redis, namespace: str, report: ReconcileReport) -> None:
    client.set(RedisKeys(namespace).reconcile_last, report.model_dump_json())


def row(output: str, label: str) -> str:
    """The value cell of the table row labelled ``label`` (rich's box drawing)."""
    match = re.search(rf"│\s*{re.escape(label)}\s*│\s*(.*?)\s*│", output)
    assert match is not None, output
    return match.group(1)


@pytest.mark.redis
def test_status_exits_7_and_shows_the_drift(status_env: redis.Redis, namespace: str) -> None:
    seed(status_env, namespace, last_report(requeued=4))
    result = CliRunner().invoke(app, ["status", "--no-audit"])
    assert result.exit_code == 7, result.output
    out = result.output
    assert row(out, "finished (UTC)") == "2027-01-15T08:00:00Z, complete"
    assert row(out, "records read / numbers compared") == "12,345 / 12,000"
    assert [row(out, name) for name in DRIFT] == ["3", "1", "0", "2"]
    assert row(out, "requeued by --repair") == "4"


@pytest.mark.redis
def test_status_exits_7_for_an_incomplete_run_without_drift(
    status_env: redis.Redis, namespace: str
) -> None:
    seed(
        status_env,
        namespace,
        last_report(complete=False, incomplete_reason="lease [lost]", drift=NO_DRIFT),
    )
    result = CliRunner().invoke(app, ["status", "--no-audit"])
    assert result.exit_code == 7, result.output
    # rich markup in the reason is shown as written, not read
    assert row(result.output, "finished (UTC)") == "2027-01-15T08:00:00Z, incomplete (lease [lost])"
    assert [row(result.output, name) for name in DRIFT] == ["0", "0", "0", "0"]
    assert "requeued by --repair" not in result.output


@pytest.mark.redis
def test_status_json_says_drifted(status_env: redis.Redis, namespace: str) -> None:
    seed(status_env, namespace, last_report())
    result = CliRunner().invoke(app, ["status", "--no-audit", "--json"])
    assert result.exit_code == 7, result.output
    data = json.loads(result.output)
    assert data["drifted"] is True
    assert data["last_reconcile"]["drift"] == DRIFT
    assert data["last_reconcile"]["records"] == 12_345


@pytest.mark.redis
def test_status_of_a_clean_reconciliation_exits_0(status_env: redis.Redis, namespace: str) -> None:
    seed(status_env, namespace, last_report(drift=NO_DRIFT))
    result = CliRunner().invoke(app, ["status", "--no-audit"])
    assert result.exit_code == 0, result.output
    assert row(result.output, "finished (UTC)") == "2027-01-15T08:00:00Z, complete"


@pytest.mark.redis
@pytest.mark.parametrize("drift_class", ["not_owned", "opt_in_record"])
def test_records_that_only_keep_someone_off_the_calls_do_not_fail_the_probe(
    status_env: redis.Redis, namespace: str, drift_class: str
) -> None:
    seed(status_env, namespace, last_report(drift=NO_DRIFT | {drift_class: 3}))
    result = CliRunner().invoke(app, ["status", "--no-audit"])
    assert result.exit_code == 0, result.output
    assert drift_class in result.output


def test_status_before_any_reconciliation(status_env: redis.Redis) -> None:
    result = CliRunner().invoke(app, ["status", "--no-audit"])
    assert result.exit_code == 0, result.output
    assert "last reconciliation: none yet (dnc-sync reconcile)" in result.output
    assert (
        json.loads(CliRunner().invoke(app, ["status", "--no-audit", "--json"]).output)[
            "last_reconcile"
        ]
        is None
    )


@pytest.mark.redis
def test_dead_letters_come_before_drift(status_env: redis.Redis, namespace: str) -> None:
    seed(status_env, namespace, last_report())
    status_env.hset(RedisKeys(namespace).dead_letters, "+12025550101", "{}")
    assert CliRunner().invoke(app, ["status", "--no-audit"]).exit_code == 4


async def test_metrics_expose_the_last_reconciliation(
    fake_redis: aioredis.Redis, namespace: str
) -> None:
    store = make_store(fake_redis, namespace)
    keys = RedisKeys(namespace)
    async with make_client(make_app(store), auth=False) as client:
        before = (await client.get("/metrics")).text
        assert "dnc_reconcile_drift_numbers{" not in before
        await fake_redis.set(keys.reconcile_last, last_report(complete=False).model_dump_json())
        text = (await client.get("/metrics")).text
    assert 'dnc_reconcile_drift_numbers{drift_class="opt_out_missing"} 3.0' in text.splitlines()
    assert 'dnc_reconcile_drift_numbers{drift_class="not_owned"} 2.0' in text.splitlines()
    assert 'dnc_reconcile_drift_numbers{drift_class="expiry_differs"} 0.0' in text.splitlines()
    assert "dnc_reconcile_last_finished_timestamp_seconds 1.8e+09" in text.splitlines()
    assert "dnc_reconcile_last_complete 0.0" in text.splitlines()


async def test_metrics_follow_a_newer_report(fake_redis: aioredis.Redis, namespace: str) -> None:
    store = make_store(fake_redis, namespace)
    keys = RedisKeys(namespace)
    async with make_client(make_app(store), auth=False) as client:
        await fake_redis.set(keys.reconcile_last, last_report().model_dump_json())
        await client.get("/metrics")
        newer = last_report(drift=NO_DRIFT, finished_ms=FINISHED_MS + 86_400_000)
        await fake_redis.set(keys.reconcile_last, newer.model_dump_json())
        lines = (await client.get("/metrics")).text.splitlines()
    assert 'dnc_reconcile_drift_numbers{drift_class="opt_out_missing"} 0.0' in lines
    assert "dnc_reconcile_last_finished_timestamp_seconds 1.8000864e+09" in lines
    assert "dnc_reconcile_last_complete 1.0" in lines
