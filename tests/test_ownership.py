"""The ownership ledger (``dnc.ownership``): who owns which DNC record after a push
(``ownership_update``, a pure function), the stored entry (compact, and the JSON written
before it), and the ledger in Redis on fakeredis and on the real redis-server."""

from __future__ import annotations

import uuid

import fakeredis
import pytest
import redis.asyncio as aioredis

from dnc.errors import StoreError, StoreUnavailable
from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.ownership import (
    ADOPTED,
    CREATED,
    CREATED_UNANSWERED,
    OwnedRecord,
    OwnershipLedger,
    OwnershipUpdate,
    not_owned_outcome,
    ownership_update,
)
from dnc.target import ChangeOutcome, DncChange, OutcomeKind
from tests.conftest import free_port
from tests.stored import ledger_entries

T0 = 1_794_994_200_000  # a fixed instant (UTC ms): no clock is read here
RUN = "3f2c9a10-run"
NOW = T0 + 5_000
EXPIRES = T0 + 30 * 86_400_000
A, B, C = "+12025550101", "+12025550102", "+12025550103"


def opt_out(number: str, expires_ms: int | None = None) -> DncChange:
    return DncChange(number, Action.OPT_OUT, T0, expires_ms)


def opt_in(number: str) -> DncChange:
    return DncChange(number, Action.OPT_IN, T0)


def answer(
    number: str,
    kind: OutcomeKind,
    *,
    record_id: str | None = None,
    after_lost_reply: bool = False,
) -> ChangeOutcome:
    return ChangeOutcome(
        number, kind, "", http_status=200, record_id=record_id, after_lost_reply=after_lost_reply
    )


def update_for(
    change: DncChange, outcome: ChangeOutcome, earlier: frozenset[str] = frozenset()
) -> OwnershipUpdate:
    return ownership_update([change], [outcome], earlier, RUN, NOW)


# --- ownership_update: opt-outs ------------------------------------------------------------


def test_an_applied_opt_out_is_ours_with_record_id_time_run_and_expiry() -> None:
    update = update_for(opt_out(A, EXPIRES), answer(A, OutcomeKind.APPLIED, record_id="2025550101"))
    assert update.grant == {A: OwnedRecord("2025550101", NOW, RUN, EXPIRES, CREATED)}
    assert update.release == []
    assert update.answered == [A]
    assert bool(update) is True


def test_an_applied_opt_out_without_a_record_id_is_keyed_by_its_number() -> None:
    update = update_for(opt_out(A), answer(A, OutcomeKind.APPLIED))
    assert update.grant == {A: OwnedRecord(A, NOW, RUN, None, "created")}
    assert update.answered == [A]


def test_an_applied_opt_out_stays_created_even_after_an_earlier_unanswered_add() -> None:
    update = update_for(
        opt_out(A), answer(A, OutcomeKind.APPLIED, after_lost_reply=True), frozenset({A})
    )
    assert update.grant[A].how == CREATED


def test_a_contact_flag_set_by_an_upsert_is_not_ours() -> None:
    # the 409 does not say whether the contact was already flagged (by someone else)
    update = update_for(opt_out(A), answer(A, OutcomeKind.CONFLICT_RESOLVED, record_id="c-77"))
    assert update.grant == {} and update.answered == [A]
    lost = answer(A, OutcomeKind.CONFLICT_RESOLVED, record_id="c-77", after_lost_reply=True)
    assert update_for(opt_out(A), lost).grant == {
        A: OwnedRecord("c-77", NOW, RUN, None, CREATED_UNANSWERED)
    }


def test_already_exists_without_an_add_of_ours_is_someone_elses() -> None:
    update = update_for(opt_out(A), answer(A, OutcomeKind.ALREADY_APPLIED, record_id="2025550101"))
    assert update.grant == {}
    assert update.release == []
    assert update.answered == [A]  # a final answer: the add marker goes


def test_already_exists_after_an_earlier_add_of_ours_in_flight_is_ours() -> None:
    update = update_for(
        opt_out(A, EXPIRES),
        answer(A, OutcomeKind.ALREADY_APPLIED, record_id="2025550101"),
        frozenset({A}),
    )
    assert update.grant == {A: OwnedRecord("2025550101", NOW, RUN, EXPIRES, "created-answer-lost")}
    assert update.answered == [A]


