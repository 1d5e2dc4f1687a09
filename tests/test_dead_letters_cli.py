"""`dnc-sync dead-letters list|requeue` against the real redis-server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.store import EventStore, StoreLimits
from dnc_sync.cli import app
from tests.test_pending import T0, event


async def _dead_letter_two(url: str, namespace: str) -> None:
    client = aioredis.Redis.from_url(url)
    keys = RedisKeys(namespace)
    store, queue = EventStore(client, keys, StoreLimits()), PendingQueue(client, keys)
    await store.record(event("+12025550101", T0))
    await store.record(event("+12025550102", T0 + 1, Action.OPT_IN))
    await queue.acquire_lease("cli", 10_000)
    claims = await queue.claim("cli", 10)
    await queue.dead_letter([(c, "Invalid phone number.") for c in claims], now_ms=T0 + 5)
    await client.aclose()


async def _backlog(url: str, namespace: str) -> int:
    client = aioredis.Redis.from_url(url)
    size, _ = await PendingQueue(client, RedisKeys(namespace)).backlog()
    await client.aclose()
    return size


@pytest.fixture
def env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    namespace = "cli" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    asyncio.run(_dead_letter_two(redis_url, namespace))
    return redis_url, namespace


def test_list_masks_numbers_unless_asked(env: tuple[str, str]) -> None:
    runner = CliRunner()  # not a terminal: one line per row whatever COLUMNS says
    masked = runner.invoke(app, ["dead-letters", "list"])
    assert masked.exit_code == 0, masked.output
    assert "***0101" in masked.output and "2025550101" not in masked.output
    assert "Invalid phone number." in masked.output and "2 dead letter(s)" in masked.output
    shown = runner.invoke(app, ["dead-letters", "list", "--show-numbers"])
    assert "+12025550101" in shown.output


def test_requeue_one_then_all(env: tuple[str, str]) -> None:
    runner = CliRunner()
    one = runner.invoke(app, ["dead-letters", "requeue", "(202) 555-0102"])  # any written form
    assert (one.exit_code, one.output.strip()) == (0, "requeued 1 number(s)")
    assert asyncio.run(_backlog(*env)) == 1
    rest = runner.invoke(app, ["dead-letters", "requeue", "--all"])
    assert rest.output.strip() == "requeued 1 number(s)"
    assert asyncio.run(_backlog(*env)) == 2


def test_requeue_refuses_what_is_not_a_number(env: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, ["dead-letters", "requeue", "12345"])
    assert result.exit_code == 2 and "too few digits" in result.output


@pytest.mark.parametrize("args", [[], ["+12025550101", "--all"]])
def test_requeue_needs_numbers_or_all(env: tuple[str, str], args: list[str]) -> None:
    result = CliRunner().invoke(app, ["dead-letters", "requeue", *args])
    assert result.exit_code == 2


def test_requeue_says_why_a_named_number_was_not_requeued(env: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, ["dead-letters", "requeue", "+12025550101", "+12025550199"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "requeued 1 number(s)"
    assert "not dead letters (nothing to requeue): ***0199" in " ".join(lines[1:])
    assert "2025550199" not in result.output  # masked


def test_list_without_dead_letters_says_so(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", "cli" + uuid.uuid4().hex[:10])
    result = CliRunner().invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0 and result.output.strip().startswith("no dead letters")
    assert "┏" not in result.output  # no empty table
