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

import json
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.number_hash import Reader, ledger
from dnc.store import REDIS_FAILURES, convert_error, load_lua
from dnc.target import ChangeOutcome, DncChange, OutcomeKind

CREATED = "created"
"""``OwnedRecord.how``: CXone answered our add as applied."""
CREATED_UNANSWERED = "created-answer-lost"
"""``OwnedRecord.how``: CXone said "already exists" after an add of ours went unanswered."""
ADOPTED = "adopted"
"""``OwnedRecord.how``: marked ours by ``dnc-sync reconcile --adopt``."""


@dataclass(frozen=True, slots=True)
class OwnedRecord:
    """One ledger entry: the target's ``record_id`` (DNC groups: the number as the group keys
    it; outbound contacts: the contact's record id), ``created_ms`` (UTC ms, when CXone's
    answer reached us, or the adoption), ``flow_run_id`` (Prefect flow run, ``local-...``,
    or ``adopt``), ``expires_ms`` (UTC ms, ``None``: never) and ``how`` (``CREATED``...).

    Stored in its ledger bucket (``RedisKeys.owned_entry``) under its number as one compact string
    (``encode``/``decode``), fields separated by ``|``, empty trailing fields left out::

        <created ms>|<flow run id>[|<how>[|<expires ms>[|<record id>]]]

    - times: base 36 (``0-9a-z``, ``-`` before a negative one); expires empty: never;
    - flow run id: 21 base64url characters (``A-Za-z0-9-_``, 6 bits each, big-endian) of
      the 122 random bits of a version 4 UUID (its 6 fixed bits left out), 22 of the 128 bits
      of any other UUID (each only when the id is the UUID's canonical lowercase text), else
      ``~`` and the id verbatim;
    - how: empty ``created``, ``l`` ``created-answer-lost``, ``a`` ``adopted``, else ``~``
      and the text verbatim;
    - record id: empty when it is the number as a DNC group keys it by default (the digits
      without ``+``; for ``+1`` and 10 more digits, the national 10), ``+`` the number
      itself, ``=`` its digits without ``+``; else verbatim, after a ``~`` when it is empty,
      ``+``, ``=`` or starts with ``~``;
    - a verbatim text escapes ``%`` as ``%25`` and ``|`` as ``%7C``.

    A DNC group's entry without expiry is 30 characters (``mwlx78w0|BlEycOJp7TfKnTeRS5rQ4``),
    and Redis keeps a value of up to 30 in a 32-byte allocation. Entries written before
    (compact JSON, ``to_json``) are still read; an entry neither reads as is unreadable."""

    record_id: str
    created_ms: int
    flow_run_id: str
    expires_ms: int | None = None
    how: str = CREATED

    def encode(self, number: str) -> str:
        """The compact entry stored for ``number`` (E.164) in the ledger (the
        format: the class docstring)."""
        fields = [
            _base36(self.created_ms),
            _encode_run(self.flow_run_id),
            _HOW_CODES[self.how] if self.how in _HOW_CODES else "~" + _escape(self.how),
            "" if self.expires_ms is None else _base36(self.expires_ms),
            _encode_record(number, self.record_id),
        ]
        while not fields[-1]:
            fields.pop()
        return "|".join(fields)

    @classmethod
    def decode(cls, number: str, value: str | bytes) -> OwnedRecord:
        """Read the entry stored for ``number``: the compact form (``encode``) or the JSON
        written before it (``from_json``); raises ``ValueError`` when it is neither."""
        try:
            text = value.decode() if isinstance(value, bytes) else value
        except UnicodeDecodeError:
            raise ValueError("not an ownership ledger entry: UnicodeDecodeError") from None
        if text.lstrip().startswith("{"):
            return cls.from_json(text)
        fields = text.split("|")
        if not 2 <= len(fields) <= 5:
            raise ValueError("not an ownership ledger entry: fields")
        created, run, how, expires, record = fields + [""] * (5 - len(fields))
        try:
            return cls(
                _decode_record(number, record),
                _from_base36(created),
                _decode_run(run),
                None if expires == "" else _from_base36(expires),
                _decode_how(how),
            )
        except ValueError as exc:
            raise ValueError(f"not an ownership ledger entry: {exc}") from None

    def to_json(self) -> str:
        """The compact JSON form entries were stored in before ``encode`` (still read by
        ``decode``, no longer written)."""
        return json.dumps(
            {
                "recordId": self.record_id,
                "createdMs": self.created_ms,
                "flowRunId": self.flow_run_id,
                "expiresMs": self.expires_ms,
                "how": self.how,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> OwnedRecord:
        """Read an entry in the JSON form (``to_json``); raises ``ValueError`` when it is
        not one."""
        try:
            data = json.loads(text)
            if not isinstance(data["recordId"], str):
                raise TypeError("recordId")
            return cls(
                data["recordId"],
                int(data["createdMs"]),
                str(data["flowRunId"]),
                None if data.get("expiresMs") is None else int(data["expiresMs"]),
                str(data.get("how") or CREATED),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"not an ownership ledger entry: {type(exc).__name__}") from None


_HOW_CODES = {CREATED: "", CREATED_UNANSWERED: "l", ADOPTED: "a"}
_HOW_NAMES = {code: how for how, code in _HOW_CODES.items()}
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE36 = re.compile(r"-?[0-9a-z]+")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_INDEX = {char: i for i, char in enumerate(_B64)}
_V4_LEN, _UUID_LEN = 21, 22  # base64url digits of 122 and of 128 bits
_ESCAPED = re.compile(r"%(25|7C)")


def _base36(value: int) -> str:
    if value < 0:
        return "-" + _base36(-value)
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = _DIGITS36[digit] + digits
        if not value:
            return digits


def _from_base36(text: str) -> int:
    if not _BASE36.fullmatch(text):
        raise ValueError("time")
    return int(text, 36)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("|", "%7C")


def _unescape(text: str) -> str:
    if "%" in _ESCAPED.sub("", text):
        raise ValueError("escape")
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "|", text)


def _encode_run(run_id: str) -> str:
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != run_id:
        return "~" + _escape(run_id)
    n = parsed.int
    if parsed.version == 4 and parsed.variant == uuid.RFC_4122:
        # drop the version nibble (bits 76-79) and the variant's 2 bits (62-63)
        packed = (n >> 80) << 74 | ((n >> 64) & 0xFFF) << 62 | n & ((1 << 62) - 1)
        return _b64(packed, _V4_LEN)
    return _b64(n, _UUID_LEN)


def _decode_run(text: str) -> str:
    if text.startswith("~"):
        return _unescape(text[1:])
    if len(text) == _V4_LEN:
        packed = _from_b64(text, 122)
        high, mid, low = packed >> 74, (packed >> 62) & 0xFFF, packed & ((1 << 62) - 1)
        return str(uuid.UUID(int=high << 80 | 4 << 76 | mid << 64 | 2 << 62 | low))
    if len(text) == _UUID_LEN:
        return str(uuid.UUID(int=_from_b64(text, 128)))
    raise ValueError("flow run id")


def _b64(value: int, width: int) -> str:
    return "".join(_B64[(value >> 6 * i) & 63] for i in reversed(range(width)))


def _from_b64(text: str, bits: int) -> int:
    value = 0
    for char in text:
        if char not in _B64_INDEX:
            raise ValueError("flow run id")
        value = value << 6 | _B64_INDEX[char]
    if value >> bits:
        raise ValueError("flow run id")
    return value


def _decode_how(text: str) -> str:
    if text.startswith("~"):
        return _unescape(text[1:])
    if text not in _HOW_NAMES:
        raise ValueError("how")
    return _HOW_NAMES[text]


def _default_record_id(number: str) -> str:
    """The number as a DNC group keys it by default (``group_phone`` in ``auto``), fixed here:
    stored entries depend on it."""
    digits = number.lstrip("+")
    return digits[1:] if number.startswith("+1") and len(digits) == 11 else digits


def _encode_record(number: str, record_id: str) -> str:
    if record_id == _default_record_id(number):
        return ""
    if record_id == number:
        return "+"
    if record_id == number.lstrip("+"):
        return "="
    escaped = _escape(record_id)
    return "~" + escaped if record_id in ("", "+", "=") or record_id.startswith("~") else escaped


def _decode_record(number: str, text: str) -> str:
    if text == "":
        return _default_record_id(number)
    if text == "+":
        return number
    if text == "=":
        return number.lstrip("+")
    return _unescape(text[1:] if text.startswith("~") else text)


@dataclass(slots=True)
class OwnershipUpdate:
    """What one push changes in the ledger: ``grant`` (E.164 -> entry), ``release`` (numbers
    whose record our opt-in removed or found gone) and ``answered`` (numbers whose add marker
    a final answer clears)."""

    grant: dict[str, OwnedRecord] = field(default_factory=dict)
    release: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.grant or self.release or self.answered)


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


