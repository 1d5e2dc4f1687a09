"""The sandbox's DNC-group listing as a reconciliation reads it (``orderBy``, ``fields``,
stable paging, faults, cached orderings that follow every change), the out-of-band control
endpoint that changes a group behind the service's back, and the contacts listing's paging.
In process through httpx.ASGITransport, on a fake clock."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx
import pytest

from sandbox.app import MAX_BODY_BYTES
from sandbox.control import MAX_OUT_OF_BAND
from sandbox.state import DncGroup, DncRecord, iso_ms
from tests.sandbox_api.support import (
    CONTACTS,
    RECORDS,
    START_S,
    FakeClock,
    contact,
    outbound_token,
    records,
    set_faults,
)

OUT_OF_BAND = "/_sandbox/dnc-groups/1001/records"


async def listing(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str | int
) -> dict[str, Any]:
    response = await client.get(RECORDS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def numbers_of(body: dict[str, Any]) -> list[str]:
    return [record["phoneNumber"] for record in body["dncGroupRecords"]]


async def listed_numbers(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    return numbers_of(await listing(client, headers, top=1000))


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


async def test_out_of_band_change_takes_its_cap_in_a_body_over_the_api_cap(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    expiry = iso_ms(START_S + 3600)
    adds = [{"phoneNumber": f"1{i:010d}", "expiredDate": expiry} for i in range(MAX_OUT_OF_BAND)]
    body = json.dumps({"add": adds}).encode()
    assert len(body) > MAX_BODY_BYTES  # the control route's cap is the larger one
    response = await client.post(OUT_OF_BAND, content=body)
    assert response.status_code == 200, response.text
    assert response.json()["added"] == MAX_OUT_OF_BAND
    assert (await listing(client, headers, top=1))["totalRecords"] == MAX_OUT_OF_BAND
    one_too_many = {"add": adds[:1], "delete": [add["phoneNumber"] for add in adds]}
    assert (await client.post(OUT_OF_BAND, json=one_too_many)).status_code == 400
    api = await client.post(RECORDS, content=body, headers=headers)
    assert (api.status_code, api.json()["error"]) == (413, "body_too_large")


# -- cached orderings follow every change ----------------------------------------------------

_LAST = float("inf")


def _by_expiry(model: dict[str, float | None]) -> list[str]:
    return sorted(model, key=lambda n: (_LAST if model[n] is None else model[n], n))


async def test_every_kind_of_change_between_pages_shows_in_the_next_page(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    model: dict[str, float | None] = {f"20255501{i:02d}": None for i in range(10)}
    await change(client, {"add": [{"phoneNumber": number} for number in model]})

    async def check() -> None:
        for order, expected in (("phoneNumber", sorted(model)), ("expiredDate", _by_expiry(model))):
            first = await listing(client, headers, orderBy=order, top=3)
            assert first["totalRecords"] == len(model)
            assert numbers_of(first) == expected[:3]
            rest = await listing(client, headers, orderBy=order, skip=3, top=1000)
            assert numbers_of(rest) == expected[3:]

    await check()  # both orderings sorted and kept
    added = await client.post(
        RECORDS, json=records("2025550099", expiredDate=iso_ms(START_S + 500)), headers=headers
    )
    assert added.json()["resultSet"]["errorCount"] == 0
    model["2025550099"] = START_S + 500
    await check()
    gone = await client.request("DELETE", RECORDS, json=records("2025550105"), headers=headers)
    assert gone.json()["resultSet"]["errorCount"] == 0
    del model["2025550105"]
    await check()
    # a new expiry moves a record in the expiredDate order without changing who is listed
    await change(
        client, {"add": [{"phoneNumber": "2025550107", "expiredDate": iso_ms(START_S + 9)}]}
    )
    model["2025550107"] = START_S + 9
    await check()
    await change(client, {"delete": ["2025550102"]})
    del model["2025550102"]
    await check()
    await change(client, {"expire": ["2025550103"], "add": [{"phoneNumber": "2025550001"}]})
    del model["2025550103"]
    model["2025550001"] = None
    await check()
    with_filter = await listing(client, headers, phoneNumber="(202) 555-0107")
    assert with_filter["totalRecords"] == 1
    assert with_filter["dncGroupRecords"][0]["expiredDate"] == iso_ms(START_S + 9)


async def test_a_record_lapsing_between_two_listings_leaves_the_second(
    client: httpx.AsyncClient, headers: dict[str, str], clock: FakeClock
) -> None:
    await client.post(
        RECORDS, json=records("2025550110", expiredDate=iso_ms(START_S + 10)), headers=headers
    )
    await client.post(
        RECORDS, json=records("2025550100", expiredDate=iso_ms(START_S + 20)), headers=headers
    )
    await client.post(RECORDS, json=records("2025550120"), headers=headers)
    by_expiry = ["2025550110", "2025550100", "2025550120"]
    assert numbers_of(await listing(client, headers, orderBy="expiredDate")) == by_expiry
    assert await listed_numbers(client, headers) == sorted(by_expiry)

    clock.advance(10)  # 2025550110 lapses at exactly its expiredDate
    body = await listing(client, headers, orderBy="expiredDate")
    assert numbers_of(body) == by_expiry[1:]
    assert body["totalRecords"] == 2
    assert await listed_numbers(client, headers) == ["2025550100", "2025550120"]
    clock.advance(9.5)
    assert await listed_numbers(client, headers) == ["2025550100", "2025550120"]
    clock.advance(0.5)
    assert await listed_numbers(client, headers) == ["2025550120"]
    expired = (await client.get("/_sandbox/state")).json()["dncGroups"]["1001"]["expired"]
    assert [(r["phoneNumber"], r["expiredDate"]) for r in expired] == [
        ("2025550110", iso_ms(START_S + 10)),
        ("2025550100", iso_ms(START_S + 20)),
    ]


def test_sweep_and_cached_order_agree_with_a_plain_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random adds, expiry changes, removals, expiries and clock steps on one group, checked
    after each step against the original O(n) sweep and a fresh sort (stale heap entries
    and heap rebuilds included: the slack is set to 0)."""
    monkeypatch.setattr("sandbox.state._HEAP_SLACK", 0)
    rng = random.Random(20260528)
    group = DncGroup("1001")
    active: dict[str, DncRecord] = {}  # the model: insertion order, as a dict keeps it
    expired: list[DncRecord] = []
    now_s = START_S

    def by_expiry(records: list[DncRecord]) -> None:
        records.sort(
            key=lambda r: (_LAST if r.expires_at_s is None else r.expires_at_s, r.phone_number)
        )

    for _ in range(4000):
        digits, roll = f"20255500{rng.randrange(30):02d}", rng.random()
        if roll < 0.4:  # add or change the expiry; ties between expiries are common
            expiry = None if rng.random() < 0.3 else now_s + rng.choice([0.5, 1, 2, 3])
            kept = active.get(digits)
            record = DncRecord(digits, expiry, now_s if kept is None else kept.created_at_s)
            group.active[digits] = active[digits] = record
        elif roll < 0.5:
            group.active.pop(digits, None)
            active.pop(digits, None)
        elif roll < 0.6 and digits in active:
            group.expire(digits, now_s)
            expired.append(DncRecord(digits, now_s, active.pop(digits).created_at_s))
        else:
            now_s += rng.choice([0, 0.5, 1, 2])
        version = group.version
        group.sweep(now_s)
        lapsed = [
            d for d, r in active.items() if r.expires_at_s is not None and r.expires_at_s <= now_s
        ]
        assert (group.version == version) == (not lapsed)  # nothing due: cached orders live on
        expired += [active.pop(d) for d in lapsed]
        assert list(group.active.items()) == list(active.items())
        assert group.expired == expired
        ordered = group.ordered("expiredDate", by_expiry)
        expected = list(active.values())
        by_expiry(expected)
        assert list(ordered) == expected
        assert group.ordered("expiredDate", by_expiry) is ordered  # unchanged: not sorted again


