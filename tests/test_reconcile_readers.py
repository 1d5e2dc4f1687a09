"""Reading CXone back (``dnc.cxone.group_records``, ``dnc.cxone.contact_records``) against
respx: the listing's query, records as ``HeldRecord``, totals, calls and one-number lookups."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from dnc.cxone.contact_records import ContactsReader
from dnc.cxone.contacts import OutboundContactsTarget
from dnc.cxone.dnc_groups import DncGroupsTarget, record_time_ms
from dnc.cxone.group_records import DncGroupsReader, group_e164
from dnc.held_records import HeldRecord
from dnc.timestamps import iso_utc
from tests.cxone_fakes import (
    API,
    CONTACTS_BASE,
    ISSUER,
    RECORDS_URL,
    TOKEN_URL,
    Sleeps,
    contacts_settings,
    groups_settings,
    make_jwt,
)

SEARCH_URL = f"{API}/inContactAPI/services/v33.0/dnc-groups/search"
CONTACTS_URL = f"{CONTACTS_BASE}/api/v2/outbound/contacts"
T0 = 1_790_000_000_000  # UTC ms, a whole second
DAY = 86_400_000


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{ISSUER}/.well-known/openid-configuration").respond(
            json={"issuer": ISSUER, "token_endpoint": TOKEN_URL}
        )
        router.get(f"{ISSUER}/.well-known/cxone-configuration").respond(
            json={"api_endpoint": API, "tenantId": "tenant-1"}
        )
        router.post(TOKEN_URL).respond(json={"access_token": make_jwt(), "expires_in": 3600})
        router.post(f"{CONTACTS_BASE}/oauth/token").respond(
            json={"access_token": "opaque-token-1", "expires_in": 3600}
        )
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def groups_reader(
    http: httpx.AsyncClient, page_size: int, concurrency: int = 2, **settings: object
) -> DncGroupsReader:
    target = DncGroupsTarget(
        http, groups_settings(**settings), sleep=Sleeps(), rng=random.Random(3)
    )
    return DncGroupsReader(target, page_size, concurrency)


def contacts_reader(http: httpx.AsyncClient, page_size: int) -> ContactsReader:
    target = OutboundContactsTarget(http, contacts_settings(), sleep=Sleeps())
    return ContactsReader(target, page_size, 2)


class FakeListing:
    """Answers listing calls from ``items`` by ``skip``/``top`` under ``key``, with
    ``totalRecords``; keeps every request's query."""

    def __init__(self, key: str, items: list[dict[str, Any]]) -> None:
        self.key = key
        self.items = items
        self.queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.queries.append(query)
        skip, top = int(query["skip"]), int(query["top"])
        return httpx.Response(
            200, json={"totalRecords": len(self.items), self.key: self.items[skip : skip + top]}
        )


async def read_all(reader: DncGroupsReader | ContactsReader) -> list[list[HeldRecord]]:
    return [page async for page in reader.pages()]


GROUP_ITEMS: list[dict[str, Any]] = [
    {"phoneNumber": "2025550101", "expiredDate": iso_utc(T0 + DAY), "createdAt": iso_utc(T0)},
    {"phoneNumber": "2025550102", "expiredDate": None, "createdAt": iso_utc(T0 + 1_500)},
    {"phoneNumber": "442079460123", "expiredDate": "", "createdAt": "not a date"},
    {"phoneNumber": "12025550104", "expiredDate": "yesterday-ish", "createdAt": None},
    {"phoneNumber": "2025550105"},
]


