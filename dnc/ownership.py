"""The ownership ledger: which DNC records this service created, so that an opt-in removes
only those.

A DNC group also holds records this service never wrote: a compliance officer's, a
litigator-list scrub's, another integration's. Removing one of them on an opt-in would lift
protection this service did not give, so an opt-in is sent to CXone only for a number the
ledger names (``removable``); otherwise it is settled as ``not_owned`` without a request and
the record, if there is one, stays (``DNC_SYNC_REMOVE_FOREIGN_RECORDS=true`` turns this off).

Who owns what (``ownership_update``, after each push):

- an opt-out CXone answered as applied (a record created, or a contact's flag set by an
  upsert) is ours, recorded with the record id, when (UTC ms), the flow run and the expiry;
- an opt-out answered "already exists" is ours only when an earlier add of ours for that
  number went unanswered (a lost reply: ``adds-in-flight`` held it before this push, or the
  transport retried this very request after a timeout), since that add is what made it;
  otherwise the record was someone else's and stays theirs;
- an opt-in CXone answered as applied or already applied (no record left) ends ownership;
- an entry whose record has lapsed (its expiry passed) no longer counts: whatever holds the
  number now is someone else's; reconciliation releases the entries of records it finds gone.

``adds-in-flight`` holds, per number, when an attempt to add it ended without an answer (a
timeout after the request may have reached CXone; an answered failure, a 429 or a 5xx or a
per-record refusal, marks nothing). It counts as ownership for an opt-in (the add may have
landed), and a final answer clears it. Known limit: a record someone else adds between an
add of ours that went unanswered and its retry is taken for ours. Outbound contacts: an
upsert onto an existing contact (a 409 resolved) does not make its flag ours, since the
flag may already have been set by someone else; only a contact this service created is.

Keys: ``RedisKeys.owned_prefix`` (buckets; ``RedisKeys.owned``, the legacy flat hash, still
read), ``RedisKeys.adds_in_flight``, ``RedisKeys.ownership_adopted``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from dnc.events import Action
from dnc.owned_record import ADOPTED, CREATED, CREATED_UNANSWERED, OwnedRecord
from dnc.ownership_ledger import OwnershipLedger, OwnershipUpdate
from dnc.target import ChangeOutcome, DncChange, OutcomeKind

__all__ = [
    "ADOPTED",
    "CREATED",
    "CREATED_UNANSWERED",
    "OwnedRecord",
    "OwnershipLedger",
    "OwnershipUpdate",
    "not_owned_outcome",
    "ownership_update",
]


def ownership_update(
    changes: Sequence[DncChange],
    outcomes: Sequence[ChangeOutcome],
    earlier_adds: Collection[str],
    flow_run_id: str,
    now_ms: int,
) -> OwnershipUpdate:
    """The ledger changes for one pushed batch (``changes`` and their ``outcomes``, same
    order), following the rules of the module docstring. ``earlier_adds``: numbers that had
    an add of ours in flight before this push (``OwnershipLedger.note_adds``)."""
    update = OwnershipUpdate()
    for change, outcome in zip(changes, outcomes, strict=True):
        kind = outcome.kind
        if change.action is Action.OPT_OUT:
            how = _creation(kind, change.e164 in earlier_adds or outcome.after_lost_reply)
            if how is not None:
                update.grant[change.e164] = OwnedRecord(
                    outcome.record_id or change.e164,
                    now_ms,
                    flow_run_id,
                    change.expires_at_ms,
                    how,
                )
            if kind.acknowledged or kind is OutcomeKind.REJECTED:
                update.answered.append(change.e164)
        elif kind.acknowledged and kind is not OutcomeKind.NOT_OWNED:
            update.release.append(change.e164)
            update.answered.append(change.e164)
    return update


def _creation(kind: OutcomeKind, earlier_add_unanswered: bool) -> str | None:
    if kind is OutcomeKind.APPLIED:
        return CREATED
    unknown_before = kind in (OutcomeKind.ALREADY_APPLIED, OutcomeKind.CONFLICT_RESOLVED)
    if unknown_before and earlier_add_unanswered:
        return CREATED_UNANSWERED
    return None


def not_owned_outcome(e164: str) -> ChangeOutcome:
    """The outcome of an opt-in not sent because no record of ours is there to remove."""
    return ChangeOutcome(
        e164,
        OutcomeKind.NOT_OWNED,
        "not sent: this service created no record for this number, so a record someone "
        "else added stays (DNC_SYNC_REMOVE_FOREIGN_RECORDS)",
    )
