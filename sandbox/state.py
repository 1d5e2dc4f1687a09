"""What the sandbox remembers: DNC group records, outbound contacts, the write journal, issued
tokens, counters.

All of it lives in memory for the life of the process; ``POST /_sandbox/reset`` clears it.
Times are UTC: ``*_at_s`` epoch seconds for comparisons, ISO strings as CXone shows them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.journal import WriteJournal


def iso_ms(epoch_s: float) -> str:
    """``epoch_s`` as ``2027-01-01T00:00:00.000Z`` (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class DncRecord:
    """One number in a DNC group: ``phone_number`` digits (no ``+``), when it lapses
    (``expires_at_s``, ``None``: never) and when it was added."""

    phone_number: str
    expires_at_s: float | None
    created_at_s: float

    def as_json(self) -> dict[str, Any]:
        """The record as CXone lists it: ``phoneNumber``, ``expiredDate``, ``createdAt``."""
        expired = None if self.expires_at_s is None else iso_ms(self.expires_at_s)
        return {
            "phoneNumber": self.phone_number,
            "expiredDate": expired,
            "createdAt": iso_ms(self.created_at_s),
        }


@dataclass(slots=True)
class DncGroup:
    """A DNC group: ``active`` records by digits (insertion order) and ``expired`` ones."""

    group_id: str
    active: dict[str, DncRecord] = field(default_factory=dict)
    expired: list[DncRecord] = field(default_factory=list)

    def sweep(self, now_s: float) -> None:
        """Move every active record whose expiry date has passed to ``expired``."""
        for digits in [d for d, r in self.active.items() if _lapsed(r, now_s)]:
            self.expired.append(self.active.pop(digits))

    def expire(self, digits: str, now_s: float) -> None:
        """End the active record of ``digits`` now (it must exist)."""
        record = self.active.pop(digits)
        record.expires_at_s = now_s
        self.expired.append(record)


def _lapsed(record: DncRecord, now_s: float) -> bool:
    return record.expires_at_s is not None and record.expires_at_s <= now_s


@dataclass(slots=True)
class Contact:
    """An outbound contact, keyed by its E.164 ``phone_number``."""

    record_id: str
    phone_number: str
    do_not_call: bool
    opt_out_date: str | None
    custom_list_ids: list[str | int]
    created_at_s: float
    updated_at_s: float

    def as_json(self) -> dict[str, Any]:
        """The contact as the outbound API lists it."""
        return {
            "recordId": self.record_id,
            "phoneNumber": self.phone_number,
            "dnc": {"doNotCall": self.do_not_call, "optOutDate": self.opt_out_date},
            "customListIds": list(self.custom_list_ids),
            "createdAt": iso_ms(self.created_at_s),
            "updatedAt": iso_ms(self.updated_at_s),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token's ``endpoint`` (``auth_token`` or ``oauth_token``) and expiry."""

    endpoint: str
    expires_at_s: float


@dataclass(slots=True)
class SandboxState:
    """Everything ``POST /_sandbox/reset`` clears. Counters: ``token_requests`` and
    ``tokens_issued`` per token endpoint, ``requests`` per endpoint and status; ``journal``:
    every DNC-state write applied (``sandbox.journal``)."""

    groups: dict[str, DncGroup]
    contacts: dict[str, Contact] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    next_record: int = 1
    token_requests: Counter[str] = field(default_factory=Counter)
    tokens_issued: Counter[str] = field(default_factory=Counter)
    requests: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    journal: WriteJournal = field(default_factory=WriteJournal)

    @classmethod
    def empty(cls, group_ids: list[str]) -> SandboxState:
        """A fresh state with the DNC groups ``group_ids``, all empty."""
        return cls(groups={group_id: DncGroup(group_id) for group_id in group_ids})

    def new_record_id(self) -> str:
        """The next outbound contact record id: ``rec-1``, ``rec-2``..."""
        record_id = f"rec-{self.next_record}"
        self.next_record += 1
        return record_id

    def keep_token(self, token: str, endpoint: str, expires_at_s: float, now_s: float) -> None:
        """Remember an issued access token, forgetting the ones that have expired."""
        for stale in [t for t, issued in self.tokens.items() if issued.expires_at_s <= now_s]:
            del self.tokens[stale]
        self.tokens[token] = IssuedToken(endpoint, expires_at_s)
        self.tokens_issued[endpoint] += 1

    def snapshot(self, now_s: float) -> dict[str, Any]:
        """The whole state as JSON-ready data (token values are never shown)."""
        for group in self.groups.values():
            group.sweep(now_s)
        return {
            "dncGroups": {
                group_id: {
                    "active": [r.as_json() for r in group.active.values()],
                    "expired": [r.as_json() for r in group.expired],
                }
                for group_id, group in self.groups.items()
            },
            "contacts": [contact.as_json() for contact in self.contacts.values()],
            "tokens": {
                "requests": dict(self.token_requests),
                "issued": dict(self.tokens_issued),
                "live": sum(1 for t in self.tokens.values() if t.expires_at_s > now_s),
            },
            "requests": {
                endpoint: {str(status): n for status, n in sorted(counts.items())}
                for endpoint, counts in sorted(self.requests.items())
            },
            "journal": {
                "firstSeq": self.journal.first_seq,
                "nextSeq": self.journal.next_seq,
                "dropped": self.journal.dropped,
            },
        }
