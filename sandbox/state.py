"""What the sandbox remembers: DNC group records, outbound contacts, the write journal, issued
tokens, counters.

All of it lives in memory for the life of the process; ``POST /_sandbox/reset`` clears it.
Times are UTC: ``*_at_s`` epoch seconds for comparisons, ISO strings as CXone shows them.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import (
    Callable,
    Hashable,
    ItemsView,
    Iterator,
    KeysView,
    MutableMapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from sandbox.journal import WriteJournal

_T = TypeVar("_T")


def iso_ms(epoch_s: float) -> str:
    """``epoch_s`` as ``2027-01-01T00:00:00.000Z`` (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class DncRecord:
    """One number in a DNC group: ``phone_number`` digits (no ``+``), when it lapses
    (``expires_at_s``, ``None``: never) and when it was added. Immutable: a change of expiry
    stores a new record (``dataclasses.replace``), so every change goes through the group."""

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


class ActiveRecords(MutableMapping[str, DncRecord]):
    """A group's active records by digits, in insertion order (a plain dict's behaviour), that
    also keeps ``version``, bumped by every store and removal, so an ordering cached at one
    version is known stale at another, and a heap of ``(expires_at_s, digits)`` so finding
    the lapsed records costs nothing while none is due."""

    __slots__ = ("_lapsing", "_records", "version")

    def __init__(self) -> None:
        self._records: dict[str, DncRecord] = {}
        self._lapsing: list[tuple[float, str]] = []  # may hold stale entries; see lapsed()
        self.version = 0

    def __getitem__(self, digits: str) -> DncRecord:
        return self._records[digits]

    def __setitem__(self, digits: str, record: DncRecord) -> None:
        self._records[digits] = record
        self.version += 1
        if record.expires_at_s is not None:
            heapq.heappush(self._lapsing, (record.expires_at_s, digits))
            if len(self._lapsing) > 2 * len(self._records) + _HEAP_SLACK:
                self._rebuild_heap()

    def __delitem__(self, digits: str) -> None:
        del self._records[digits]
        self.version += 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, digits: object) -> bool:
        return digits in self._records

    def __repr__(self) -> str:
        return f"ActiveRecords({self._records!r})"

    @overload
    def get(self, digits: str, /) -> DncRecord | None: ...
    @overload
    def get(self, digits: str, /, default: DncRecord | _T) -> DncRecord | _T: ...
    def get(self, digits: str, /, default: object = None) -> object:
        """The record of ``digits``, or ``default`` (a dict's ``get``, at a dict's speed)."""
        return self._records.get(digits, default)

    def keys(self) -> KeysView[str]:
        return self._records.keys()

    def values(self) -> ValuesView[DncRecord]:
        return self._records.values()

    def items(self) -> ItemsView[str, DncRecord]:
        return self._records.items()

    def lapsed(self, now_s: float) -> list[str]:
        """The digits of every record whose expiry is at or before ``now_s`` (epoch seconds,
        UTC), in insertion order; O(log n) per record due, nothing while none is (an O(n)
        scan orders them when two or more are due at once)."""
        due: set[str] = set()
        while self._lapsing and self._lapsing[0][0] <= now_s:
            expires_at_s, digits = heapq.heappop(self._lapsing)
            record = self._records.get(digits)
            if record is not None and record.expires_at_s == expires_at_s:  # else stale
                due.add(digits)
        if len(due) < 2:
            return list(due)
        return [digits for digits in self._records if digits in due]

    def _rebuild_heap(self) -> None:
        """Drop the stale heap entries (a record since removed or given another expiry)."""
        self._lapsing = [
            (r.expires_at_s, d) for d, r in self._records.items() if r.expires_at_s is not None
        ]
        heapq.heapify(self._lapsing)


_HEAP_SLACK = 1024  # stale heap entries tolerated beyond 2 per active record before a rebuild
MAX_CACHED_ORDERS = 4
"""Most orderings of one group's active records kept at once (``DncGroup.ordered``)."""


@dataclass(slots=True)
class DncGroup:
    """A DNC group: ``active`` records by digits (insertion order) and ``expired`` ones."""

    group_id: str
    active: ActiveRecords = field(default_factory=ActiveRecords)
    expired: list[DncRecord] = field(default_factory=list)
    _orders: dict[Hashable, tuple[int, list[DncRecord]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def version(self) -> int:
        """Bumped by every change to the active records (``ActiveRecords.version``)."""
        return self.active.version

    def sweep(self, now_s: float) -> None:
        """Move every active record whose expiry date has passed (at or before ``now_s``,
        epoch seconds) to ``expired``, in insertion order. Cheap when nothing is due."""
        for digits in self.active.lapsed(now_s):
            self.expired.append(self.active.pop(digits))

    def expire(self, digits: str, now_s: float) -> None:
        """End the active record of ``digits`` now (it must exist: ``KeyError``)."""
        record = self.active.pop(digits)
        self.expired.append(replace(record, expires_at_s=now_s))

    def ordered(
        self, order: Hashable, arrange: Callable[[list[DncRecord]], None]
    ) -> Sequence[DncRecord]:
        """The active records sorted in place by ``arrange``, cached under ``order`` (a key
        naming that arrangement) until the next change: O(1) while the group is unchanged, one
        sort after a change. At most ``MAX_CACHED_ORDERS`` orderings are kept. Read only."""
        version = self.active.version
        cached = self._orders.get(order)
        if cached is not None and cached[0] == version:
            return cached[1]
        for stale in [key for key, (seen, _) in self._orders.items() if seen != version]:
            del self._orders[stale]
        while len(self._orders) >= MAX_CACHED_ORDERS:
            del self._orders[next(iter(self._orders))]  # the oldest
        records = list(self.active.values())
        arrange(records)
        self._orders[order] = (version, records)
        return records


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
