"""One reconciliation (``dnc.reconcile.run.Reconciliation``) over a fake ``RecordReader`` and
the real ``StateReader``/``PendingQueue`` on fakeredis: counts, notes, lookups of missing
opt-outs, the verify limit, stopping early, repair and samples."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis

from dnc.held_records import HeldRecord
from dnc.keys import RedisKeys
from dnc.pending import PendingQueue
from dnc.reconcile.report import ReconcileReport
from dnc.reconcile.run import ReconcileOptions, Reconciliation
from dnc.reconcile.state import StateReader

NOW = 1_800_000_000_000  # UTC ms
DAY = 86_400_000
EXP = NOW + 30 * DAY
PERMANENT = f"{NOW - DAY}:optOut"
OPT_IN = f"{NOW - DAY}:optIn"


def until(expires_ms: int) -> str:
    return f"{NOW - DAY}:optOut:{expires_ms}"


def text(value: object) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def held(number: str, expires_ms: int | None = None) -> HeldRecord:
    return HeldRecord(number, number.removeprefix("+1"), expires_ms, NOW - DAY)


class FakeReader:
    """A ``RecordReader``: ``listing`` page by page, ``found`` for lookups; counts calls."""

    def __init__(
        self, listing: list[list[HeldRecord]], found: dict[str, HeldRecord] | None = None
    ) -> None:
        self.listing = listing
        self.found = found or {}
        self.looked_up: list[str] = []
        self.pages_read = 0

    @property
    def page_size(self) -> int:
        return 3

    @property
    def total(self) -> int:
        return sum(len(page) for page in self.listing)

    @property
    def listed(self) -> int:
        return sum(len(page) for page in self.listing[: self.pages_read])

    @property
    def calls(self) -> int:
        return self.pages_read + len(self.looked_up)

    async def pages(self) -> AsyncIterator[list[HeldRecord]]:
        for page in self.listing:
            self.pages_read += 1
            yield page

    async def lookup(self, e164: str) -> HeldRecord | None:
        self.looked_up.append(e164)
        return self.found.get(e164)


@pytest.fixture
def keys(namespace: str) -> RedisKeys:
    return RedisKeys(namespace)


async def seed(
    client: aioredis.Redis,
    keys: RedisKeys,
    marks: dict[str, str],
    *,
    owned: tuple[str, ...] = (),
    pending: dict[str, int] | None = None,
    dead: tuple[str, ...] = (),
) -> None:
    await client.hset(keys.watermark, mapping=marks)  # type: ignore[arg-type]
    for number in owned:
        await client.hset(keys.owned, number, "{}")
    if pending:
        await client.zadd(keys.pending, dict(pending))
    for number in dead:
        await client.hset(keys.dead_letters, number, "{}")


def reconciliation(
    client: aioredis.Redis, keys: RedisKeys, reader: FakeReader, **options: object
) -> tuple[Reconciliation, ReconcileReport]:
    report = ReconcileReport(flow_run_id="run-1", adapter="dnc-groups", started_ms=NOW - 5)
    run = Reconciliation(
        reader,
        StateReader(client, keys),
        PendingQueue(client, keys),
        ReconcileOptions(**options),  # type: ignore[arg-type]
        report,
    )
    return run, report


def never() -> str:
    return ""


def at_now() -> int:
    return NOW


async def scored(client: aioredis.Redis, key: str) -> list[tuple[str, float]]:
    """A sorted set's members and scores, lowest first."""
    rows = cast(list[tuple[bytes, float]], await client.zrange(key, 0, -1, withscores=True))
    return [(text(member), float(score)) for member, score in rows]


async def pending_members(client: aioredis.Redis, keys: RedisKeys) -> dict[str, float]:
    return dict(await scored(client, keys.pending))


A, B, C, D, E, F, G, H, M, J, K = (f"+120255501{n:02d}" for n in range(1, 12))
U = "+12025550999"