# -- the contacts listing --------------------------------------------------------------------


async def test_contacts_page_in_creation_order_with_a_total(client: httpx.AsyncClient) -> None:
    headers = await outbound_token(client)
    numbers = [f"+120255501{9 - i:02d}" for i in range(7)]  # created in descending phone order
    for batch in (numbers[:4], numbers[4:]):
        response = await client.post(
            CONTACTS, json={"contacts": [contact(n) for n in batch]}, headers=headers
        )
        assert response.status_code == 200, response.text
    update = contact(numbers[1], updateMode="upsert", dnc={"doNotCall": False})
    updated = await client.post(CONTACTS, json={"contacts": [update]}, headers=headers)
    assert updated.json()["contacts"][0]["status"] == "updated"  # and keeps its place
    seen: list[dict[str, Any]] = []
    for skip in range(0, 9, 3):
        page = await client.get(CONTACTS, params={"skip": skip, "top": 3}, headers=headers)
        assert page.json()["totalRecords"] == 7
        assert len(page.json()["contacts"]) <= 3
        seen += page.json()["contacts"]
    assert [c["recordId"] for c in seen] == [f"rec-{i}" for i in range(1, 8)]
    assert [c["phoneNumber"] for c in seen] == numbers
    assert seen[1]["dnc"]["doNotCall"] is False
    beyond = await client.get(CONTACTS, params={"skip": 7}, headers=headers)
    assert beyond.json() == {"totalRecords": 7, "contacts": []}
    one = await client.get(CONTACTS, params={"phoneNumber": numbers[3]}, headers=headers)
    assert [c["recordId"] for c in one.json()["contacts"]] == ["rec-4"]
    assert one.json()["totalRecords"] == 1
    none = await client.get(CONTACTS, params={"phoneNumber": "+15555550100"}, headers=headers)
    assert none.json() == {"totalRecords": 0, "contacts": []}


async def test_out_of_band_delete_clears_expired_records_too_and_counts_a_number_once(
    client: httpx.AsyncClient,
) -> None:
    numbers = ["2025550100", "2025550101", "2025550102"]
    await change(client, {"add": [{"phoneNumber": number} for number in numbers]})
    await change(client, {"expire": ["2025550100", "2025550102"]})
    await change(client, {"add": [{"phoneNumber": "2025550102"}]})  # expired and active
    counts = await change(client, {"delete": [*numbers, *numbers, "2025550199"]})
    assert (counts["deleted"], counts["unchanged"]) == (3, 4)
    group = (await client.get("/_sandbox/state")).json()["dncGroups"]["1001"]
    assert group == {"active": [], "expired": []}
