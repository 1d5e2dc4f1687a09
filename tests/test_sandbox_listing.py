"""The sandbox's DNC-group listing as a reconciliation reads it (``orderBy``, ``fields``,
stable paging, faults) and the out-of-band control endpoint that changes a group behind the
service's back. In process through httpx.ASGITransport, on a fake clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.app import SandboxApp
from sandbox.context import Sandbox
from sandbox.settings import SandboxSettings
from sandbox.state import iso_ms
from tests.test_sandbox_app import (
    BASE,
    CLIENT_ID,
    CLIENT_SECRET,
    KEY_ID,
    KEY_SECRET,
    RECORDS,
    START_S,
    FakeClock,
    cxone_token,
    records,
    set_faults,
)

OUT_OF_BAND = "/_sandbox/dnc-groups/1001/records"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> SandboxApp:
    settings = SandboxSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        access_key_id=KEY_ID,
        access_key_secret=KEY_SECRET,
        dnc_group_ids=["1001", "1002"],
    )
    return SandboxApp(Sandbox.start(settings, clock=clock))


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


@pytest.fixture
async def headers(client: httpx.AsyncClient) -> dict[str, str]:
    return await cxone_token(client)


async def listing(
    client: httpx.AsyncClient, headers: dict[str, str], **params: object
) -> dict[str, Any]:
    response = await client.get(RECORDS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed_numbers(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    body = await listing(client, headers, top=1000)
    return [record["phoneNumber"] for record in body["dncGroupRecords"]]


async def change(client: httpx.AsyncClient, body: object, path: str = OUT_OF_BAND) -> Any:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


# -- the listing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "top"), [(23, 5), (10, 10), (7, 1), (1, 3)])
async def test_paging_visits_every_record_once_in_phone_order(
    client: httpx.AsyncClient, headers: dict[str, str], count: int, top: int
) -> None:
    numbers = [f"20255{(i * 7919) % 100000:05d}" for i in range(count)]  # not added in order
    added = await client.post(RECORDS, json=records(*numbers), headers=headers)
    assert added.json()["resultSet"]["errorCount"] == 0
    seen: list[str] = []
    for skip in range(0, count + top, top):
        body = await listing(client, headers, skip=skip, top=top)
        assert body["totalRecords"] == count
        assert len(body["dncGroupRecords"]) <= top
        seen += [record["phoneNumber"] for record in body["dncGroupRecords"]]
    assert seen == sorted(numbers)
    explicit = await listing(client, headers, top=1000, orderBy="phoneNumber asc")
    assert [r["phoneNumber"] for r in explicit["dncGroupRecords"]] == sorted(numbers)


async def test_order_by_descending_and_by_expiry(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    expiries = {
        "2025550103": iso_ms(START_S + 300),
        "2025550101": iso_ms(START_S + 100),
        "2025550104": None,
        "2025550102": iso_ms(START_S + 100),  # ties 0101: phoneNumber asc breaks it
        "2025550100": None,
    }
    for number, expiry in expiries.items():
        record = {"phoneNumber": number} | ({"expiredDate": expiry} if expiry else {})
        await client.post(RECORDS, json={"dncGroupRecords": [record]}, headers=headers)

    async def order(value: str) -> list[str]:
        body = await listing(client, headers, orderBy=value)
        return [record["phoneNumber"] for record in body["dncGroupRecords"]]

    assert await order("phoneNumber desc") == sorted(expiries, reverse=True)
    assert await order("phoneNumber DESC") == sorted(expiries, reverse=True)
    by_expiry = ["2025550101", "2025550102", "2025550103", "2025550100", "2025550104"]
    assert await order("expiredDate") == by_expiry
    assert await order("expiredDate asc") == by_expiry
    assert await order("expiredDate desc") == [
        "2025550100",
        "2025550104",
        "2025550103",
        "2025550101",
        "2025550102",
    ]
    assert (await order("expiredDate desc,phoneNumber desc"))[:2] == [
        "2025550104",
        "2025550100",
    ]
    page = await listing(client, headers, orderBy="phoneNumber desc", skip=1, top=2)
    assert [r["phoneNumber"] for r in page["dncGroupRecords"]] == ["2025550103", "2025550102"]
    assert page["totalRecords"] == 5


async def test_fields_returns_only_the_keys_asked(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    expiry = iso_ms(START_S + 60)
    await client.post(RECORDS, json=records("2025550123", expiredDate=expiry), headers=headers)
    only_phone = await listing(client, headers, fields="phoneNumber")
    assert only_phone == {"totalRecords": 1, "dncGroupRecords": [{"phoneNumber": "2025550123"}]}
    two = await listing(client, headers, fields="expiredDate, phoneNumber")
    assert two["dncGroupRecords"] == [{"phoneNumber": "2025550123", "expiredDate": expiry}]
    whole = await listing(client, headers)
    assert set(whole["dncGroupRecords"][0]) == {"phoneNumber", "expiredDate", "createdAt"}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"orderBy": "createdBy"}, "orderBy"),
        ({"orderBy": "phoneNumber sideways"}, "orderBy"),
        ({"orderBy": "phoneNumber asc extra"}, "orderBy"),
        ({"orderBy": ""}, "orderBy"),
        ({"orderBy": "phoneNumber,"}, "orderBy"),
        ({"fields": "phoneNumber,secret"}, "fields"),
        ({"fields": ""}, "fields"),
        ({"fields": "phoneNumber,,expiredDate"}, "fields"),
    ],
)
async def test_bad_order_by_or_fields_is_a_400_naming_the_parameter(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], parameter: str
) -> None:
    response = await client.get(RECORDS, params=params, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["error"], body["parameter"]) == ("invalid_request", parameter)
    assert parameter in body["message"]


async def test_top_keeps_its_cap(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    too_big = await client.get(RECORDS, params={"top": 1001}, headers=headers)
    assert too_big.status_code == 400


async def test_faults_apply_to_the_listing(
    client: httpx.AsyncClient, headers: dict[str, str], clock: FakeClock
) -> None:
    await set_faults(client, error_rate=1.0)
    failed = await client.get(RECORDS, params={"orderBy": "phoneNumber"}, headers=headers)
    assert failed.status_code in (500, 502, 503)
    await set_faults(client, error_rate=0, rate_limit_rps=1)
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    assert (await client.get(RECORDS, headers=headers)).status_code == 429
    clock.advance(1)
    await set_faults(client, rate_limit_rps=0, lost_reply_rate=1.0, hang_s=0.05)
    started = time.perf_counter()
    lost = await client.get(RECORDS, headers=headers)
    assert (lost.status_code, lost.json()["error"]) == (504, "gateway_timeout")
    assert time.perf_counter() - started >= 0.05
    await set_faults(client, lost_reply_rate=0, latency_ms=30)
    started = time.perf_counter()
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    assert time.perf_counter() - started >= 0.03


# -- out-of-band changes ---------------------------------------------------------------------


async def test_out_of_band_changes_show_in_the_listing_and_not_in_the_journal(
    client: httpx.AsyncClient, headers: dict[str, str], clock: FakeClock
) -> None:
    await client.post(RECORDS, json=records("2025550100", "2025550101"), headers=headers)
    journal_before = (await client.get("/_sandbox/journal")).json()
    expiry = iso_ms(START_S + 600)
    counts = await change(
        client,
        {
            "add": [
                {"phoneNumber": "+1 (303) 555-0199", "expiredDate": expiry},
                {"phoneNumber": "2025550100", "expiredDate": expiry},  # active: updated
            ],
            "delete": ["2025550101", "4045550100"],
            "expire": ["2025550100", "5055550100"],
        },
    )
    assert counts == {"added": 1, "updated": 1, "deleted": 1, "expired": 1, "unchanged": 2}
    body = await listing(client, headers)
    assert body["dncGroupRecords"] == [
        {"phoneNumber": "13035550199", "expiredDate": expiry, "createdAt": iso_ms(START_S)}
    ]
    assert body["totalRecords"] == 1
    state = (await client.get("/_sandbox/state")).json()["dncGroups"]["1001"]
    assert [r["phoneNumber"] for r in state["expired"]] == ["2025550100"]  # expired now
    assert state["expired"][0]["expiredDate"] == iso_ms(START_S)
    assert (await client.get("/_sandbox/journal")).json() == journal_before

    clock.advance(600)  # the added record lapses at its expiredDate
    assert await listed_numbers(client, headers) == []
    # the API sees an expired-out-of-band number as absent: adding it again succeeds
    again = await client.post(RECORDS, json=records("2025550100"), headers=headers)
    assert again.json()["resultSet"]["errorCount"] == 0
    await change(client, {"add": [{"phoneNumber": "2025550109"}]})
    assert await listed_numbers(client, headers) == ["2025550100", "2025550109"]
    assert (await listing(client, headers))["dncGroupRecords"][1]["expiredDate"] is None
    await change(client, {"delete": ["2025550100"]})
    assert await listed_numbers(client, headers) == ["2025550109"]


async def test_out_of_band_change_needs_no_token_and_is_not_faulted(
    client: httpx.AsyncClient,
) -> None:
    await set_faults(client, error_rate=1.0)
    assert await change(client, {"add": [{"phoneNumber": "2025550100"}]}) == {
        "added": 1,
        "updated": 0,
        "deleted": 0,
        "expired": 0,
        "unchanged": 0,
    }
    assert await change(client, {}) == dict.fromkeys(
        ("added", "updated", "deleted", "expired", "unchanged"), 0
    )


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"add": {}},
        {"remove": ["2025550100"]},
        {"add": [{"phoneNumber": "12"}]},
        {"add": [{"phoneNumber": "2025550100", "expiredDate": "yesterday"}]},
        {"add": [{"phoneNumber": "2025550100", "expiredDate": iso_ms(START_S - 1)}]},
        {"add": [{"phoneNumber": "2025550100", "colour": "red"}]},
        {"add": [{"phoneNumber": "2025550111"}], "delete": [2025550100]},
        {"expire": ["not a number"]},
    ],
)
async def test_a_bad_out_of_band_change_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient, headers: dict[str, str], body: object
) -> None:
    await client.post(RECORDS, json=records("2025550100"), headers=headers)
    response = await client.post(OUT_OF_BAND, json=body)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert await listed_numbers(client, headers) == ["2025550100"]


async def test_out_of_band_change_to_an_unknown_group_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/_sandbox/dnc-groups/9999/records", json={})
    assert response.status_code == 404
    other = await change(
        client, {"add": [{"phoneNumber": "2025550100"}]}, OUT_OF_BAND.replace("1001", "1002")
    )
    assert other["added"] == 1
    wrong_method = await client.get(OUT_OF_BAND)
    assert wrong_method.status_code == 405