async def scene(client: aioredis.Redis, keys: RedisKeys) -> FakeReader:
    """One number of each kind (see the comments); returns the reader of CXone's side."""
    await seed(
        client,
        keys,
        {
            A: PERMANENT,  # ours, listed twice (on both pages): in_sync once
            B: PERMANENT,  # not listed, not found either: opt_out_missing
            C: until(EXP),  # not listed, found by lookup with our expiry: in_sync
            D: until(EXP),  # not listed, found by lookup with another expiry: expiry_differs
            E: OPT_IN,  # our record still there: opt_in_record
            F: OPT_IN,  # someone else's record: not_owned
            G: until(EXP),  # ours, listed twice on one page, first protecting longer: in_sync
            H: PERMANENT,  # pending: in_flight
            M: PERMANENT,  # dead-lettered, not listed: dead_lettered
            J: OPT_IN,  # no record: in_sync
            K: until(EXP),  # someone else's record protecting longer: foreign_record
        },
        owned=(A, C, D, E, G),
        pending={H: NOW - 7},
        dead=(M,),
    )
    return FakeReader(
        [
            [held(A), held(E), held(G, EXP + DAY), held(G, EXP), held(U)],
            [held(F), held(H), held(A), held(K)],
        ],
        found={C: held(C, EXP + 999), D: held(D, EXP - DAY)},
    )