def test_an_earlier_add_of_another_number_does_not_make_this_one_ours() -> None:
    update = update_for(opt_out(A), answer(A, OutcomeKind.ALREADY_APPLIED), frozenset({B}))
    assert update.grant == {}
    assert update.answered == [A]


def test_already_exists_after_the_transport_retried_a_timed_out_request_is_ours() -> None:
    update = update_for(
        opt_out(A),
        answer(A, OutcomeKind.ALREADY_APPLIED, record_id="2025550101", after_lost_reply=True),
    )
    assert update.grant == {A: OwnedRecord("2025550101", NOW, RUN, None, CREATED_UNANSWERED)}
    assert update.answered == [A]


@pytest.mark.parametrize("earlier", [frozenset(), frozenset({A})])
@pytest.mark.parametrize("lost", [False, True])
def test_a_retryable_opt_out_changes_nothing_and_keeps_its_add_marker(
    earlier: frozenset[str], lost: bool
) -> None:
    update = update_for(
        opt_out(A), answer(A, OutcomeKind.RETRYABLE, after_lost_reply=lost), earlier
    )
    assert (update.grant, update.release, update.answered) == ({}, [], [])
    assert bool(update) is False


def test_a_rejected_opt_out_is_answered_and_owned_by_nobody() -> None:
    update = update_for(opt_out(A), answer(A, OutcomeKind.REJECTED), frozenset({A}))
    assert (update.grant, update.release, update.answered) == ({}, [], [A])
    assert bool(update) is True


# --- ownership_update: opt-ins -------------------------------------------------------------


@pytest.mark.parametrize("kind", [OutcomeKind.APPLIED, OutcomeKind.ALREADY_APPLIED])
def test_an_acknowledged_opt_in_ends_ownership_and_clears_the_marker(kind: OutcomeKind) -> None:
    update = update_for(opt_in(A), answer(A, kind, record_id="2025550101"))
    assert (update.grant, update.release, update.answered) == ({}, [A], [A])


def test_an_opt_in_not_sent_as_not_owned_changes_nothing() -> None:
    update = update_for(opt_in(A), not_owned_outcome(A), frozenset({A}))
    assert (update.grant, update.release, update.answered) == ({}, [], [])
    assert bool(update) is False


@pytest.mark.parametrize("kind", [OutcomeKind.REJECTED, OutcomeKind.RETRYABLE])
def test_an_opt_in_not_applied_keeps_ownership(kind: OutcomeKind) -> None:
    update = update_for(opt_in(A), answer(A, kind), frozenset({A}))
    assert (update.grant, update.release, update.answered) == ({}, [], [])


def test_an_opt_in_after_a_lost_reply_is_no_grant() -> None:
    update = update_for(
        opt_in(A), answer(A, OutcomeKind.ALREADY_APPLIED, after_lost_reply=True), frozenset({A})
    )
    assert (update.grant, update.release, update.answered) == ({}, [A], [A])


def test_a_mixed_batch_is_read_change_by_change_in_order() -> None:
    changes = [opt_out(A), opt_in(B), opt_out(C, EXPIRES), opt_in("+12025550104")]
    outcomes = [
        answer(A, OutcomeKind.APPLIED, record_id="2025550101"),
        answer(B, OutcomeKind.ALREADY_APPLIED),
        answer(C, OutcomeKind.ALREADY_APPLIED, record_id="2025550103"),
        not_owned_outcome("+12025550104"),
    ]
    update = ownership_update(changes, outcomes, {C}, RUN, NOW)
    assert update.grant == {
        A: OwnedRecord("2025550101", NOW, RUN, None, CREATED),
        C: OwnedRecord("2025550103", NOW, RUN, EXPIRES, CREATED_UNANSWERED),
    }
    assert update.release == [B]
    assert update.answered == [A, B, C]


def test_changes_and_outcomes_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shorter|longer"):
        ownership_update([opt_out(A), opt_out(B)], [answer(A, OutcomeKind.APPLIED)], (), RUN, NOW)


def test_an_empty_push_changes_nothing() -> None:
    update = ownership_update([], [], (), RUN, NOW)
    assert update == OwnershipUpdate()
    assert bool(update) is False


def test_the_not_owned_outcome_is_acknowledged_and_names_the_setting() -> None:
    outcome = not_owned_outcome(A)
    assert (outcome.e164, outcome.kind, outcome.http_status, outcome.record_id) == (
        A,
        OutcomeKind.NOT_OWNED,
        None,
        None,
    )
    assert outcome.kind.acknowledged is True
    assert "DNC_SYNC_REMOVE_FOREIGN_RECORDS" in outcome.reason


