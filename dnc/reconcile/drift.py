"""The drift classes and the rule that sorts a number into one.

A number is compared only when it is settled: nothing pending, not waiting out a retry
backoff, not dead-lettered (those are in flight or already reported). Then, from this
service's latest state of the number, its ownership ledger entry and the record CXone holds
(if any):

===================== ===================================================== ===========
class                 when                                                  repair
===================== ===================================================== ===========
``opt_out_missing``   the latest state is an opt-out in force; CXone holds  requeue
                      no record
``opt_in_record``     the latest state is an opt-in; CXone holds a record   requeue
                      this service created
``expiry_differs``    an opt-out in force; CXone's record lapses before it  by hand
                      does (less protection than asked, whoever's record)
``not_owned``         the latest state is an opt-in; CXone holds a record   by hand
                      this service did not create (kept: never removed)
===================== ===================================================== ===========

Expiries are compared to the second (UTC). A record that protects longer than asked is not
drift (the sync never shortens protection: a later, shorter opt-out of a number already on
the list leaves the record as it was; the outbound-contacts contract has no expiry at all),
nor is a record still there after an opt-out lapsed. Records of numbers this service knows
nothing about, and records someone else made for numbers this service also opted out, are
not drift either: they are counted as notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dnc.events import Action
from dnc.held_records import HeldRecord


class DriftClass(StrEnum):
    """How CXone differs from this service for one number (module docstring)."""

    OPT_OUT_MISSING = "opt_out_missing"
    OPT_IN_RECORD = "opt_in_record"
    EXPIRY_DIFFERS = "expiry_differs"
    NOT_OWNED = "not_owned"

    @property
    def repairable(self) -> bool:
        """Whether requeueing the number lets the next sync fix it."""
        return self in (DriftClass.OPT_OUT_MISSING, DriftClass.OPT_IN_RECORD)


class Note(StrEnum):
    """What a compared number or record was, when it is not drift (counted, not sampled)."""

    IN_SYNC = "in_sync"
    IN_FLIGHT = "in_flight"
    DEAD_LETTERED = "dead_lettered"
    FOREIGN_RECORD = "foreign_record"
    UNKNOWN_NUMBER = "unknown_number"


@dataclass(frozen=True, slots=True)
class NumberState:
    """What this service holds for one number: the latest ``action`` (``None``: no event
    known) and its expiry (``expires_ms``, UTC ms, opt-outs only), whether it is in flight
    (pending or waiting out a retry backoff) or dead-lettered, and whether the ownership
    ledger (or an add of ours in flight) makes a record of it ours."""

    action: Action | None
    expires_ms: int | None = None
    in_flight: bool = False
    dead_lettered: bool = False
    owned: bool = False

    def protected_at(self, now_ms: int) -> bool:
        """Whether the latest state is an opt-out still in force at ``now_ms`` (UTC ms)."""
        return self.action is Action.OPT_OUT and (
            self.expires_ms is None or self.expires_ms > now_ms
        )


def classify(state: NumberState, record: HeldRecord | None, now_ms: int) -> DriftClass | Note:
    """The drift class of one number (``record``: what CXone holds for it, ``None`` when
    nothing), or the note saying why it is not drift. ``now_ms``: UTC ms."""
    if state.in_flight:
        return Note.IN_FLIGHT
    if state.dead_lettered:
        return Note.DEAD_LETTERED
    if state.action is None:  # a record of a number no event named: someone else's list
        return Note.UNKNOWN_NUMBER
    if record is None:
        return DriftClass.OPT_OUT_MISSING if state.protected_at(now_ms) else Note.IN_SYNC
    if state.action is Action.OPT_IN:
        return DriftClass.OPT_IN_RECORD if state.owned else DriftClass.NOT_OWNED
    return _opt_out_record(state, record, now_ms)


def _opt_out_record(state: NumberState, record: HeldRecord, now_ms: int) -> DriftClass | Note:
    """An opt-out (in force or lapsed) whose number CXone holds a record of."""
    ours, theirs = _second(state.expires_ms), _second(record.expires_ms)
    if state.protected_at(now_ms) and _lapses_before(theirs, ours):
        return DriftClass.EXPIRY_DIFFERS
    return Note.IN_SYNC if state.owned else Note.FOREIGN_RECORD


def _second(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def _lapses_before(theirs: int | None, ours: int | None) -> bool:
    """Whether an expiry (seconds; ``None``: never) comes before another."""
    return theirs is not None and (ours is None or theirs < ours)
