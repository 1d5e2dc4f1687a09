"""The sandbox's single-number lookup across DNC groups, ``POST .../dnc-groups/search``: found,
not found, lapsed and expired records left out, the 400 naming ``phoneNumber``, the bearer
check, faults and its own request counter. In process through httpx.ASGITransport, on a fake
clock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.state import iso_ms
from tests.sandbox_api.support import (
    RECORDS,
    START_S,
    FakeClock,
    outbound_token,
    records,
    set_faults,
)

SEARCH = "/inContactAPI/services/v33.0/dnc-groups/search"
OTHER_RECORDS = RECORDS.replace("1001", "1002")


async def search(client: httpx.AsyncClient, headers: dict[str, str], number: str) -> Any:
    response = await client.post(SEARCH, params={"phoneNumber": number}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["dncGroupRecords"]


async def add(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, number: str, **extra: object
) -> None:
    response = await client.post(path, json=records(number, **extra), headers=headers)
    assert response.json()["resultSet"]["errorCount"] == 0, response.text


async def test_found_in_every_group_that_holds_the_number(
    client: httpx.AsyncClient, headers: dict[str, str], clock: FakeClock
) -> None:
    expiry = iso_ms(START_S + 600)
    await add(client, headers, RECORDS, "2025550123", expiredDate=expiry)
    clock.advance(5)
    await add(client, headers, OTHER_RECORDS, "2025550123")
    await add(client, headers, OTHER_RECORDS, "2025550124")
    assert await search(client, headers, "2025550123") == [
        {
            "dncGroupId": "1001",
            "phoneNumber": "2025550123",
            "expiredDate": expiry,
            "createdAt": iso_ms(START_S),
        },
        {
            "dncGroupId": "1002",
            "phoneNumber": "2025550123",
            "expiredDate": None,
            "createdAt": iso_ms(START_S + 5),
        },
    ]
    formatted = await search(client, headers, "(202) 555-0124")  # matched as digits
    assert [(r["dncGroupId"], r["phoneNumber"]) for r in formatted] == [("1002", "2025550124")]


async def test_not_found_is_an_empty_list(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert await search(client, headers, "2025550123") == []
    await add(client, headers, RECORDS, "2025550123")
    assert await search(client, headers, "2025550199") == []
    assert await search(client, headers, "+12025550123") == []  # exact digits: no +1 reading


async def test_expired_and_lapsed_records_are_not_returned(
    client: httpx.AsyncClient, headers: dict[str, str], clock: FakeClock
) -> None:
    await add(client, headers, RECORDS, "2025550123")
    await add(client, headers, OTHER_RECORDS, "2025550123", expiredDate=iso_ms(START_S + 10))
    expired = await client.request("DELETE", RECORDS, json=records("2025550123"), headers=headers)
    assert expired.json()["resultSet"]["errorCount"] == 0
    assert [r["dncGroupId"] for r in await search(client, headers, "2025550123")] == ["1002"]
    clock.advance(10)  # the 1002 record lapses at its expiredDate
    assert await search(client, headers, "2025550123") == []
    await client.post("/_sandbox/dnc-groups/1001/records", json={"expire": ["2025550123"]})
    await client.post(
        "/_sandbox/dnc-groups/1001/records", json={"add": [{"phoneNumber": "2025550123"}]}
    )
    assert [r["dncGroupId"] for r in await search(client, headers, "2025550123")] == ["1001"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"phoneNumber": ""},
        {"phoneNumber": "12"},
        {"phoneNumber": "2025550123x"},
        {"phoneNumber": "1234567890123456"},
        {"phoneNumber": ["2025550123", "2025550124"]},
    ],
)
async def test_a_missing_or_bad_number_is_a_400_naming_the_parameter(
    client: httpx.AsyncClient, headers: dict[str, str], query: dict[str, Any]
) -> None:
    response = await client.post(SEARCH, params=query, headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["parameter"]) == ("invalid_request", "phoneNumber")
    assert "phoneNumber" in body["message"]


async def test_needs_the_cxone_token(client: httpx.AsyncClient) -> None:
    outbound = await outbound_token(client)
    params = {"phoneNumber": "2025550123"}
    cases = [
        await client.post(SEARCH, params=params),
        await client.post(SEARCH, params=params, headers={"Authorization": "Bearer nope"}),
        await client.post(SEARCH, params=params, headers=outbound),
    ]
    assert [(r.status_code, r.json()) for r in cases] == [(401, {"error": "invalid_token"})] * 3


async def test_faults_apply_and_the_search_is_counted_on_its_own(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    params = {"phoneNumber": "2025550123"}
    assert (await client.post(SEARCH, params=params, headers=headers)).status_code == 200
    await set_faults(client, error_rate=1.0)
    failed = await client.post(SEARCH, params=params, headers=headers)
    assert failed.status_code in (500, 502, 503)
    await set_faults(client, error_rate=0, lost_reply_rate=1.0, hang_s=0.01)
    lost = await client.post(SEARCH, params=params, headers=headers)
    assert (lost.status_code, lost.json()["error"]) == (504, "gateway_timeout")
    await set_faults(client, lost_reply_rate=0)
    assert (await client.get(SEARCH, params=params, headers=headers)).status_code == 405
    counted = (await client.get("/_sandbox/state")).json()["requests"]
    assert counted["dnc_search"] == {"200": 1, str(failed.status_code): 1, "504": 1, "405": 1}
    assert "dnc_records" not in counted


async def test_a_group_named_search_is_still_a_records_path(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(
        "/inContactAPI/services/v33.0/dnc-groups/search/records", headers=headers
    )
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert "DNC group search" in response.json()["message"]
