"""Adapter 2: the outbound-contacts upsert contract of the original design.

Contract: token ``POST {base}/oauth/token`` with JSON ``{"grant_type": "client_credentials",
"client_id", "client_secret"}``; ``POST {base}/api/v2/outbound/contacts`` with
``{"contacts": [{"phone": {"phoneNumber": "+1..."}, "dnc": {"doNotCall": bool,
"optOutDate": RFC 3339 UTC}, "customListIds": [...], "existingRecordId"?, "updateMode"?}]}``;
``doNotCall`` is true for an opt-out and false for an opt-in. The contract has no expiry: an
opt-out with one is held without it (stricter than asked, never laxer) and says so.

A 409 ``{"existingRecordId", "message", "phoneNumber"?}`` refuses the whole request. It is
resolved by sending again with ``updateMode: "upsert"`` and the record id on the contact it
belongs to: the one the body names, the only one in a batch of one, or, when a multi-contact
body names no number, the one found by splitting the batch in halves. Resolution is bounded by
a request budget. A 409 after an attempt that timed out means the first attempt landed:
those contacts are ``already_applied`` (the upsert that follows is harmless).

With ``DNC_CXONE_SEND_TRACE`` (test stacks only) every POST carries ``X-Dnc-Sync-Trace``
(``dnc.cxone.dnc_groups.trace_headers``: ``<E.164>=<event time, UTC ms>`` per contact).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from dnc.cxone.dnc_groups import trace_headers
from dnc.cxone.errors import CxoneTransientError
from dnc.cxone.http_errors import error_text, parse_token_response, send_plain
from dnc.cxone.transport import Sleep, build_transport
from dnc.cxone_settings import CxoneSettings
from dnc.events import Action
from dnc.masking import redact
from dnc.target import ChangeOutcome, DncChange, OutcomeKind, check_batch
from dnc.timestamps import iso_utc

NO_EXPIRY = "held without expiry: the outbound-contacts contract has no expiry date"


@dataclass
class _Resolution:
    """State of one batch's conflict resolution: record ids found per E.164, requests left,
    whether a conflict followed a timed-out attempt, and numbers refused for good."""

    budget: int
    record_ids: dict[str, str] = field(default_factory=dict)
    after_timeout: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    answered: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    """E.164 -> (HTTP status, record id) of the last answer that covered it (audit trail)."""


@dataclass(frozen=True, slots=True)
class _Conflict:
    record_id: str | None
    phone: str | None
    message: str


class OutboundContactsTarget:
    """``DncTarget`` over the outbound-contacts API at ``DNC_CXONE_CONTACTS_BASE_URL``."""

    name = "outbound-contacts"

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: CxoneSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not settings.contacts_base_url:
            raise ValueError("DNC_CXONE_CONTACTS_BASE_URL is required for outbound-contacts")
        self._client = client
        self._settings = settings
        self._base = settings.contacts_base_url.rstrip("/")
        self.transport = build_transport(client, self._mint, settings, sleep=sleep, rng=rng)
        self.tokens = self.transport.tokens

    @property
    def batch_size(self) -> int:
        """Contacts per API call (``DNC_CXONE_BATCH_SIZE``)."""
        return self._settings.batch_size

    @property
    def base_url(self) -> str:
        """``DNC_CXONE_CONTACTS_BASE_URL`` without a trailing ``/``."""
        return self._base

    async def apply(self, changes: Sequence[DncChange]) -> list[ChangeOutcome]:
        """Create or upsert each contact's DNC flag; one outcome per change, in order."""
        check_batch(changes, self.batch_size)
        if not changes:
            return []
        state = _Resolution(budget=4 * len(changes) + 8)
        await self._push(list(changes), state)
        return [self._outcome(change, state) for change in changes]

    def _outcome(self, change: DncChange, state: _Resolution) -> ChangeOutcome:
        status, record_id = state.answered.get(change.e164, (None, None))
        outcome = self._kind(change, state)
        return replace(outcome, http_status=status, record_id=record_id or outcome.record_id)

    def _kind(self, change: DncChange, state: _Resolution) -> ChangeOutcome:
        if change.e164 in state.refused:
            return ChangeOutcome(change.e164, OutcomeKind.REJECTED, state.refused[change.e164])
        if change.e164 in state.after_timeout:
            return ChangeOutcome(
                change.e164,
                OutcomeKind.ALREADY_APPLIED,
                "409 after a timed-out attempt: the first attempt landed",
                after_lost_reply=True,
            )
        note = NO_EXPIRY if change.expires_at_ms is not None else ""
        if change.e164 in state.record_ids:
            return ChangeOutcome(change.e164, OutcomeKind.CONFLICT_RESOLVED, note)
        return ChangeOutcome(change.e164, OutcomeKind.APPLIED, note)

    async def _push(self, changes: list[DncChange], state: _Resolution) -> None:
        """Send ``changes`` until accepted, resolving 409s; raises transient errors as they
        come (the batch is then retried whole, which the upsert makes harmless)."""
        while changes:
            if state.budget <= 0:
                raise_unresolved(changes)
            state.budget -= 1
            reply = await self.transport.request(
                "POST",
                f"{self._base}/api/v2/outbound/contacts",
                json_body={"contacts": [self._contact(c, state) for c in changes]},
                accept=(409,),
                headers=trace_headers([(c.e164, c) for c in changes], self._settings.send_trace),
            )
            answer = _record_ids(reply.response)
            for change in changes:
                record_id = answer.get(change.e164) or state.record_ids.get(change.e164)
                state.answered[change.e164] = (reply.response.status_code, record_id)
            if reply.response.status_code != 409:
                return
            conflict = _read_conflict(reply.response)
            changes = await self._resolve(changes, conflict, reply.after_timeout, state)

    async def _resolve(
        self, changes: list[DncChange], conflict: _Conflict, after_timeout: bool, state: _Resolution
    ) -> list[DncChange]:
        """Attach the conflict's record id to its contact; return what to send again."""
        owner = conflict.phone if conflict.phone in {c.e164 for c in changes} else None
        if owner is None and len(changes) > 1:
            half = len(changes) // 2  # the body names no number of ours: split to find it
            await self._push(changes[:half], state)
            await self._push(changes[half:], state)
            return []
        owner = owner or changes[0].e164
        if conflict.record_id and state.record_ids.get(owner) != conflict.record_id:
            state.record_ids[owner] = conflict.record_id
            if after_timeout:
                state.after_timeout.add(owner)
            return changes
        state.refused[owner] = f"unresolvable 409: {conflict.message}"
        return [c for c in changes if c.e164 != owner]

    def _contact(self, change: DncChange, state: _Resolution) -> dict[str, Any]:
        contact: dict[str, Any] = {
            "phone": {"phoneNumber": change.e164},
            "dnc": {
                "doNotCall": change.action is Action.OPT_OUT,
                "optOutDate": iso_utc(change.event_ms),
            },
            "customListIds": list(self._settings.custom_list_ids),
        }
        record_id = state.record_ids.get(change.e164)
        if record_id is not None:
            contact["existingRecordId"] = record_id
            contact["updateMode"] = "upsert"
        return contact

    async def _mint(self) -> tuple[str, float]:
        settings = self._settings
        response = await send_plain(
            self._client,
            "POST",
            f"{self._base}/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
            },
            headers={"Accept": "application/json"},
        )
        return parse_token_response(response)


def raise_unresolved(changes: Sequence[DncChange]) -> None:
    """Give up on a batch whose conflicts did not resolve within the request budget."""
    raise CxoneTransientError(
        f"409 resolution did not converge for a batch of {len(changes)}; retry later"
    )


def _read_conflict(response: httpx.Response) -> _Conflict:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    record_id = body.get("existingRecordId")
    phone = body.get("phoneNumber")
    return _Conflict(
        record_id if isinstance(record_id, str) and record_id else None,
        phone if isinstance(phone, str) else None,
        redact(error_text(response) or "conflict"),
    )


def _record_ids(response: httpx.Response) -> dict[str, str]:
    """E.164 -> ``recordId`` of each contact a 2xx answer lists (``{"contacts": [{"recordId",
    "phoneNumber", ...}]}``); empty when it lists none or is not JSON."""
    try:
        contacts = response.json().get("contacts")
    except (ValueError, AttributeError):
        return {}
    found: dict[str, str] = {}
    for contact in contacts if isinstance(contacts, list) else []:
        if isinstance(contact, dict):
            phone, record_id = contact.get("phoneNumber"), contact.get("recordId")
            if isinstance(phone, str) and isinstance(record_id, str | int):
                found[phone] = str(record_id)
    return found