# --- OwnedRecord: the compact entry -----------------------------------------------------

RUN_V4 = "6513270e-269e-4d37-b2a7-4de452e6b438"  # a Prefect flow run id (version 4)
RUN_V1 = "c232ab00-9414-11ec-b3c8-9f6bdeced846"  # a UUID of another version


@pytest.mark.parametrize(
    ("number", "record", "stored"),
    [
        # a DNC group's record without expiry, by a flow run: 30 characters
        (A, OwnedRecord("2025550101", T0, RUN_V4), "mwlx78w0|BlEycOJp7TfKnTeRS5rQ4"),
        (
            A,
            OwnedRecord("2025550101", T0, RUN_V4, EXPIRES, CREATED),
            "mwlx78w0|BlEycOJp7TfKnTeRS5rQ4||mxssesw0",
        ),
        (A, OwnedRecord(A, T0, RUN_V1), "mwlx78w0|DCMqsAlBQR7LPIn2vezthG|||+"),
        (A, OwnedRecord("12025550101", 0, "adopt", None, ADOPTED), "0|~adopt|a||="),
        (
            A,
            OwnedRecord("c-77", NOW, "local-1|%", EXPIRES, CREATED_UNANSWERED),
            "mwlx7cqw|~local-1%7C%25|l|mxssesw0|c-77",
        ),
        (
            "+442071838750",
            OwnedRecord("442071838750", -1, RUN, None, "odd"),
            "-1|~" + RUN + "|~odd",
        ),
        (A, OwnedRecord("~x", 7, "", None, ""), "7|~|~||~~x"),
    ],
)
def test_an_entry_is_stored_compactly(number: str, record: OwnedRecord, stored: str) -> None:
    assert record.encode(number) == stored
    assert OwnedRecord.decode(number, stored) == record


def test_a_dnc_group_entry_fits_redis_smallest_value_allocation() -> None:
    for _ in range(200):
        record = OwnedRecord("2025550101", 2_000_000_000_000, str(uuid.uuid4()))
        assert len(record.encode(A)) <= 30  # Redis: a value of up to 30 bytes takes 32


RUN_IDS = [
    RUN_V4,
    RUN_V1,
    str(uuid.UUID(int=0)),
    str(uuid.UUID(int=2**128 - 1)),
    str(uuid.UUID(int=2**128 - 1, version=4)),
    str(uuid.UUID(int=0, version=4)),
    RUN_V4.upper(),  # not the canonical text: kept verbatim
    RUN_V4.replace("-", ""),
    "{" + RUN_V4 + "}",
    "local-" + RUN_V4,
    RUN,
    "adopt",
    "unknown",
    "",
    "~",
    "a|b",
    "%7C%",
    "A" * 21,  # as long as a packed UUID
    "A" * 22,
]
RECORD_IDS = [A, A[1:], A[2:], "c-77", "", "+", "=", "~", "~~a", "a|b", "%", "%25", "x%7Cy", "1"]
HOWS = [CREATED, CREATED_UNANSWERED, ADOPTED, "unreadable", "", "l", "a", "~", "x|y%"]


@pytest.mark.parametrize("run_id", RUN_IDS)
def test_an_entry_round_trips_compactly(run_id: str) -> None:
    for number in (A, "+442071838750", "+2025550101"):
        for record_id in [*RECORD_IDS, number, number[1:]]:
            for how in HOWS:
                for expires_ms in (None, EXPIRES, 0, -1):
                    for created_ms in (T0, 0, 7, -5, 10**20):
                        record = OwnedRecord(record_id, created_ms, run_id, expires_ms, how)
                        stored = record.encode(number)
                        assert len(stored.split("|")) <= 5
                        assert OwnedRecord.decode(number, stored) == record
                        assert OwnedRecord.decode(number, stored.encode()) == record


@pytest.mark.parametrize(
    ("run_id", "width"),
    [(RUN_V4, 21), (RUN_V1, 22), ("local-" + RUN_V4, 43), (RUN_V4.upper(), 37)],
)
def test_a_uuid_run_id_is_stored_in_base64url(run_id: str, width: int) -> None:
    stored = OwnedRecord("2025550101", 0, run_id).encode(A)
    assert len(stored.split("|")[1]) == width


