"""`dnc-sync import FILE.csv`: header mapping, rejects, re-import, encodings, exit codes, masking;
on fakeredis through the CLI, and once against the real redis-server."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import uuid
from pathlib import Path

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from typer.testing import CliRunner

from dnc.intake import IntakePolicy
from dnc.keys import RedisKeys
from dnc.store import EventStore, StoreLimits
from dnc_sync import import_cli
from dnc_sync.cli import app
from dnc_sync.csv_rows import REJECT_COLUMNS, Columns, HeaderError, RejectsFile, map_header
from dnc_sync.importer import import_rows
from tests.stored import latest_event, recorded_event_sync

HEADER = "phoneNumber,eventName,timestamp,region,expiresAt"
KEYS = RedisKeys("dnc")
NUMBERS = ("2025550123", "2025550124", "2079460123", "2025550125", "2025550126")


def write_csv(tmp_path: Path, *lines: str, name: str = "list.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode())
    return path


@pytest.fixture
def fake_env(fake_server: fakeredis.FakeServer, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    """The command's Redis is ``fake_server``; returns a sync client to look at it."""
    monkeypatch.setattr(
        import_cli, "open_redis", lambda settings: fakeredis.FakeAsyncRedis(server=fake_server)
    )
    for name in ("DNC_INTAKE_DEFAULT_REGION", "DNC_REDIS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    return fakeredis.FakeRedis(server=fake_server)


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["import", *map(str, args)])
    return result.exit_code, result.output


def counts(output: str) -> dict[str, int]:
    """The summary table as {outcome: rows}."""
    rows = re.findall(r"│\s*([^│]+?)\s*│\s*([\d,.]+)\s*│", output)
    return {name: int(float(value.replace(",", ""))) for name, value in rows}


# -- header mapping --------------------------------------------------------------------------


def test_header_maps_defaults_and_optional_columns_when_present() -> None:
    assert map_header(HEADER.split(","), Columns()) == {
        "phoneNumber": 0,
        "eventName": 1,
        "timestamp": 2,
        "region": 3,
        "expiresAt": 4,
    }
    assert map_header([" timestamp", "eventName ", "phoneNumber"], Columns()) == {
        "phoneNumber": 2,
        "eventName": 1,
        "timestamp": 0,
    }


@pytest.mark.parametrize(
    ("header", "columns", "message"),
    [
        (["phone", "eventName", "timestamp"], Columns(), "missing header(s) 'phoneNumber'"),
        (HEADER.split(","), Columns(region="country"), "missing header(s) 'country'"),
        (["phoneNumber", "eventName", "timestamp", "phoneNumber"], Columns(), "more than once"),
    ],
)
def test_bad_header_is_named(header: list[str], columns: Columns, message: str) -> None:
    with pytest.raises(HeaderError, match=re.escape(message)):
        map_header(header, columns)


def test_custom_headers_delimiter_region_and_expiry(tmp_path: Path, fake_env: redis.Redis) -> None:
    path = write_csv(
        tmp_path,
        "phone;action;time;country;until",
        "020 7946 0123;optOut;2025-01-01T00:00:00Z;;2099-01-01T00:00:00Z",
        "(202) 555-0123;OPTIN;1735689600000;US;",
    )
    code, output = run(
        path,
        *("--phone-column", "phone", "--action-column", "action", "--timestamp-column", "time"),
        *("--region-column", "country", "--expiry-column", "until"),
        *("--delimiter", ";", "--default-region", "GB"),
    )
    assert code == 0, output
    assert counts(output)["queued"] == 2
    gb = recorded_event_sync(fake_env, KEYS, "+442079460123")  # read in the default region
    assert (gb["action"], gb["expiresMs"], gb["region"]) == ("optOut", 4_070_908_800_000, "GB")
    assert recorded_event_sync(fake_env, KEYS, "+12025550123")["action"] == "optIn"


def test_bom_is_dropped_by_the_default_encoding(tmp_path: Path, fake_env: redis.Redis) -> None:
    path = write_csv(tmp_path, HEADER, "(202) 555-0123,optOut,2025-01-01T00:00:00Z,,", bom=True)
    code, output = run(path)
    assert (code, counts(output)["queued"]) == (0, 1), output
    # Read as plain utf-8 the BOM sticks to the first header: the header is missing.
    code, output = run(path, "--encoding", "utf-8")
    assert code == 2 and "missing header(s) 'phoneNumber'" in output


# -- rejects ---------------------------------------------------------------------------------