async def test_a_run_sorts_every_number_into_its_class(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    reader = await scene(fake_redis, keys)
    run, report = reconciliation(fake_redis, keys, reader)
    progress: list[int] = []

    async def note(pages: int) -> None:
        progress.append(pages)

    assert await run.run(never, note, now_ms=at_now) is report
    assert report.complete is True and report.incomplete_reason == ""
    assert report.drift == {
        "opt_out_missing": 1,
        "opt_in_record": 1,
        "expiry_differs": 1,
        "not_owned": 1,
    }
    assert report.notes == {
        "in_sync": 4,
        "in_flight": 1,
        "dead_lettered": 1,
        "foreign_record": 1,
        "unknown_number": 1,
    }
    assert report.records == 7  # A, E, G, U, F, H, K: each once
    assert report.numbers == 11  # 6 listed with a state here + B, C, D, M, J
    assert sorted(reader.looked_up) == [B, C, D]  # only opt-outs in force found missing
    assert report.unconfirmed == 0
    assert report.api_calls == 5 and report.page_size == 3
    assert report.finished_ms == NOW
    assert report.samples == {
        "opt_out_missing": ["***0102"],
        "opt_in_record": ["***0105"],
        "expiry_differs": ["***0104"],  # D, when looked up
        "not_owned": ["***0106"],
    }
    assert report.requeued is None
    assert progress == [1, 2]
    assert await pending_members(fake_redis, keys) == {H: NOW - 7}  # no repair asked


async def test_repair_requeues_only_repairable_numbers(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    reader = await scene(fake_redis, keys)
    run, report = reconciliation(fake_redis, keys, reader, repair=True)
    await run.run(never, now_ms=at_now)
    assert report.requeued == 2
    pending = await pending_members(fake_redis, keys)
    assert set(pending) == {H, B, E}  # not D/G (expiry_differs), F (not_owned), M (dead)
    assert pending[H] == NOW - 7  # already pending: its score kept
    assert pending[B] == pending[E] == NOW  # waiting since the run's clock


async def test_the_verify_limit_bounds_lookups_and_counts_the_rest_unconfirmed(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await seed(fake_redis, keys, {B: PERMANENT, C: until(EXP), D: PERMANENT})
    reader = FakeReader([[]])
    run, report = reconciliation(fake_redis, keys, reader, verify_limit=1, repair=True)
    await run.run(never, now_ms=at_now)
    assert len(reader.looked_up) == 1
    assert report.unconfirmed == 2
    assert report.drift["opt_out_missing"] == 3
    assert report.api_calls == 2  # one page, one lookup
    assert report.requeued == 3
    assert set(await pending_members(fake_redis, keys)) == {B, C, D}
    assert "2 missing opt-out(s) were not looked up one by one." in report.markdown()


async def test_a_lookup_that_finds_the_record_is_not_missing(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await seed(fake_redis, keys, {B: PERMANENT, C: until(EXP)}, owned=(B,))
    reader = FakeReader([[held(U)]], found={B: held(B), C: held(C, EXP - DAY)})
    run, report = reconciliation(fake_redis, keys, reader, verify_limit=10)
    await run.run(never, now_ms=at_now)
    assert sorted(reader.looked_up) == [B, C]
    assert report.drift == {
        "opt_out_missing": 0,
        "opt_in_record": 0,
        "expiry_differs": 1,  # C: someone else's record lapsing before our opt-out
        "not_owned": 0,
    }
    assert report.notes["in_sync"] == 1 and report.notes["unknown_number"] == 1


async def test_a_verify_limit_of_zero_looks_nothing_up(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await seed(fake_redis, keys, {B: PERMANENT, C: PERMANENT})
    reader = FakeReader([[]], found={B: held(B)})
    run, report = reconciliation(fake_redis, keys, reader, verify_limit=0)
    await run.run(never, now_ms=at_now)
    assert reader.looked_up == []
    assert (report.unconfirmed, report.drift["opt_out_missing"]) == (2, 2)


@pytest.mark.parametrize(
    ("stop_after", "records"),
    [(1, 1), (2, 2)],
    ids=["before-the-second-page", "after-the-last-page"],
)
async def test_a_run_told_to_stop_is_incomplete_and_looks_for_no_missing_opt_out(
    fake_redis: aioredis.Redis, keys: RedisKeys, stop_after: int, records: int
) -> None:
    await seed(fake_redis, keys, {A: PERMANENT, B: PERMANENT, E: OPT_IN}, owned=(E,))
    reader = FakeReader([[held(A)], [held(E)]])
    asked = 0

    def should_stop() -> str:
        nonlocal asked
        asked += 1
        return "the time budget of 1 s was spent" if asked > stop_after else ""

    run, report = reconciliation(fake_redis, keys, reader, repair=True)
    await run.run(should_stop, now_ms=at_now)
    assert report.complete is False
    assert report.incomplete_reason == "the time budget of 1 s was spent"
    assert reader.looked_up == []
    assert report.drift["opt_out_missing"] == 0  # B was not looked for
    assert report.records == records
    assert report.drift["opt_in_record"] == records - 1
    assert report.requeued == records - 1
    assert report.finished_ms == NOW
    assert report.markdown().count("INCOMPLETE (the time budget of 1 s was spent)") == 1


async def test_samples_are_masked_and_capped(fake_redis: aioredis.Redis, keys: RedisKeys) -> None:
    numbers = [f"+1303555{n:04d}" for n in range(5)]
    await seed(fake_redis, keys, dict.fromkeys(numbers, OPT_IN), owned=tuple(numbers))
    reader = FakeReader([[held(n) for n in numbers[:3]], [held(n) for n in numbers[3:]]])
    run, report = reconciliation(fake_redis, keys, reader, sample_size=2)
    await run.run(never, now_ms=at_now)
    assert report.drift["opt_in_record"] == 5
    assert report.samples == {"opt_in_record": ["***0000", "***0001"]}


async def test_a_sample_size_of_zero_keeps_no_sample(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await seed(fake_redis, keys, {F: OPT_IN})
    run, report = reconciliation(fake_redis, keys, FakeReader([[held(F)]]), sample_size=0)
    await run.run(never, now_ms=at_now)
    assert report.drift["not_owned"] == 1 and report.samples == {}


async def test_now_is_read_per_page(fake_redis: aioredis.Redis, keys: RedisKeys) -> None:
    # an opt-out that lapses between the two pages: in force for page 1, lapsed for page 2
    await seed(fake_redis, keys, {A: until(NOW + 10_000), B: until(NOW + 10_000)})
    times = iter([NOW, NOW + 20_000, NOW + 20_000, NOW + 20_000])

    def clock() -> int:
        return next(times)

    reader = FakeReader([[held(A, NOW + 5_000)], [held(B, NOW + 5_000)]])
    run, report = reconciliation(fake_redis, keys, reader)
    await run.run(never, now_ms=clock)
    # page 1: a record lapsing before the opt-out in force; page 2: the opt-out has lapsed
    assert report.drift["expiry_differs"] == 1
    assert report.notes["foreign_record"] == 1


class ShortReader(FakeReader):
    """A listing whose answers say there are more records than its pages hold."""

    @property
    def total(self) -> int:
        return super().total + 5


async def test_a_listing_that_gave_fewer_records_than_its_total_is_incomplete(
    fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await seed(fake_redis, keys, {A: PERMANENT, B: PERMANENT}, owned=(A, B))
    reader = ShortReader([[held(A)]])
    run, report = reconciliation(fake_redis, keys, reader, repair=True)
    await run.run(never, now_ms=at_now)
    assert report.complete is False and "gave 1 of its 6 records" in report.incomplete_reason
    assert report.drift["opt_out_missing"] == 0 and reader.looked_up == []  # B not suspected
