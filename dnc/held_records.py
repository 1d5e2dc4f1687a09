"""What CXone holds, read back: one record per protected number, whatever the adapter.

``HeldRecord`` is the common shape the readers (``dnc.cxone.group_records``,
``dnc.cxone.contact_records``) yield and reconciliation (``dnc.reconcile``) compares with what
this service believes. A ``RecordReader`` pages through every record a target holds and looks
one number up.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """One record CXone holds that keeps a number from being called: ``e164`` (the number read
    as E.164, ``+`` and digits), ``record_id`` (DNC groups: the number as the group keys it;
    outbound contacts: the contact's record id), ``expires_ms`` (UTC epoch ms; ``None``: never)
    and ``created_ms`` (UTC epoch ms, ``None`` when the target does not say)."""

    e164: str
    record_id: str
    expires_ms: int | None = None
    created_ms: int | None = None


class RecordReader(Protocol):
    """Reads a target's records back, under the target's rate limit and retries."""

    @property
    def page_size(self) -> int:
        """Records asked for per listing call."""
        ...

    @property
    def total(self) -> int:
        """How many records (contacts, for outbound contacts) the listing reported so far."""
        ...

    @property
    def listed(self) -> int:
        """Items the listing's answers held so far (before any filtering): fewer than
        ``total`` once paging ended means records were skipped."""
        ...

    @property
    def calls(self) -> int:
        """Listing and lookup calls made so far (each retry included)."""
        ...

    def pages(self) -> AsyncGenerator[list[HeldRecord], None]:
        """Every record, page by page, in a stable order; raises the target's errors
        (``dnc.cxone.errors``)."""
        ...

    async def lookup(self, e164: str) -> HeldRecord | None:
        """The record held for ``e164`` now, or ``None``."""
        ...