@pytest.mark.parametrize(
    ("number", "record_id", "field"),
    [
        (A, "2025550101", ""),  # the number as a DNC group keys it (+1: the national 10)
        (A, "12025550101", "="),  # DNC_CXONE_PHONE_FORMAT=e164-digits
        (A, A, "+"),  # the number itself (no record id in the answer)
        ("+442071838750", "442071838750", ""),
        ("+442071838750", "+442071838750", "+"),
        (A, "c-77", "c-77"),
        (A, "", "~"),
    ],
)
def test_a_record_id_the_number_gives_is_not_stored(
    number: str, record_id: str, field: str
) -> None:
    stored = OwnedRecord(record_id, 0, RUN_V4, None, ADOPTED).encode(number)
    assert stored.split("|")[4:] == ([field] if field else [])  # trailing empty: left out


def test_decode_reads_the_json_entries_written_before() -> None:
    record = OwnedRecord("2025550101", T0, RUN_V4, EXPIRES, CREATED_UNANSWERED)
    legacy = (
        '{"recordId":"2025550101","createdMs":1794994200000,'
        '"flowRunId":"6513270e-269e-4d37-b2a7-4de452e6b438","expiresMs":1797586200000,'
        '"how":"created-answer-lost"}'
    )
    assert record.to_json() == legacy
    assert OwnedRecord.decode(A, legacy) == record
    assert OwnedRecord.decode(B, legacy.encode()) == record  # its record id is kept as is
    old = '{"recordId":"x","createdMs":7,"flowRunId":"r"}'
    assert OwnedRecord.decode(A, old) == OwnedRecord("x", 7, "r", None, CREATED)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "garbage",
        "5",
        "null",
        "|",
        "mwlx78w0",  # no flow run id
        "mwlx78w0|",
        "mwlx78w0|BlEycOJp7TfKnTeRS5rQ",  # 20 characters
        "mwlx78w0|BlEycOJp7TfKnTeRS5rQ4xy",  # 23
        "mwlx78w0|ElEycOJp7TfKnTeRS5rQ4",  # more than 122 bits
        "mwlx78w0|/lEycOJp7TfKnTeRS5rQ4",
        "MWLX78W0|~r",
        " 1|~r",
        "+1|~r",
        "1_0|~r",
        "1|~r|created",
        "1|~r||1.5",
        "1|~r|||c|x",
        "1|~r%",
        "1|~r%2",
        "1|~r|||%7c",
        "{not json",
        '{"recordId":"x"}',
        b"1|~r\xff",
    ],
)
def test_decode_refuses_what_is_not_an_entry(junk: str | bytes) -> None:
    with pytest.raises(ValueError, match=r"^not an ownership ledger entry: ") as refused:
        OwnedRecord.decode(A, junk)
    assert refused.value.__cause__ is None  # the stored text is not carried along


# --- OwnedRecord: the JSON entry written before ------------------------------------------


def test_an_entry_is_stored_as_compact_json() -> None:
    record = OwnedRecord("2025550101", T0, RUN, EXPIRES, CREATED_UNANSWERED)
    assert record.to_json() == (
        '{"recordId":"2025550101","createdMs":1794994200000,"flowRunId":"3f2c9a10-run",'
        '"expiresMs":1797586200000,"how":"created-answer-lost"}'
    )


@pytest.mark.parametrize(
    "record",
    [
        OwnedRecord("2025550101", T0, RUN),
        OwnedRecord("c-77", 0, "adopt", EXPIRES, ADOPTED),
        OwnedRecord("2025550101", T0, "local-1", None, CREATED_UNANSWERED),
    ],
)
def test_an_entry_round_trips_through_json_text_and_bytes(record: OwnedRecord) -> None:
    assert OwnedRecord.from_json(record.to_json()) == record
    assert OwnedRecord.from_json(record.to_json().encode()) == record