def test_rejects_file_and_stream_name_each_bad_row(tmp_path: Path, fake_env: redis.Redis) -> None:
    path = write_csv(
        tmp_path,
        HEADER,
        "(202) 555-0123,optOut,2025-01-01T00:00:00Z,,",  # row 2: fine
        "12,subscribe,2025-01-01T00:00:00Z,,",  # row 3: two problems
        "",  # row 4: blank, skipped
        '"202 555\n0124",optIn,2025-01-01T00:00:00Z,,2099-01-01T00:00:00Z',  # rows 5: quoted
        "+12025550125,optIn,2025-01-01T00:00:00Z,,2024-12-31T00:00:00Z",  # row 6
        "+12025550126,optOut",  # row 7: short row
    )
    code, output = run(path)
    assert code == 0, output
    assert counts(output) | {"seconds": 0, "rows/s": 0} == {
        "queued": 1,
        "duplicate": 0,
        "superseded": 0,
        "rejected": 4,
        "rejected eventName:unknown_event_name": 1,
        "rejected phoneNumber:too_short": 1,
        "rejected expiresAt:not_for_opt_in": 2,
        "rejected timestamp:missing": 1,
        "accepted with warnings": 0,
        "blank rows skipped": 1,
        "rows read": 5,
        "seconds": 0,
        "rows/s": 0,
    }
    with (tmp_path / "list.rejects.csv").open(newline="") as stream:
        lines = list(csv.reader(stream))
    assert lines[0] == [*REJECT_COLUMNS, *HEADER.split(",")]
    assert REJECT_COLUMNS == ("reject_row", "reject_field", "reject_reason", "reject_message")
    assert [line[:3] for line in lines[1:]] == [
        ["3", "eventName; phoneNumber", "unknown_event_name; too_short"],
        ["5", "expiresAt", "not_for_opt_in"],
        ["6", "expiresAt", "not_for_opt_in"],
        ["7", "timestamp", "missing"],
    ]
    assert lines[2][4:] == [
        "202 555\n0124",
        "optIn",
        "2025-01-01T00:00:00Z",
        "",
        "2099-01-01T00:00:00Z",
    ]
    assert lines[4][4:] == ["+12025550126", "optOut"]  # the raw row: the operator's own data
    entries = [fields for _, fields in fake_env.xrange(KEYS.rejected)]
    assert [(e[b"row"], e[b"status"], e[b"source"]) for e in entries] == [
        (b"3", b"422", b"import"),
        (b"5", b"422", b"import"),
        (b"6", b"422", b"import"),
        (b"7", b"422", b"import"),
    ]
    assert json.loads(entries[3][b"body"]) == {"phoneNumber": "***0126", "eventName": "optOut"}
    assert json.loads(entries[1][b"detail"])[0]["reason"] == "not_for_opt_in"
    assert not any(b"5550124" in value for e in entries for value in e.values())
    # The number as written and the sender go with each refusal to the audit store (full
    # numbers are kept there, not in the body excerpt), and with each recorded event.
    assert entries[3][b"phoneNumber"] == b"+12025550126"
    assert {e[b"sender"] for e in entries} == {b"import"}
    recorded = [json.loads(f[b"event"]) for _, f in fake_env.xrange(KEYS.audit)]
    assert recorded and {event["sender"] for event in recorded} == {"import"}


def test_opt_out_rows_with_bad_optional_columns_are_kept(
    tmp_path: Path, fake_env: redis.Redis
) -> None:
    path = write_csv(
        tmp_path,
        HEADER,
        "+12025550123,optOut,2025-01-01T00:00:00Z,,2024-12-31T00:00:00Z",  # expiry before event
        "+12025550124,optOut,2025-01-01t00:00:00z,,next year",  # lowercase t/z; not a time
        "+12025550125,optOut,2025-01-01T00:00:00Z,XX,",  # unknown region, country code given
        "+12025550126,optIn,2025-01-01T00:00:00Z,XX,",  # an opt-in must be clean
        "2025550127,optOut,2025-01-01T00:00:00Z,XX,",  # no country code: the hint is needed
        "+12025550128,optOut,2025-01-01T00:00:00,,",  # no zone: read as UTC
    )
    code, output = run(path)
    assert code == 0, output
    assert counts(output) | {"seconds": 0, "rows/s": 0} == {
        "queued": 4,
        "duplicate": 0,
        "superseded": 0,
        "rejected": 2,
        "rejected region:unknown_region": 2,
        "accepted with warnings": 4,
        "warning expiresAt:before_event_time": 1,
        "warning expiresAt:invalid": 1,
        "warning region:unknown_region": 1,
        "warning timestamp:no_time_zone": 1,
        "rows read": 6,
        "seconds": 0,
        "rows/s": 0,
    }
    for number in ("+12025550123", "+12025550124", "+12025550125"):
        stored = recorded_event_sync(fake_env, KEYS, number)
        assert stored["action"] == "optOut" and "expiresMs" not in stored
        assert len(stored["dropped"]) == 1
    assert fake_env.hgetall(KEYS.warnings) == {
        b"expiresAt:before_event_time": b"1",
        b"expiresAt:invalid": b"1",
        b"region:unknown_region": b"1",
        b"timestamp:no_time_zone": b"1",
    }
    assert fake_env.hgetall(KEYS.naive_times) == {b"import": b"1"}
    # Imported again: duplicates, not counted twice.
    assert counts(run(path)[1])["duplicate"] == 4
    assert fake_env.hget(KEYS.warnings, "expiresAt:invalid") == b"1"


