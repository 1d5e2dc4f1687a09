"""One ownership ledger entry (``dnc.ownership``): which record, when, by which run, how."""

from __future__ import annotations

import json
from dataclasses import dataclass

from dnc.ledger_codec import (
    base36,
    decode_record,
    decode_run,
    encode_record,
    encode_run,
    escape,
    from_base36,
    unescape,
)

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
            base36(self.created_ms),
            encode_run(self.flow_run_id),
            _HOW_CODES[self.how] if self.how in _HOW_CODES else "~" + escape(self.how),
            "" if self.expires_ms is None else base36(self.expires_ms),
            encode_record(number, self.record_id),
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
                decode_record(number, record),
                from_base36(created),
                decode_run(run),
                None if expires == "" else from_base36(expires),
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


def _decode_how(text: str) -> str:
    if text.startswith("~"):
        return unescape(text[1:])
    if text not in _HOW_NAMES:
        raise ValueError("how")
    return _HOW_NAMES[text]
