"""Adapter 2: outbound contacts, the original design's contract (not a public CXone API).

``POST /api/v2/outbound/contacts`` with ``{"contacts": [{"phone": {"phoneNumber": E.164},
"dnc": {"doNotCall", "optOutDate"?}, "customListIds"?, "existingRecordId"?, "updateMode"?}]}``
(at most ``MAX_CONTACTS``) is all or nothing:

- 400: the body does not have that shape (unknown fields included), an ``optOutDate`` is not
  RFC 3339 UTC or is missing while ``doNotCall`` is true, or a number appears twice;
- 503: a contact's number is one of ``failing_numbers``;
- 409: the first contact that names an existing number without ``updateMode: "upsert"``
  (``"Contact already exists"``), or an upsert whose ``existingRecordId`` is not the stored
  one (``"existingRecordId does not match"``; ``existingRecordId`` in the answer is the stored
  id, ``null`` when the number has no record). The body names ``phoneNumber`` too only when
  ``conflict_names_number`` is on;
- 200: every contact applied, ``{"contacts": [{"recordId", "phoneNumber", "status"}]}``.

``GET /api/v2/outbound/contacts`` lists ``{"totalRecords", "contacts"}``: ``skip`` (default 0)
and ``top`` (default 100, at most ``MAX_PAGE``) page through the contacts in creation order,
which is ``recordId`` order (``rec-1``, ``rec-2``...; an update keeps a contact's place), so
paging visits every contact exactly once while none is created; ``totalRecords`` counts every
contact matched, not the page; ``phoneNumber`` finds one (compared by its digits).

Each contact of an applied batch is journaled (``sandbox.journal``, target ``contacts``):
``optOut`` for ``doNotCall`` true, ``optIn`` for false, ``changed`` when the flag differs from
before (a new contact's "before" is false), with the event ``X-Dnc-Sync-Trace`` names.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from itertools import islice
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from sandbox.context import Sandbox
from sandbox.dnc_records import is_failing
from sandbox.http import BadRequest, Request, Response, error
from sandbox.journal import CONTACTS_TARGET, OPT_IN, OPT_OUT, TRACE_HEADER, Trace
from sandbox.state import Contact

ALREADY_EXISTS = "Contact already exists"
RECORD_ID_MISMATCH = "existingRecordId does not match"
MAX_CONTACTS = 1000
MAX_PAGE = 1000
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)$")

E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]


class Phone(BaseModel):
    """``{"phoneNumber": "+<7-15 digits>"}``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    phoneNumber: E164