def test_a_fixed_rejects_file_imports_as_it_is(tmp_path: Path, fake_env: redis.Redis) -> None:
    path = write_csv(tmp_path, HEADER, "12,optOut,2025-01-01T00:00:00Z,,")
    assert run(path)[0] == 0
    rejects = tmp_path / "list.rejects.csv"
    rejects.write_text(rejects.read_text().replace(",12,", ",+12025550123,"))
    code, output = run(rejects)
    assert (code, counts(output)["queued"]) == (0, 1), output


# -- idempotency and batching -----------------------------------------------------------------


def test_importing_the_same_file_twice_is_harmless(tmp_path: Path, fake_env: redis.Redis) -> None:
    lines = [f"+1{n},optOut,2025-01-01T00:00:0{i}Z,," for i, n in enumerate(NUMBERS[:2])]
    path = write_csv(tmp_path, HEADER, *lines, "+44 20 7946 0123,optIn,1735689600000,,")
    first = counts(run(path)[1])
    code, output = run(path)
    second = counts(output)
    assert (first["queued"], first["duplicate"]) == (3, 0)
    assert (code, second["queued"], second["duplicate"]) == (0, 0, 3)
    assert fake_env.zcard(KEYS.pending) == 3
    # An older event for a known number is superseded, as through the receiver.
    older = write_csv(tmp_path, HEADER, "+12025550123,optIn,2024-01-01T00:00:00Z,,", name="b.csv")
    assert counts(run(older)[1])["superseded"] == 1