class OwnershipLedger:
    """The ledger in Redis for one namespace (bucketed: ``dnc.number_hash.ledger``).
    Methods raise ``StoreError``/``StoreUnavailable`` when Redis fails."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._ledger = ledger(keys)
        self._adopt = client.register_script(load_lua("adopt.lua", "number_hash.lua"))

    async def removable(self, numbers: Sequence[str], now_ms: int | None = None) -> set[str]:
        """Which of ``numbers`` (E.164) an opt-in may remove: owned by an entry whose record
        has not lapsed by ``now_ms`` (UTC ms, default now: a lapsed record of ours is gone,
        and whatever holds the number now is someone else's), or with an add of ours whose
        answer was lost."""
        if not numbers:
            return set()
        at_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        wanted = list(numbers)

        def queue(p: Any) -> Reader:
            read_owned = self._ledger.queue_get(p, wanted)
            p.hmget(self._keys.adds_in_flight, wanted)
            return lambda results: (read_owned(results), next(results))

        owned, adding = await self._pipeline(queue)
        found = set()
        for number, entry, add in zip(numbers, owned, adding, strict=True):
            record = _entry(number, entry)
            lasting = record is not None and (
                record.expires_ms is None or record.expires_ms > at_ms
            )
            if add or lasting:
                found.add(number)
        return found

    async def adds_in_flight(self, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` have an add of ours whose answer was lost."""
        if not numbers:
            return set()

        def queue(p: Any) -> Reader:
            p.hmget(self._keys.adds_in_flight, list(numbers))
            return next

        values = await self._pipeline(queue)
        return {n for n, value in zip(numbers, values, strict=True) if value is not None}

    async def release(self, numbers: Sequence[str]) -> int:
        """Forget ``numbers``' entries and add markers (their record is gone from CXone, as
        reconciliation found); returns how many entries went."""
        if not numbers:
            return 0

        def queue(p: Any) -> Reader:
            removed = self._ledger.queue_delete(p, numbers)
            p.hdel(self._keys.adds_in_flight, *numbers)
            return removed

        return int(await self._pipeline(queue, transaction=True))

    async def note_adds(self, numbers: Sequence[str], now_ms: int) -> set[str]:
        """Mark an add of ours whose answer was lost for each of ``numbers`` (the first time
        kept, UTC ms); returns the numbers that already had one."""
        if not numbers:
            return set()
        key = self._keys.adds_in_flight

        def queue(p: Any) -> Reader:
            for n in numbers:
                p.hsetnx(key, n, now_ms)
            return lambda results: [next(results) for _ in numbers]

        fresh = await self._pipeline(queue)
        return {number for number, new in zip(numbers, fresh, strict=True) if not new}

    async def apply(self, update: OwnershipUpdate) -> None:
        """Write ``update`` in one transaction (the first one also records when the ledger
        started: ``RedisKeys.ownership_since``)."""
        if not update:
            return
        keys = self._keys

        def queue(p: Any) -> Reader:
            p.set(keys.ownership_since, int(time.time() * 1000), nx=True)
            readers = [
                self._ledger.queue_set(p, {n: r.encode(n) for n, r in update.grant.items()}),
                self._ledger.queue_delete(p, update.release),
            ]
            if update.answered:
                p.hdel(keys.adds_in_flight, *update.answered)
            return lambda results: [next(results), *(read(results) for read in readers)]

        await self._pipeline(queue, transaction=True)

    async def entries(self, numbers: Sequence[str]) -> dict[str, OwnedRecord | None]:
        """The ledger entry of each of ``numbers`` (``None``: not owned); an unreadable
        entry counts as owned with nothing known (record id = the number)."""
        if not numbers:
            return {}
        values = await self._pipeline(lambda p: self._ledger.queue_get(p, list(numbers)))
        pairs = zip(numbers, values, strict=True)
        return {number: _entry(number, value) for number, value in pairs}

    async def adopt(self, entries: Iterable[tuple[str, OwnedRecord]]) -> int:
        """Add entries for numbers not in the ledger yet (an owned one, in its bucket or the
        legacy hash, is kept as it is: ``adopt.lua``); returns how many were added."""
        items = list(entries)
        if not items:
            return 0
        args = [x for n, r in items for x in (n, r.encode(n))]
        try:
            return int(await self._adopt(keys=[self._keys.owned], args=args))
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc

    async def count(self) -> int:
        """How many records the ledger names (every bucket's size: 10,001 ``HLEN``)."""
        return int(await self._pipeline(self._ledger.queue_count))

    async def _pipeline(self, queue: Callable[[Any], Reader], transaction: bool = False) -> Any:
        """Run the commands ``queue`` puts on one pipeline; what its reader makes of the
        results."""
        try:
            async with self._client.pipeline(transaction=transaction) as pipe:
                read = queue(pipe)
                return read(iter(await pipe.execute()))
        except REDIS_FAILURES as exc:
            raise convert_error(exc) from exc


def _entry(number: str, value: object) -> OwnedRecord | None:
    if value is None:
        return None
    try:
        return OwnedRecord.decode(number, value if isinstance(value, str | bytes) else str(value))
    except ValueError:
        return OwnedRecord(number, 0, "unknown", None, "unreadable")