class DncFlag(BaseModel):
    """``{"doNotCall": bool, "optOutDate": RFC 3339 UTC | null}``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    doNotCall: bool
    optOutDate: str | None = None

    @field_validator("optOutDate")
    @classmethod
    def _utc(cls, value: str | None) -> str | None:
        if value is not None:
            if not _RFC3339_UTC.match(value):
                raise ValueError("must be RFC 3339 in UTC (Z or +00:00)")
            datetime.fromisoformat(value)  # a real date and time, or ValueError
        return value

    @model_validator(mode="after")
    def _dated(self) -> DncFlag:
        if self.doNotCall and self.optOutDate is None:
            raise ValueError("optOutDate is required when doNotCall is true")
        return self


class ContactIn(BaseModel):
    """One contact of a batch."""

    model_config = ConfigDict(extra="forbid", strict=True)
    phone: Phone
    dnc: DncFlag
    customListIds: list[str | int] = Field(default_factory=list)
    existingRecordId: str | None = None
    updateMode: Literal["upsert"] | None = None


class ContactBatch(BaseModel):
    """``{"contacts": [...]}``, 1 to ``MAX_CONTACTS`` contacts."""

    model_config = ConfigDict(extra="forbid", strict=True)
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_CONTACTS)


def upsert_contacts(sandbox: Sandbox, request: Request) -> Response:
    """Apply a whole batch, or refuse it whole (see the module docstring)."""
    contacts = _batch(request)
    if any(is_failing(sandbox, c.phone.phoneNumber[1:]) for c in contacts):
        return error(503, "temporary_failure", "Temporary failure processing batch; try again.")
    conflict = _first_conflict(sandbox, contacts)
    if conflict is not None:
        return conflict
    now_s = sandbox.now()
    trace = Trace.parse(request.header(TRACE_HEADER))
    applied = [
        _apply(sandbox, c, now_s, trace.event_for(i, c.phone.phoneNumber))
        for i, c in enumerate(contacts)
    ]
    return Response(200, {"contacts": applied})


def list_contacts(sandbox: Sandbox, request: Request) -> Response:
    """``{"totalRecords", "contacts"}``: the page ``skip``/``top`` of the contacts in creation
    (``recordId``) order, ``totalRecords`` all of them; ``phoneNumber`` is compared by its
    digits (a ``+`` sent raw in the query arrives as a space). 400 for a bad ``skip``/``top``."""
    skip = request.query_int("skip", 0, 0, 1_000_000_000)
    top = request.query_int("top", 100, 1, MAX_PAGE)
    wanted = request.query_value("phoneNumber")
    contacts: Collection[Contact] = sandbox.state.contacts.values()  # kept in creation order
    if wanted is not None:
        digits = "".join(c for c in wanted if c in "0123456789")
        found = sandbox.state.contacts.get("+" + digits)  # stored as E.164: "+" and digits
        contacts = [] if found is None else [found]
    page = [contact.as_json() for contact in islice(contacts, skip, skip + top)]
    return Response(200, {"totalRecords": len(contacts), "contacts": page})


def _batch(request: Request) -> list[ContactIn]:
    try:
        batch = ContactBatch.model_validate(request.json())
    except ValidationError as exc:
        raise BadRequest(_problems(exc)) from exc
    seen: set[str] = set()
    for index, contact in enumerate(batch.contacts):
        number = contact.phone.phoneNumber
        if number in seen:
            raise BadRequest(f"contacts.{index}.phone.phoneNumber: appears twice in the batch")
        seen.add(number)
    return batch.contacts


def _problems(exc: ValidationError) -> str:
    """The first few validation problems as ``loc: message`` (inputs are not echoed)."""
    lines = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(lines)


def _first_conflict(sandbox: Sandbox, contacts: list[ContactIn]) -> Response | None:
    for contact in contacts:
        number = contact.phone.phoneNumber
        stored = sandbox.state.contacts.get(number)
        if contact.updateMode != "upsert":
            if stored is not None:
                return _conflict(sandbox, stored.record_id, number, ALREADY_EXISTS)
        elif contact.existingRecordId is not None:
            stored_id = None if stored is None else stored.record_id
            if contact.existingRecordId != stored_id:
                return _conflict(sandbox, stored_id, number, RECORD_ID_MISMATCH)
    return None


def _conflict(sandbox: Sandbox, record_id: str | None, number: str, message: str) -> Response:
    body: dict[str, Any] = {"existingRecordId": record_id, "message": message}
    if sandbox.config.conflict_names_number:
        body["phoneNumber"] = number
    return Response(409, body)


def _apply(
    sandbox: Sandbox, contact: ContactIn, now_s: float, event_ms: int | None
) -> dict[str, Any]:
    number = contact.phone.phoneNumber
    stored = sandbox.state.contacts.get(number)
    sandbox.state.journal.append(
        now_s=now_s,
        target=CONTACTS_TARGET,
        method="POST",
        phone_number=number,
        action=OPT_OUT if contact.dnc.doNotCall else OPT_IN,
        expired_date=None,
        changed=contact.dnc.doNotCall != (stored is not None and stored.do_not_call),
        event_ms=event_ms,
    )
    if stored is None:
        stored = Contact(
            record_id=sandbox.state.new_record_id(),
            phone_number=number,
            do_not_call=contact.dnc.doNotCall,
            opt_out_date=contact.dnc.optOutDate,
            custom_list_ids=list(contact.customListIds),
            created_at_s=now_s,
            updated_at_s=now_s,
        )
        sandbox.state.contacts[number] = stored
        status = "created"
    else:
        stored.do_not_call = contact.dnc.doNotCall
        stored.opt_out_date = contact.dnc.optOutDate
        stored.custom_list_ids = list(contact.customListIds)
        stored.updated_at_s = now_s
        status = "updated"
    return {"recordId": stored.record_id, "phoneNumber": number, "status": status}