async def test_one_lua_call_per_batch_and_the_later_event_wins(
    fake_redis: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(fake_redis, KEYS, StoreLimits(max_batch=2))
    calls: list[int] = []
    real_batch = store._record_batch

    async def counted(events):  # type: ignore[no-untyped-def]
        calls.append(len(events))
        return await real_batch(events)

    monkeypatch.setattr(store, "_record_batch", counted)
    rows = [
        (2, ["+12025550123", "optIn", "2025-01-02T00:00:00Z"]),
        (3, ["+12025550124", "optOut", "2025-01-01T00:00:00Z"]),
        (4, ["+12025550123", "optOut", "2025-01-01T00:00:00Z"]),  # older: superseded
        (5, ["x", "optOut", "2025-01-01T00:00:00Z"]),
        (6, ["+12025550125", "optOut", "2025-01-01T00:00:00Z"]),
    ]
    with (tmp_path / "r.csv").open("w") as stream:
        report = await import_rows(
            iter(rows),
            {"phoneNumber": 0, "eventName": 1, "timestamp": 2},
            IntakePolicy(),
            store,
            RejectsFile(stream, ["p", "a", "t"]),
            batch_size=2,
        )
    assert calls == [2, 1, 1]  # rows 2-3, rows 4 (+5 refused), row 6
    assert report.outcomes == {"queued": 3, "superseded": 1, "rejected": 1}
    assert (await latest_event(fake_redis, KEYS, "+12025550123")).action.value == "optIn"


def test_worker_processes_judge_the_same_way(tmp_path: Path, fake_env: redis.Redis) -> None:
    lines = [f"+1{n},optOut,2025-01-01T00:00:0{i}Z,," for i, n in enumerate(NUMBERS)]
    path = write_csv(tmp_path, HEADER, *lines, "12,optIn,2025-01-01T00:00:00Z,,", "", "x,y")
    code, output = run(path, "--workers", "1", "--batch-size", "2")
    assert code == 0, output
    in_workers = (tmp_path / "list.rejects.csv").read_text()
    assert counts(output)["queued"] == 5 and counts(output)["rejected"] == 2
    fake_env.flushall()
    code, output = run(path, "--workers", "0", "--batch-size", "2")
    assert counts(output)["queued"] == 5
    assert (tmp_path / "list.rejects.csv").read_text() == in_workers
    assert in_workers.count("\n") == 3  # header and the two refused rows, in file order
    assert in_workers.index("\n7,") < in_workers.index("\n9,")


# -- exit codes and what is printed -----------------------------------------------------------


def test_bad_header_exits_2_naming_what_was_found_masked(
    tmp_path: Path, fake_env: redis.Redis
) -> None:
    path = write_csv(tmp_path, "+12025550123,optOut,2025-01-01T00:00:00Z")  # no header row
    rejects = tmp_path / "list.rejects.csv"
    rejects.write_text("kept\n")
    code, output = run(path)
    assert code == 2
    assert "missing header(s) 'phoneNumber', 'eventName', 'timestamp'" in output
    assert "headers found: '***0123', 'optOut'" in output
    assert "2025550123" not in output
    assert rejects.read_text() == "kept\n"  # the last import's rejects are left alone


@pytest.mark.parametrize(
    "args",
    [
        ["--delimiter", ";;"],
        ["--encoding", "no-such-codec"],
        ["--default-region", "XX"],
        ["--batch-size", "0"],
        ["--rejects", "SELF"],
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, fake_env: redis.Redis, args: list[str]) -> None:
    path = write_csv(tmp_path, HEADER, "+12025550123,optOut,2025-01-01T00:00:00Z,,")
    code, output = run(path, *[str(path) if arg == "SELF" else arg for arg in args])
    assert code == 2, output
    assert fake_env.zcard(KEYS.pending) == 0
    assert path.read_text().startswith(HEADER)


def test_redis_down_exits_1(
    tmp_path: Path, fake_env: redis.Redis, fake_server: fakeredis.FakeServer
) -> None:
    path = write_csv(tmp_path, HEADER, "+12025550123,optOut,2025-01-01T00:00:00Z,,")
    fake_server.connected = False
    code, output = run(path)
    assert code == 1
    assert "redis unavailable" in output and "nothing was imported" in output


BAD_BYTES = (HEADER + "\n+12025550123,optOut,2025-01-01T00:00:00Z,,\nJos\xe9,x\n").encode("latin-1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot open"),
        (b"", "the file is empty"),
        (BAD_BYTES, f"cannot decode the file as utf-8 at byte {BAD_BYTES.index(0xE9)}"),
    ],
)
def test_unreadable_file_exits_1(
    tmp_path: Path, fake_env: redis.Redis, content: bytes | None, message: str
) -> None:
    path = tmp_path / "list.csv"
    if content is not None:
        path.write_bytes(content)
    code, output = run(path)
    assert code == 1 and message in output, output


def test_output_never_shows_a_whole_number(tmp_path: Path, fake_env: redis.Redis) -> None:
    lines = [f"+1 {n},optOut,2025-01-01T00:00:00Z,," for n in NUMBERS[:2]]
    for n in NUMBERS[2:]:
        lines += [f"{n},optOut,not-a-time,,", f"+1{n}0000,optOut,2025-01-01T00:00:00Z,,"]
    path = write_csv(tmp_path, HEADER, *lines)
    code, output = run(path)
    assert (code, counts(output)["queued"], counts(output)["rejected"]) == (0, 2, 6), output
    for n in NUMBERS:
        assert n[-7:] not in re.sub(r"[\s().+-]", "", output), output


# -- the real redis-server -------------------------------------------------------------------


def test_import_into_real_redis(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = "imp" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("DNC_REDIS_URL", redis_url)
    monkeypatch.setenv("DNC_REDIS_NAMESPACE", namespace)
    monkeypatch.setenv("DNC_INTAKE_DEFAULT_REGION", "US")
    lines = [f"({n[:3]}) {n[3:6]}-{n[6:]},optOut,2025-01-01T00:00:00Z,," for n in NUMBERS]
    path = write_csv(tmp_path, HEADER, *lines, "555,optOut,2025-01-01T00:00:00Z,,")
    code, output = run(path, "--batch-size", "2")
    assert code == 0, output
    assert (counts(output)["queued"], counts(output)["rejected"]) == (5, 1)

    async def look() -> tuple[int, int]:
        client = aioredis.Redis.from_url(redis_url)
        keys = RedisKeys(namespace)
        try:
            return await client.zcard(keys.pending), await client.xlen(keys.rejected)
        finally:
            await client.delete(*[k async for k in client.scan_iter(match=keys.tag + ":*")])
            await client.aclose()

    assert asyncio.run(look()) == (5, 1)
