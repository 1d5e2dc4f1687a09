"""Build the configured target and the one httpx client per process it uses."""

from __future__ import annotations

import asyncio
import random

import httpx

from dnc.cxone.contact_records import ContactsReader
from dnc.cxone.contacts import OutboundContactsTarget
from dnc.cxone.dnc_groups import DncGroupsTarget, Endpoints
from dnc.cxone.group_records import DncGroupsReader
from dnc.cxone.transport import Sleep
from dnc.cxone_settings import CxoneSettings
from dnc.held_records import RecordReader

Target = DncGroupsTarget | OutboundContactsTarget


def build_http_client(settings: CxoneSettings) -> httpx.AsyncClient:
    """An httpx client with explicit connect/read/write/pool timeouts (seconds) and a pool
    sized to the concurrency limit; the caller closes it (``aclose()``)."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.write_timeout_s,
        pool=settings.pool_timeout_s,
    )
    limits = httpx.Limits(
        max_connections=settings.max_concurrency + 2,
        max_keepalive_connections=settings.max_concurrency + 2,
    )
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        headers={"User-Agent": "cxone-dnc-sync"},
    )


def build_target(
    settings: CxoneSettings,
    client: httpx.AsyncClient,
    *,
    endpoints: Endpoints | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> Target:
    """The adapter ``DNC_CXONE_ADAPTER`` names, on ``client``. Raises ``ValueError`` when a
    setting it needs is missing."""
    if settings.adapter == "outbound-contacts":
        return OutboundContactsTarget(client, settings, sleep=sleep, rng=rng)
    return DncGroupsTarget(client, settings, endpoints=endpoints, sleep=sleep, rng=rng)


def build_reader(target: Target, page_size: int, concurrency: int) -> RecordReader:
    """The reader of what ``target`` holds (``dnc.held_records``): the DNC group's records,
    or the contacts flagged do-not-call; ``page_size`` records per listing call,
    ``concurrency`` calls in flight."""
    if isinstance(target, OutboundContactsTarget):
        return ContactsReader(target, page_size, concurrency)
    return DncGroupsReader(target, page_size, concurrency)
