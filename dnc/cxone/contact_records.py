"""Reading outbound contacts back (``dnc.held_records.RecordReader`` for adapter 2).

Contract (the original design's outbound-contacts API, as the sandbox serves it):
``GET {base}/api/v2/outbound/contacts?skip=&top=`` answers ``{"totalRecords", "contacts":
[{"recordId", "phoneNumber", "dnc": {"doNotCall", "optOutDate"}, "createdAt", ...}]}`` in a
stable order; ``?phoneNumber=<E.164>`` finds one. A contact is a held record when its
``doNotCall`` flag is set; contacts carry no expiry.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from dnc.cxone.contacts import OutboundContactsTarget
from dnc.cxone.dnc_groups import record_time_ms
from dnc.cxone.paging import Page, PagedReader, ordered_pages
from dnc.held_records import HeldRecord


class ContactsReader(PagedReader):
    """Pages through the outbound contacts with ``target``'s transport; yields only the
    contacts flagged do-not-call."""

    def __init__(self, target: OutboundContactsTarget, page_size: int, concurrency: int) -> None:
        super().__init__(target.transport, page_size, concurrency)
        self._target = target

    async def pages(self) -> AsyncGenerator[list[HeldRecord], None]:
        """Every contact flagged do-not-call, page by page (a page may hold fewer than
        ``page_size``: unflagged contacts are left out)."""
        async for records in ordered_pages(self._page, self._page_size, self._concurrency):
            yield records

    async def lookup(self, e164: str) -> HeldRecord | None:
        """The contact of ``e164`` when it is flagged do-not-call, else ``None``."""
        body = await self._get({"phoneNumber": e164})
        for contact in _contacts(body):
            held = _held(contact)
            if held is not None and held.e164 == e164:
                return held
        return None

    async def _page(self, skip: int) -> Page[HeldRecord]:
        body = await self._get({"skip": str(skip), "top": str(self._page_size)})
        contacts = _contacts(body)
        records = [held for held in map(_held, contacts) if held is not None]
        total = body.get("totalRecords") if isinstance(body, dict) else None
        # a page short of flagged contacts is not the end: the total counts every contact
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        self._count(len(contacts), total)
        return Page(records, total, len(contacts))

    async def _get(self, params: dict[str, str]) -> Any:
        url = f"{self._target.base_url}/api/v2/outbound/contacts"
        reply = await self._target.transport.request("GET", url, params=params)
        try:
            return reply.response.json()
        except ValueError:
            return None


def _contacts(body: Any) -> list[dict[str, Any]]:
    items = body.get("contacts") if isinstance(body, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _held(contact: dict[str, Any]) -> HeldRecord | None:
    dnc = contact.get("dnc")
    if not isinstance(dnc, dict) or dnc.get("doNotCall") is not True:
        return None
    return HeldRecord(
        str(contact.get("phoneNumber") or ""),
        str(contact.get("recordId") or ""),
        None,
        record_time_ms(contact.get("createdAt")),
    )
