"""``dnc.reconcile.drift.classify``: every row of the drift table, the notes, and the
comparison of expiries to the second."""

from __future__ import annotations

import pytest

from dnc.events import Action
from dnc.held_records import HeldRecord
from dnc.reconcile.drift import DriftClass, Note, NumberState, classify

NOW = 1_800_000_000_000  # UTC ms, a whole second
DAY = 86_400_000
NUMBER = "+12025550123"


def record(expires_ms: int | None = None) -> HeldRecord:
    return HeldRecord(NUMBER, "2025550123", expires_ms, NOW - DAY)


def opt_out(expires_ms: int | None = None, **flags: bool) -> NumberState:
    return NumberState(Action.OPT_OUT, expires_ms, **flags)


def opt_in(**flags: bool) -> NumberState:
    return NumberState(Action.OPT_IN, None, **flags)


@pytest.mark.parametrize("held", [None, record()], ids=["no-record", "record"])
@pytest.mark.parametrize(
    "state",
    [
        opt_out(in_flight=True),
        opt_out(in_flight=True, dead_lettered=True, owned=True),
        opt_in(in_flight=True, owned=True),
        NumberState(None, in_flight=True),
    ],
    ids=["opt-out", "opt-out-dead-lettered-too", "opt-in-owned", "unknown"],
)
def test_a_number_in_flight_is_never_drift(state: NumberState, held: HeldRecord | None) -> None:
    assert classify(state, held, NOW) is Note.IN_FLIGHT


@pytest.mark.parametrize("held", [None, record()], ids=["no-record", "record"])
@pytest.mark.parametrize(
    "state",
    [opt_out(dead_lettered=True), opt_in(dead_lettered=True, owned=True)],
    ids=["opt-out", "opt-in-owned"],
)
def test_a_dead_lettered_number_is_never_drift(state: NumberState, held: HeldRecord | None) -> None:
    assert classify(state, held, NOW) is Note.DEAD_LETTERED


@pytest.mark.parametrize("held", [None, record(), record(NOW + DAY)])
def test_a_number_no_event_named_is_unknown(held: HeldRecord | None) -> None:
    assert classify(NumberState(None), held, NOW) is Note.UNKNOWN_NUMBER
    assert classify(NumberState(None, owned=True), held, NOW) is Note.UNKNOWN_NUMBER


@pytest.mark.parametrize("expires_ms", [None, NOW + 1, NOW + DAY])
@pytest.mark.parametrize("owned", [False, True])
def test_an_opt_out_in_force_without_a_record_is_missing(
    expires_ms: int | None, owned: bool
) -> None:
    assert classify(opt_out(expires_ms, owned=owned), None, NOW) is DriftClass.OPT_OUT_MISSING


@pytest.mark.parametrize("expires_ms", [NOW, NOW - 1, NOW - DAY])
def test_a_lapsed_opt_out_without_a_record_is_in_sync(expires_ms: int) -> None:
    # ``expires_ms == now`` is lapsed: protection is "expires_ms > now"
    assert classify(opt_out(expires_ms), None, NOW) is Note.IN_SYNC
    assert classify(opt_out(expires_ms, owned=True), None, NOW) is Note.IN_SYNC


