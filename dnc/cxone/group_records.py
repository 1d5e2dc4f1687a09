"""Reading a CXone DNC group back (``dnc.held_records.RecordReader`` for adapter 1).

Contract (NICE CXone Admin API "DNC Groups", the shape the sandbox mirrors; see
``sandbox/dnc_groups.py`` for what is assumed where the public docs are silent):

- listing: ``GET .../dnc-groups/{groupId}/records?skip=&top=&orderBy=phoneNumber asc&
  fields=phoneNumber,expiredDate`` answers ``{"totalRecords", "dncGroupRecords":
  [{"phoneNumber", "expiredDate"}]}``; ``orderBy`` is always sent, so pages follow one
  total order;
- one number: ``POST .../dnc-groups/search?phoneNumber=<digits>`` answers
  ``{"dncGroupRecords": [{"dncGroupId", "phoneNumber", "expiredDate", "createdAt"}]}``, the
  active record of that number in every group; only this group's counts.

Numbers come back as the group keys them (digits, no ``+``): with ``DNC_CXONE_PHONE_FORMAT``
``auto`` ten digits are read as a +1 national number, anything else as ``+`` and the digits.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from dnc.cxone.dnc_groups import DncGroupsTarget, group_phone, record_time_ms
from dnc.cxone.paging import Page, PagedReader, ordered_pages
from dnc.held_records import HeldRecord

LISTING_FIELDS = "phoneNumber,expiredDate"
"""What the listing asks for: all a comparison needs (a record's ``createdAt`` is not)."""
ORDER = "phoneNumber asc"


def group_e164(phone: str, phone_format: str) -> str:
    """The E.164 form of a number as a DNC group keys it (digits, no ``+``): ten digits are
    a +1 national number under ``auto``; anything else is ``+`` and the digits."""
    digits = phone if phone.isascii() and phone.isdigit() else "".join(filter(_ascii_digit, phone))
    if phone_format == "auto" and len(digits) == 10:
        return "+1" + digits
    return "+" + digits


def _ascii_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


class DncGroupsReader(PagedReader):
    """Pages through one DNC group with ``target``'s transport (token, pacing, retries)."""

    def __init__(self, target: DncGroupsTarget, page_size: int, concurrency: int) -> None:
        super().__init__(target.transport, page_size, concurrency)
        self._target = target

    async def pages(self) -> AsyncGenerator[list[HeldRecord], None]:
        """Every active record of the group, ``phoneNumber asc``, page by page."""
        url = await self._target.transport.retrying(self._target.records_url)
        async for records in ordered_pages(
            lambda skip: self._page(url, skip), self._page_size, self._concurrency
        ):
            yield records

    async def lookup(self, e164: str) -> HeldRecord | None:
        """This group's active record of ``e164`` (the search call), or ``None``."""
        settings = self._target.settings
        url = (await self._target.transport.retrying(self._target.records_url)).rsplit("/", 2)[0]
        reply = await self._request(
            "POST", f"{url}/search", {"phoneNumber": group_phone(e164, settings.phone_format)}
        )
        for record in _list(reply, "dncGroupRecords"):
            if str(record.get("dncGroupId")) == settings.dnc_group_id:
                return self._held(record)
        return None

    async def _page(self, url: str, skip: int) -> Page[HeldRecord]:
        params = {
            "skip": str(skip),
            "top": str(self._page_size),
            "orderBy": ORDER,
            "fields": LISTING_FIELDS,
        }
        body = await self._request("GET", url, params)
        records = [self._held(record) for record in _list(body, "dncGroupRecords")]
        total = body.get("totalRecords") if isinstance(body, dict) else None
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        self._count(len(records), total)
        return Page(records, total, len(records))

    async def _request(self, method: str, url: str, params: dict[str, str]) -> Any:
        reply = await self._target.transport.request(method, url, params=params)
        try:
            return reply.response.json()
        except ValueError:
            return None

    def _held(self, record: dict[str, Any]) -> HeldRecord:
        phone = str(record.get("phoneNumber") or "")
        return HeldRecord(
            group_e164(phone, self._target.settings.phone_format),
            phone,
            record_time_ms(record.get("expiredDate")),
            record_time_ms(record.get("createdAt")),
        )


def _list(body: Any, key: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