def test_an_entry_without_expiry_or_how_reads_as_never_expiring_and_created() -> None:
    text = '{"recordId":"2025550101","createdMs":7,"flowRunId":"r"}'
    assert OwnedRecord.from_json(text) == OwnedRecord("2025550101", 7, "r", None, CREATED)
    empty_how = '{"recordId":"x","createdMs":7,"flowRunId":"r","expiresMs":null,"how":""}'
    assert OwnedRecord.from_json(empty_how).how == CREATED


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "not json",
        "null",
        "5",
        '"text"',
        "[]",
        "{}",
        '{"createdMs":1,"flowRunId":"r"}',  # no recordId
        '{"recordId":"x","flowRunId":"r"}',  # no createdMs
        '{"recordId":"x","createdMs":1}',  # no flowRunId
        '{"recordId":"x","createdMs":"soon","flowRunId":"r"}',
        '{"recordId":"x","createdMs":null,"flowRunId":"r"}',
        '{"recordId":"x","createdMs":1,"flowRunId":"r","expiresMs":"later"}',
        '{"recordId":"x","createdMs":NaN,"flowRunId":"r"}',
        b"\xff\xfe\x00",
    ],
)
def test_from_json_refuses_what_is_not_an_entry(junk: str | bytes) -> None:
    with pytest.raises(ValueError, match=r"^not an ownership ledger entry: ") as refused:
        OwnedRecord.from_json(junk)
    assert refused.value.__cause__ is None  # the stored text is not carried along


@pytest.mark.parametrize(
    "junk",
    [
        '{"recordId":"x","createdMs":Infinity,"flowRunId":"r"}',
        '{"recordId":"x","createdMs":1e400,"flowRunId":"r"}',
        '{"recordId":"x","createdMs":1,"flowRunId":"r","expiresMs":Infinity}',
    ],
)
def test_from_json_refuses_an_infinite_time_with_value_error(junk: str) -> None:
    with pytest.raises(ValueError, match=r"^not an ownership ledger entry: "):
        OwnedRecord.from_json(junk)


# --- OwnershipLedger in Redis --------------------------------------------------------------


@pytest.fixture
def keys(namespace: str) -> RedisKeys:
    return RedisKeys(namespace)


@pytest.fixture
def ledger(any_redis: aioredis.Redis, keys: RedisKeys) -> OwnershipLedger:
    return OwnershipLedger(any_redis, keys)


def test_keys_live_under_the_namespace(keys: RedisKeys, namespace: str) -> None:
    assert keys.owned == "{" + namespace + "}:owned"
    assert keys.owned_entry(A) == ("{" + namespace + "}:owned:0101", "1202555")
    assert keys.adds_in_flight == "{" + namespace + "}:adds-in-flight"


