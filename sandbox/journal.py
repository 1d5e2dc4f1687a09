"""The write journal: every DNC-state write the sandbox applied, in the order it applied them.

An entry is appended for each DNC-group record written (``POST`` add: opt-out, ``DELETE``
expire: opt-in), including a record that left the state as it was (added while already
active, expired while not active: ``changed`` false), and for each outbound contact of an
accepted batch. Records refused (invalid number, failing number, bad expiry) are not written
and not journaled. ``GET /_sandbox/journal`` serves it; ``POST /_sandbox/reset`` clears it.

Which event a write stood for comes from the client's optional ``X-Dnc-Sync-Trace`` header
(``DNC_CXONE_SEND_TRACE``, test stacks only): ``<phoneNumber as sent>=<event time, UTC ms>``
per record, comma-separated, in record order. A record is paired with the item at its own
position when that item names the same number as sent, else with the only item naming it;
otherwise (no header, a malformed item, an ambiguous number) its event is unknown
(``eventMs`` null). The header never changes what the sandbox does.

The journal holds at most ``MAX_ENTRIES``; beyond that the oldest are dropped and counted
(``dropped``), so a reader can tell a gap from an empty stretch. Sequence numbers start at 1
and are never reused while the sandbox runs (a reset starts again at 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRACE_HEADER = b"x-dnc-sync-trace"
OPT_OUT, OPT_IN = "optOut", "optIn"
CONTACTS_TARGET = "contacts"
MAX_ENTRIES = 100_000
"""Entries kept; older ones are dropped (and counted) first."""
MAX_TRACE_ITEMS = 1000
"""Trace items read from one header (a write holds at most 1000 records)."""
_MAX_MS_DIGITS = 15  # epoch ms up to year 9999 has 15 digits


def group_target(group_id: str) -> str:
    """The journal's name for DNC group ``group_id``: ``dnc-group:<id>``."""
    return f"dnc-group:{group_id}"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One applied write of one number: ``seq`` (1, 2, ...), ``at_ms`` (sandbox clock, UTC
    epoch ms), ``target`` (``dnc-group:<id>`` or ``contacts``), ``method`` (``POST`` or
    ``DELETE``), ``phone_number`` as stored (DNC groups: digits; contacts: E.164),
    ``action`` (``optOut``: the record active / ``doNotCall`` true; ``optIn``: no active
    record / ``doNotCall`` false), ``expired_date`` (the expiry the write asked for, ISO 8601
    UTC with ms; ``None``: none, or unreadable on a no-change add), ``changed`` (whether
    the number's DNC state changed) and
    ``event_ms`` (the event time the client said the write stood for, UTC epoch ms, or
    ``None``: unknown)."""

    seq: int
    at_ms: int
    target: str
    method: str
    phone_number: str
    action: str
    expired_date: str | None
    changed: bool
    event_ms: int | None

    def as_json(self) -> dict[str, Any]:
        """The entry as ``GET /_sandbox/journal`` lists it (camelCase keys)."""
        return {
            "seq": self.seq,
            "atMs": self.at_ms,
            "target": self.target,
            "method": self.method,
            "phoneNumber": self.phone_number,
            "action": self.action,
            "expiredDate": self.expired_date,
            "changed": self.changed,
            "eventMs": self.event_ms,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> JournalEntry:
        """The entry ``as_json`` gave (``KeyError``/``TypeError``/``ValueError`` if not)."""
        event_ms = raw["eventMs"]
        expired = raw["expiredDate"]
        return cls(
            seq=int(raw["seq"]),
            at_ms=int(raw["atMs"]),
            target=str(raw["target"]),
            method=str(raw["method"]),
            phone_number=str(raw["phoneNumber"]),
            action=_action(raw["action"]),
            expired_date=None if expired is None else str(expired),
            changed=bool(raw["changed"]),
            event_ms=None if event_ms is None else int(event_ms),
        )


def _action(value: object) -> str:
    if value not in (OPT_OUT, OPT_IN):
        raise ValueError(f"not an action: {value!r}")
    return str(value)


@dataclass(slots=True)
class WriteJournal:
    """Append-only, ordered; ``entries`` hold sequence numbers ``first_seq`` ..
    ``next_seq - 1`` without a gap; ``dropped`` counts the oldest entries let go."""

    entries: list[JournalEntry] = field(default_factory=list)
    next_seq: int = 1
    dropped: int = 0

    @property
    def first_seq(self) -> int:
        """The sequence number of the oldest entry kept (``next_seq`` when empty)."""
        return self.next_seq - len(self.entries)

    def append(
        self,
        *,
        now_s: float,
        target: str,
        method: str,
        phone_number: str,
        action: str,
        expired_date: str | None,
        changed: bool,
        event_ms: int | None,
    ) -> JournalEntry:
        """Record one applied write at ``now_s`` (epoch seconds); returns the entry."""
        entry = JournalEntry(
            seq=self.next_seq,
            at_ms=round(now_s * 1000),
            target=target,
            method=method,
            phone_number=phone_number,
            action=_action(action),
            expired_date=expired_date,
            changed=changed,
            event_ms=event_ms,
        )
        self.entries.append(entry)
        self.next_seq += 1
        if len(self.entries) > MAX_ENTRIES:
            excess = len(self.entries) - MAX_ENTRIES
            del self.entries[:excess]
            self.dropped += excess
        return entry

    def page(self, after: int, limit: int) -> list[JournalEntry]:
        """Up to ``limit`` entries with a sequence number above ``after``, oldest first."""
        start = max(0, after + 1 - self.first_seq)
        return self.entries[start : start + limit]

    def dump(self) -> dict[str, Any]:
        """JSON-ready: ``nextSeq``, ``dropped`` and ``entries`` (``JournalEntry.as_json``)."""
        return {
            "nextSeq": self.next_seq,
            "dropped": self.dropped,
            "entries": [entry.as_json() for entry in self.entries],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> WriteJournal:
        """The journal ``dump`` gave; ``KeyError``/``TypeError``/``ValueError`` when the data
        is not that shape or its sequence numbers are not the consecutive run it claims."""
        journal = cls(
            entries=[JournalEntry.from_json(raw) for raw in data["entries"]],
            next_seq=int(data["nextSeq"]),
            dropped=int(data["dropped"]),
        )
        expected = list(range(journal.first_seq, journal.next_seq))
        if journal.first_seq < 1 or [e.seq for e in journal.entries] != expected:
            raise ValueError("journal sequence numbers are not consecutive")
        return journal


@dataclass(frozen=True, slots=True)
class Trace:
    """The items of one request's ``X-Dnc-Sync-Trace`` header: (number as sent, event ms or
    ``None`` when the item is malformed), in order; empty without the header."""

    items: tuple[tuple[str, int | None], ...] = ()

    @classmethod
    def parse(cls, value: bytes | None) -> Trace:
        """Read a header value; anything unreadable makes that item's event unknown, never
        an error (the header is advisory)."""
        if not value:
            return cls()
        items = []
        for part in value.decode("latin-1").split(",")[:MAX_TRACE_ITEMS]:
            phone, sep, ms = part.strip().rpartition("=")
            ms = ms.strip()
            good = bool(sep) and ms.isascii() and ms.isdigit() and len(ms) <= _MAX_MS_DIGITS
            items.append((phone.strip(), int(ms) if good else None))
        return cls(tuple(items))

    def event_for(self, index: int, phone: object) -> int | None:
        """The event ms the client gave for record ``index`` whose number was sent as
        ``phone``: the item at ``index`` if it names ``phone``, else the only item that
        does; ``None`` when unknown."""
        if not isinstance(phone, str):
            return None
        if index < len(self.items) and self.items[index][0] == phone:
            return self.items[index][1]
        found = [ms for name, ms in self.items if name == phone]
        return found[0] if len(found) == 1 else None