async def test_group_listing_sends_the_documented_query_and_maps_records(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    listing = FakeListing("dncGroupRecords", GROUP_ITEMS)
    mock.get(RECORDS_URL).mock(side_effect=listing)
    reader = groups_reader(http, page_size=2)
    assert (reader.total, reader.calls, reader.page_size) == (0, 0, 2)
    pages = await read_all(reader)
    assert sorted(listing.queries, key=lambda q: int(q["skip"])) == [
        {
            "skip": str(skip),
            "top": "2",
            "orderBy": "phoneNumber asc",
            "fields": "phoneNumber,expiredDate",
        }
        for skip in (0, 2, 4)
    ]
    assert pages == [
        [
            HeldRecord("+12025550101", "2025550101", T0 + DAY, T0),
            HeldRecord("+12025550102", "2025550102", None, T0 + 1_500),
        ],
        [
            HeldRecord("+442079460123", "442079460123", None, 0),
            HeldRecord("+12025550104", "12025550104", 0, None),
        ],
        [HeldRecord("+12025550105", "2025550105", None, None)],
    ]
    assert (reader.total, reader.calls) == (5, 3)


async def test_group_listing_under_e164_digits_reads_every_number_as_plus_digits(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.get(RECORDS_URL).mock(side_effect=FakeListing("dncGroupRecords", GROUP_ITEMS))
    reader = groups_reader(http, page_size=10, phone_format="e164-digits")
    (page,) = await read_all(reader)
    assert [r.e164 for r in page] == [
        "+2025550101",
        "+2025550102",
        "+442079460123",
        "+12025550104",
        "+2025550105",
    ]
    assert [r.record_id for r in page] == [item["phoneNumber"] for item in GROUP_ITEMS]
    assert (reader.total, reader.calls) == (5, 1)


async def test_an_empty_group_is_one_call(mock: respx.MockRouter, http: httpx.AsyncClient) -> None:
    listing = FakeListing("dncGroupRecords", [])
    mock.get(RECORDS_URL).mock(side_effect=listing)
    reader = groups_reader(http, page_size=1000)
    assert await read_all(reader) == [[]]
    assert (reader.total, reader.calls, len(listing.queries)) == (0, 1, 1)


async def test_a_retried_page_counts_each_call(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    listing = FakeListing("dncGroupRecords", GROUP_ITEMS[:3])
    answers = iter([httpx.Response(503)])

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.params["skip"] == "2":
            response = next(answers, None)
            if response is not None:
                return response
        return listing(request)

    mock.get(RECORDS_URL).mock(side_effect=flaky)
    reader = groups_reader(http, page_size=2)
    pages = await read_all(reader)
    assert [[r.record_id for r in page] for page in pages] == [
        ["2025550101", "2025550102"],
        ["442079460123"],
    ]
    assert reader.calls == 3  # two pages, one of them twice


def search_answer(*records: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"dncGroupRecords": list(records)})


async def test_group_lookup_searches_and_keeps_only_this_groups_record(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    search = mock.post(SEARCH_URL).mock(
        return_value=search_answer(
            {"dncGroupId": 2002, "phoneNumber": "2025550123", "expiredDate": iso_utc(T0)},
            {
                "dncGroupId": 1001,
                "phoneNumber": "2025550123",
                "expiredDate": iso_utc(T0 + DAY),
                "createdAt": iso_utc(T0 - DAY),
            },
        )
    )
    reader = groups_reader(http, page_size=10)
    found = await reader.lookup("+12025550123")
    assert found == HeldRecord("+12025550123", "2025550123", T0 + DAY, T0 - DAY)
    request = search.calls.last.request
    assert request.method == "POST"
    assert dict(request.url.params) == {"phoneNumber": "2025550123"}
    assert reader.calls == 1


@pytest.mark.parametrize(
    "answer",
    [
        search_answer({"dncGroupId": 2002, "phoneNumber": "2025550123"}),
        search_answer(),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, text="not json"),
    ],
    ids=["another-group-only", "none", "other-shape", "not-json"],
)
async def test_group_lookup_finds_nothing(
    mock: respx.MockRouter, http: httpx.AsyncClient, answer: httpx.Response
) -> None:
    mock.post(SEARCH_URL).mock(return_value=answer)
    reader = groups_reader(http, page_size=10)
    assert await reader.lookup("+12025550123") is None
    assert reader.calls == 1


async def test_group_lookup_sends_the_number_as_the_group_keys_it(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    search = mock.post(SEARCH_URL).mock(
        return_value=search_answer({"dncGroupId": "1001", "phoneNumber": "12025550123"})
    )
    reader = groups_reader(http, page_size=10, phone_format="e164-digits")
    assert await reader.lookup("+12025550123") == HeldRecord(
        "+12025550123", "12025550123", None, None
    )
    assert dict(search.calls.last.request.url.params) == {"phoneNumber": "12025550123"}


@pytest.mark.parametrize(
    ("phone", "phone_format", "e164"),
    [
        ("2025550123", "auto", "+12025550123"),
        ("12025550123", "auto", "+12025550123"),
        ("442079460123", "auto", "+442079460123"),
        ("(202) 555-0123", "auto", "+12025550123"),
        ("2025550123", "e164-digits", "+2025550123"),
        ("12025550123", "e164-digits", "+12025550123"),
    ],
)
def test_group_e164(phone: str, phone_format: str, e164: str) -> None:
    assert group_e164(phone, phone_format) == e164


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (None, None),
        ("", None),
        ("2026-09-21T14:13:20Z", 1_790_000_000_000),
        ("2026-09-21T14:13:20.250Z", 1_790_000_000_250),
        ("2026-09-21T16:13:20+02:00", 1_790_000_000_000),
        ("2026-09-21T14:13:20", 1_790_000_000_000),  # no zone: UTC
        ("garbage", 0),
        ("1999-12-31T23:59:59Z", 0),  # before 2000: unreadable
        (True, 0),
        ([], 0),
        (1_790_000_000_000, 1_790_000_000_000),
    ],
)
def test_record_time_ms(value: object, ms: int | None) -> None:
    assert record_time_ms(value) == ms


def contact(
    number: str, record_id: str, flagged: bool | None, created: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"recordId": record_id, "phoneNumber": number}
    if flagged is not None:
        item["dnc"] = {"doNotCall": flagged, "optOutDate": iso_utc(T0)}
    if created is not None:
        item["createdAt"] = created
    return item


CONTACTS = [
    contact("+12025550101", "r-1", False),
    contact("+12025550102", "r-2", None),
    contact("+12025550103", "r-3", False),
    contact("+12025550104", "r-4", True, iso_utc(T0)),
    contact("+12025550105", "r-5", False),
    contact("+12025550106", "r-6", True),
    contact("+12025550107", "r-7", True, "not a date"),
]


async def test_contacts_listing_yields_only_flagged_contacts_and_pages_past_empty_ones(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    listing = FakeListing("contacts", CONTACTS)
    mock.get(CONTACTS_URL).mock(side_effect=listing)
    reader = contacts_reader(http, page_size=3)
    pages = await read_all(reader)
    assert pages == [
        [],  # three contacts, none flagged: paging goes on
        [
            HeldRecord("+12025550104", "r-4", None, T0),
            HeldRecord("+12025550106", "r-6", None, None),
        ],
        [HeldRecord("+12025550107", "r-7", None, 0)],
    ]
    assert sorted(listing.queries, key=lambda q: int(q["skip"])) == [
        {"skip": "0", "top": "3"},
        {"skip": "3", "top": "3"},
        {"skip": "6", "top": "3"},
    ]
    assert (reader.total, reader.calls, reader.page_size) == (7, 3, 3)


async def test_contacts_listing_without_a_total_stops_at_a_short_page(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    route = mock.get(CONTACTS_URL).mock(
        return_value=httpx.Response(200, json={"contacts": CONTACTS[:2]})
    )
    reader = contacts_reader(http, page_size=3)
    assert await read_all(reader) == [[]]
    assert (reader.total, route.call_count) == (2, 1)


@pytest.mark.parametrize(
    ("contacts", "expected"),
    [
        ([contact("+12025550104", "r-4", True)], HeldRecord("+12025550104", "r-4")),
        ([contact("+12025550104", "r-4", False)], None),
        ([contact("+12025550104", "r-4", None)], None),
        ([contact("+12025550199", "r-9", True)], None),  # another number
        (
            [contact("+12025550199", "r-9", True), contact("+12025550104", "r-4", True)],
            HeldRecord("+12025550104", "r-4"),
        ),
        ([], None),
    ],
    ids=["flagged", "unflagged", "no-dnc", "other-number", "second-of-two", "none"],
)
async def test_contacts_lookup(
    mock: respx.MockRouter,
    http: httpx.AsyncClient,
    contacts: list[dict[str, Any]],
    expected: HeldRecord | None,
) -> None:
    route = mock.get(CONTACTS_URL).mock(
        return_value=httpx.Response(200, json={"contacts": contacts})
    )
    reader = contacts_reader(http, page_size=3)
    assert await reader.lookup("+12025550104") == expected
    assert dict(route.calls.last.request.url.params) == {"phoneNumber": "+12025550104"}
    assert reader.calls == 1