@pytest.mark.parametrize("theirs", [None, NOW + DAY, NOW - DAY // 2])
@pytest.mark.parametrize("owned", [False, True])
def test_a_record_outliving_a_lapsed_opt_out_is_not_drift(theirs: int | None, owned: bool) -> None:
    # more protection than asked: the sync never shortens it, nobody is called against a wish
    state = opt_out(NOW - DAY, owned=owned)
    expected = Note.IN_SYNC if owned else Note.FOREIGN_RECORD
    assert classify(state, record(theirs), NOW) is expected


def test_an_opt_in_without_a_record_is_in_sync() -> None:
    assert classify(opt_in(), None, NOW) is Note.IN_SYNC
    assert classify(opt_in(owned=True), None, NOW) is Note.IN_SYNC


@pytest.mark.parametrize("theirs", [None, NOW + DAY])
def test_an_opt_in_with_our_record_is_opt_in_record(theirs: int | None) -> None:
    assert classify(opt_in(owned=True), record(theirs), NOW) is DriftClass.OPT_IN_RECORD


@pytest.mark.parametrize("theirs", [None, NOW + DAY])
def test_an_opt_in_with_someone_elses_record_is_not_owned(theirs: int | None) -> None:
    assert classify(opt_in(), record(theirs), NOW) is DriftClass.NOT_OWNED


@pytest.mark.parametrize("expiry", [None, NOW + DAY])
def test_an_opt_out_with_the_same_expiry(expiry: int | None) -> None:
    assert classify(opt_out(expiry, owned=True), record(expiry), NOW) is Note.IN_SYNC
    assert classify(opt_out(expiry), record(expiry), NOW) is Note.FOREIGN_RECORD


def test_expiries_are_compared_to_the_second() -> None:
    ours = NOW + DAY  # a whole second
    state = opt_out(ours, owned=True)
    assert classify(state, record(ours - 1_000 + 1), NOW) is DriftClass.EXPIRY_DIFFERS
    assert classify(state, record(ours + 999), NOW) is Note.IN_SYNC  # 999 ms: same second
    assert classify(state, record(ours - 1), NOW) is DriftClass.EXPIRY_DIFFERS  # second before
    # ours with milliseconds, CXone's truncated to the second
    with_ms = opt_out(ours + 640, owned=True)
    assert classify(with_ms, record(ours), NOW) is Note.IN_SYNC
    assert classify(opt_out(ours + 640), record(ours + 999), NOW) is Note.FOREIGN_RECORD


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(NOW + DAY, None), (NOW + DAY, NOW + 2 * DAY), (NOW + DAY, NOW + DAY + 1_000)],
    ids=["never", "a-day-longer", "a-second-longer"],
)
def test_a_foreign_record_protecting_longer_is_a_note(ours: int, theirs: int | None) -> None:
    assert classify(opt_out(ours), record(theirs), NOW) is Note.FOREIGN_RECORD


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(None, NOW + DAY), (NOW + 2 * DAY, NOW + DAY), (NOW + DAY, NOW + DAY - 1_000)],
    ids=["ours-never", "a-day-shorter", "a-second-shorter"],
)
def test_a_foreign_record_protecting_shorter_differs(ours: int | None, theirs: int) -> None:
    assert classify(opt_out(ours), record(theirs), NOW) is DriftClass.EXPIRY_DIFFERS


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (None, NOW + DAY),
        (NOW + 2 * DAY, NOW + DAY),
    ],
    ids=["shorter-than-never", "shorter"],
)
def test_our_record_lapsing_earlier_differs(ours: int | None, theirs: int | None) -> None:
    assert classify(opt_out(ours, owned=True), record(theirs), NOW) is DriftClass.EXPIRY_DIFFERS


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(NOW + DAY, None), (NOW + DAY, NOW + 2 * DAY)],
    ids=["longer-never", "longer"],
)
def test_our_record_protecting_longer_is_in_sync(ours: int | None, theirs: int | None) -> None:
    # a permanent opt-out, then a later 30-day one: the record stays permanent, as designed
    assert classify(opt_out(ours, owned=True), record(theirs), NOW) is Note.IN_SYNC


def test_only_missing_opt_outs_and_our_opt_in_records_are_repairable() -> None:
    assert {c for c in DriftClass if c.repairable} == {
        DriftClass.OPT_OUT_MISSING,
        DriftClass.OPT_IN_RECORD,
    }
    assert [c.value for c in DriftClass] == [
        "opt_out_missing",
        "opt_in_record",
        "expiry_differs",
        "not_owned",
    ]


def test_protected_at() -> None:
    assert opt_out(None).protected_at(NOW) is True
    assert opt_out(NOW + 1).protected_at(NOW) is True
    assert opt_out(NOW).protected_at(NOW) is False
    assert opt_in().protected_at(NOW) is False
    assert NumberState(None).protected_at(NOW) is False