async def test_removable_names_owned_numbers_and_adds_in_flight(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    assert await ledger.removable([A, B, C]) == set()
    assert await ledger.removable([]) == set()
    await ledger.apply(OwnershipUpdate(grant={A: OwnedRecord("2025550101", T0, RUN)}))
    assert await ledger.note_adds([B], T0) == set()
    assert await ledger.removable([A, B, C]) == {A, B}
    assert await ledger.removable([C]) == set()
    await any_redis.hset(keys.owned, C, "garbage")  # unreadable, but an entry all the same
    assert await ledger.removable([C, "+12025550199"]) == {C}


async def test_note_adds_returns_only_numbers_already_marked_and_keeps_the_first_time(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    assert await ledger.note_adds([A, B], T0) == set()
    assert await ledger.note_adds([B, C], T0 + 1_000) == {B}
    assert await ledger.note_adds([], T0 + 2_000) == set()
    assert await any_redis.hgetall(keys.adds_in_flight) == {
        A.encode(): str(T0).encode(),
        B.encode(): str(T0).encode(),  # the first send is kept
        C.encode(): str(T0 + 1_000).encode(),
    }
    assert await ledger_entries(any_redis, keys) == {}  # a marker is not ownership


async def test_apply_grants_releases_and_clears_markers(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await ledger.note_adds([A, B, C], T0)
    old = OwnedRecord("2025550102", T0 - 1, "old-run")
    await ledger.apply(OwnershipUpdate(grant={B: old}))
    first = OwnedRecord("2025550101", NOW, RUN, EXPIRES, CREATED)
    await ledger.apply(OwnershipUpdate(grant={A: first}, release=[B], answered=[A, B]))
    assert await ledger_entries(any_redis, keys) == {A: first.encode(A).encode()}
    assert await any_redis.hgetall(keys.adds_in_flight) == {C.encode(): str(T0).encode()}
    assert await ledger.entries([A, B, C]) == {A: first, B: None, C: None}
    assert await ledger.count() == 1
    assert await ledger.removable([A, B, C]) == {A, C}


async def test_apply_of_nothing_writes_nothing(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await ledger.apply(OwnershipUpdate())
    assert await ledger_entries(any_redis, keys) == {}
    assert await any_redis.exists(keys.adds_in_flight) == 0


async def test_a_grant_replaces_the_entry_of_the_same_number(ledger: OwnershipLedger) -> None:
    await ledger.apply(OwnershipUpdate(grant={A: OwnedRecord("2025550101", T0, "run-1")}))
    newer = OwnedRecord("2025550101", NOW, "run-2", EXPIRES, CREATED_UNANSWERED)
    await ledger.apply(OwnershipUpdate(grant={A: newer}))
    assert await ledger.entries([A]) == {A: newer}
    assert await ledger.count() == 1


async def test_a_release_of_a_number_not_owned_is_harmless(ledger: OwnershipLedger) -> None:
    await ledger.apply(OwnershipUpdate(release=[A], answered=[A]))
    assert await ledger.count() == 0
    assert await ledger.entries([A]) == {A: None}


async def test_adopt_never_overwrites_and_counts_what_it_added(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    ours = OwnedRecord("2025550101", T0, RUN, EXPIRES, CREATED)
    await ledger.apply(OwnershipUpdate(grant={A: ours}))
    adopted_b = OwnedRecord("2025550102", NOW, "adopt", None, ADOPTED)
    adopted_c = OwnedRecord("2025550103", NOW, "adopt", None, ADOPTED)
    replacement = OwnedRecord("2025550101", NOW, "adopt", None, ADOPTED)
    added = await ledger.adopt([(A, replacement), (B, adopted_b), (C, adopted_c)])
    assert added == 2
    assert await ledger.entries([A, B, C]) == {A: ours, B: adopted_b, C: adopted_c}
    assert await ledger.adopt([(B, replacement)]) == 0
    assert await ledger.adopt([]) == 0
    assert await ledger.adopt(iter([("+12025550104", adopted_b)])) == 1  # any iterable
    assert await ledger.count() == 4
    assert await any_redis.exists(keys.adds_in_flight) == 0


async def test_entries_reads_each_number_and_marks_an_unreadable_value(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    ours = OwnedRecord("2025550101", T0, RUN, EXPIRES, CREATED)
    await ledger.apply(OwnershipUpdate(grant={A: ours}))
    await any_redis.hset(keys.owned, mapping={B: "{not json", C: '{"recordId":"x"}'})
    assert await ledger.entries([]) == {}
    assert await ledger.entries([A, B, C, "+12025550104"]) == {
        A: ours,
        B: OwnedRecord(B, 0, "unknown", None, "unreadable"),
        C: OwnedRecord(C, 0, "unknown", None, "unreadable"),
        "+12025550104": None,
    }
    assert await ledger.count() == 3


async def test_the_ledger_stores_compact_entries_and_still_reads_json_ones(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    ours = OwnedRecord("2025550101", T0, RUN_V4)
    await ledger.apply(OwnershipUpdate(grant={A: ours}))
    adopted = OwnedRecord("2025550102", NOW, "adopt", None, ADOPTED)
    assert await ledger.adopt([(B, adopted)]) == 1
    legacy = OwnedRecord("2025550103", T0, "flow-run-0", EXPIRES, CREATED_UNANSWERED)
    # written before the compact form (and before buckets): the legacy flat hash
    await any_redis.hset(keys.owned, C, legacy.to_json())
    assert await any_redis.hget(*keys.owned_entry(A)) == b"mwlx78w0|BlEycOJp7TfKnTeRS5rQ4"
    assert await any_redis.hget(*keys.owned_entry(B)) == b"mwlx7cqw|~adopt|a"
    assert await any_redis.hgetall(keys.owned) == {C.encode(): legacy.to_json().encode()}
    assert await ledger_entries(any_redis, keys) == {
        A: b"mwlx78w0|BlEycOJp7TfKnTeRS5rQ4",
        B: b"mwlx7cqw|~adopt|a",
        C: legacy.to_json().encode(),
    }
    assert await ledger.entries([A, B, C]) == {A: ours, B: adopted, C: legacy}
    assert await ledger.removable([A, B, C], now_ms=EXPIRES) == {A, B}  # C's record lapsed
    await ledger.apply(OwnershipUpdate(grant={C: legacy}))  # a new grant rewrites it compactly
    assert await any_redis.hget(*keys.owned_entry(C)) == b"mwlx78w0|~flow-run-0|l|mxssesw0"
    assert await any_redis.exists(keys.owned) == 0  # moved out of the legacy hash
    assert await ledger.entries([C]) == {C: legacy}


@pytest.mark.parametrize(
    "junk",
    ["garbage", "mwlx78w0", "mwlx78w0|BlEycOJp7TfKnTeRS5rQ", "1|~r|created", "1|~r||1.5", "{x"],
)
async def test_an_unreadable_entry_counts_as_owned_with_nothing_known(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys, junk: str
) -> None:
    await any_redis.hset(keys.owned, mapping={A: junk, B: "1|~r||1"})
    assert await ledger.entries([A, B]) == {
        A: OwnedRecord(A, 0, "unknown", None, "unreadable"),
        B: OwnedRecord("2025550102", 1, "r", 1, CREATED),  # compact, and lapsed
    }
    assert await ledger.removable([A, B], now_ms=NOW) == {A}
    assert await ledger.count() == 2


async def test_entries_marks_an_entry_with_an_infinite_time_unreadable(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    await any_redis.hset(keys.owned, A, '{"recordId":"x","createdMs":1e999,"flowRunId":"r"}')
    assert await ledger.entries([A]) == {A: OwnedRecord(A, 0, "unknown", None, "unreadable")}


@pytest.mark.parametrize(
    "call",
    ["removable", "note_adds", "apply", "entries", "adopt", "count"],
)
async def test_a_key_of_the_wrong_type_raises_store_error(
    ledger: OwnershipLedger, any_redis: aioredis.Redis, keys: RedisKeys, call: str
) -> None:
    await any_redis.set(keys.owned, "not a hash")
    await any_redis.set(keys.adds_in_flight, "not a hash")
    with pytest.raises(StoreError, match=r"^redis error: ResponseError$") as failed:
        await _call(ledger, call)
    assert type(failed.value) is StoreError  # reachable: not StoreUnavailable


async def test_fakeredis_outage_raises_store_unavailable(
    fake_server: fakeredis.FakeServer, fake_redis: aioredis.Redis, keys: RedisKeys
) -> None:
    ledger = OwnershipLedger(fake_redis, keys)
    fake_server.connected = False
    for call in ("removable", "note_adds", "apply", "entries", "adopt", "count"):
        with pytest.raises(StoreUnavailable, match=r"^redis unavailable: "):
            await _call(ledger, call)


async def test_real_redis_down_raises_store_unavailable(keys: RedisKeys) -> None:
    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5
    )
    try:
        ledger = OwnershipLedger(client, keys)
        with pytest.raises(StoreUnavailable, match=r"^redis unavailable: "):
            await ledger.removable([A])
        with pytest.raises(StoreUnavailable, match=r"^redis unavailable: "):
            await ledger.apply(OwnershipUpdate(answered=[A]))
    finally:
        await client.aclose()


async def _call(ledger: OwnershipLedger, name: str) -> object:
    record = OwnedRecord("2025550101", T0, RUN)
    if name == "removable":
        return await ledger.removable([A])
    if name == "note_adds":
        return await ledger.note_adds([A], T0)
    if name == "apply":
        await ledger.apply(OwnershipUpdate(grant={A: record}, release=[B], answered=[A]))
        return None
    if name == "entries":
        return await ledger.entries([A])
    if name == "adopt":
        return await ledger.adopt([(A, record)])
    return await ledger.count()


async def test_a_lapsed_record_of_ours_is_not_removable(
    fake_redis: aioredis.Redis, namespace: str
) -> None:
    keys = RedisKeys(namespace)
    ledger = OwnershipLedger(fake_redis, keys)
    lapsing = OwnedRecord("2025550101", NOW, RUN, NOW + 1_000)
    forever = OwnedRecord("2025550102", NOW, RUN, None)
    await ledger.apply(OwnershipUpdate(grant={A: lapsing, "+12025550102": forever}))
    numbers = [A, "+12025550102"]
    assert await ledger.removable(numbers, now_ms=NOW + 999) == set(numbers)
    assert await ledger.removable(numbers, now_ms=NOW + 1_000) == {"+12025550102"}
    assert await ledger.release([A]) == 1 and (await ledger.entries([A]))[A] is None
    assert await fake_redis.get(keys.ownership_since) is not None  # the ledger's start
