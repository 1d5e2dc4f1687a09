"""Every answer of the CXone sandbox, in process through httpx.ASGITransport, on a fake clock."""

from __future__ import annotations

import json
import math
import random
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox.dnc_groups import (
    ALREADY_EXISTS,
    DOES_NOT_EXIST,
    INVALID_EXPIRED_DATE,
    INVALID_PHONE,
    TEMPORARY_FAILURE,
)
from sandbox.state import iso_ms
from tests.sandbox_api.support import (
    BASE,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACTS,
    KEY_ID,
    KEY_SECRET,
    OUT_ID,
    OUT_SECRET,
    RECORDS,
    START_S,
    TENANT,
    FakeClock,
    claims,
    contact,
    cxone_token,
    outbound_token,
    password_form,
    records,
    result,
    set_faults,
    state,
)


async def test_openid_configuration(client: httpx.AsyncClient) -> None:
    body = (await client.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == BASE
    assert body["token_endpoint"] == f"{BASE}/auth/token"
    assert body["grant_types_supported"] == ["password", "client_credentials"]


async def test_cxone_configuration(client: httpx.AsyncClient) -> None:
    known = await client.get("/.well-known/cxone-configuration", params={"tenantId": TENANT})
    assert (known.status_code, known.json()) == (
        200,
        {"tenantId": TENANT, "api_endpoint": BASE, "area": "sandbox", "ui_endpoint": BASE},
    )
    unknown = await client.get("/.well-known/cxone-configuration", params={"tenantId": "other"})
    assert unknown.status_code == 404


# -- POST /auth/token ------------------------------------------------------------------------


async def test_auth_token_issues_jwts(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", data=password_form(), auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    access = claims(body["access_token"])
    expected = {"iss": BASE, "sub": f"user:{KEY_ID}", "tenantId": TENANT}
    assert {k: access[k] for k in expected} == expected
    assert (access["iat"], access["exp"]) == (int(START_S), int(START_S) + 3600)
    assert claims(body["id_token"])["aud"] == CLIENT_ID


async def test_auth_token_form_escapes_are_decoded(client: httpx.AsyncClient) -> None:
    body = f"grant_type=password&username={KEY_ID}&password={quote(KEY_SECRET, safe='')}"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    response = await client.post(
        "/auth/token", content=body, headers=headers, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert response.status_code == 200
    raw = f"grant_type=password&username={KEY_ID}&password={KEY_SECRET}"  # '&', '+' unescaped
    refused = await client.post(
        "/auth/token", content=raw, headers=headers, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})


async def test_auth_token_accepts_form_encoded_basic_values(client: httpx.AsyncClient) -> None:
    auth = (quote(CLIENT_ID, safe=""), quote(CLIENT_SECRET, safe=""))  # RFC 6749 §2.3.1
    response = await client.post("/auth/token", data=password_form(), auth=auth)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("auth", "form", "status", "code"),
    [
        (None, password_form(), 401, "invalid_client"),
        ((CLIENT_ID, "wrong-secret-0123456789"), password_form(), 401, "invalid_client"),
        (("other-client", CLIENT_SECRET), password_form(), 401, "invalid_client"),
        ((CLIENT_ID, CLIENT_SECRET), password_form(password="wrong"), 400, "invalid_grant"),
        ((CLIENT_ID, CLIENT_SECRET), password_form(username="OTHER"), 400, "invalid_grant"),
        (
            (CLIENT_ID, CLIENT_SECRET),
            {**password_form(), "grant_type": "client_credentials"},
            400,
            "unsupported_grant_type",
        ),
        ((CLIENT_ID, CLIENT_SECRET), {"username": KEY_ID}, 400, "invalid_request"),
    ],
)
async def test_auth_token_refusals(
    client: httpx.AsyncClient,
    auth: tuple[str, str] | None,
    form: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.post("/auth/token", data=form, auth=auth)
    assert (response.status_code, response.json()) == (status, {"error": code})


async def test_auth_token_needs_a_form_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", json=password_form(), auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})
    twice = "grant_type=password&grant_type=password&username=a&password=b"
    repeated = await client.post(
        "/auth/token",
        content=twice,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert (repeated.status_code, repeated.json()) == (400, {"error": "invalid_request"})


# -- POST /oauth/token -----------------------------------------------------------------------


async def test_oauth_token_is_opaque(client: httpx.AsyncClient) -> None:
    body = {"grant_type": "client_credentials", "client_id": OUT_ID, "client_secret": OUT_SECRET}
    response = await client.post("/oauth/token", json=body)
    payload = response.json()
    assert (response.status_code, payload["token_type"], payload["expires_in"]) == (
        200,
        "Bearer",
        3600,
    )
    assert "." not in payload["access_token"] and len(payload["access_token"]) >= 32
    assert set(payload) == {"access_token", "token_type", "expires_in"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"grant_type": "client_credentials", "client_id": OUT_ID}, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": OUT_ID, "client_secret": "x" * 20},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "password", "client_id": OUT_ID, "client_secret": OUT_SECRET},
            400,
            "unsupported_grant_type",
        ),
        ({"client_id": OUT_ID, "client_secret": OUT_SECRET}, 400, "invalid_request"),
        (["not", "an", "object"], 400, "invalid_request"),
    ],
)
async def test_oauth_token_refusals(
    client: httpx.AsyncClient, body: object, status: int, code: str
) -> None:
    response = await client.post("/oauth/token", json=body)
    assert (response.status_code, response.json()) == (status, {"error": code})


# -- bearer tokens ---------------------------------------------------------------------------


async def test_api_calls_need_their_adapters_token(client: httpx.AsyncClient) -> None:
    cxone, outbound = await cxone_token(client), await outbound_token(client)
    cases = [
        await client.get(RECORDS),
        await client.get(RECORDS, headers={"Authorization": "Bearer not-a-token"}),
        await client.get(RECORDS, headers=outbound),
        await client.get(CONTACTS, headers=cxone),
        await client.get(CONTACTS, headers={"Authorization": cxone["Authorization"][7:]}),
    ]
    assert [(r.status_code, r.json()) for r in cases] == [(401, {"error": "invalid_token"})] * 5
    assert (await client.get(RECORDS, headers=cxone)).status_code == 200
    assert (await client.get(CONTACTS, headers=outbound)).status_code == 200


async def test_expired_token_is_401_and_one_remint_recovers(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await set_faults(client, token_ttl_s=1)
    headers = await cxone_token(client)
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    clock.advance(0.999)
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    clock.advance(0.001)
    expired = await client.get(RECORDS, headers=headers)
    assert (expired.status_code, expired.json()) == (401, {"error": "invalid_token"})
    fresh = await cxone_token(client)
    assert (await client.get(RECORDS, headers=fresh)).status_code == 200
    tokens = (await state(client))["tokens"]
    assert tokens == {"requests": {"auth_token": 2}, "issued": {"auth_token": 2}, "live": 1}


# -- adapter 1: DNC group records ------------------------------------------------------------


async def test_add_then_list(client: httpx.AsyncClient, clock: FakeClock) -> None:
    headers = await cxone_token(client)
    sent = records("2025550123", "+1 (202) 555-0124", expiredDate="2027-01-01T00:00:00.000Z")
    response = await client.post(RECORDS, json=sent, headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "resultSet": {
            "errorCount": 0,
            "recordResults": [
                result("2025550123", "2025550123"),
                result("+1 (202) 555-0124", "12025550124"),
            ],
        }
    }
    listed = (await client.get(RECORDS, headers=headers)).json()
    created = iso_ms(START_S)
    assert listed == {
        "totalRecords": 2,
        "dncGroupRecords": [
            {"phoneNumber": n, "expiredDate": "2027-01-01T00:00:00.000Z", "createdAt": created}
            for n in ("12025550124", "2025550123")  # default order: phoneNumber asc
        ],
    }


async def test_rejected_numbers_are_refused_for_good(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    await set_faults(client, rejected_numbers=["+12025550188"])
    sent = [{"phoneNumber": "2025550188"}, {"phoneNumber": "2025550189"}]
    answer = (await client.post(RECORDS, json={"dncGroupRecords": sent}, headers=headers)).json()
    assert answer.keys() and "Invalid phone number." in str(answer)
    state = (await client.get("/_sandbox/state")).json()
    assert {r["phoneNumber"] for r in state["dncGroups"]["1001"]["active"]} == {"2025550189"}


async def test_per_record_failures(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    await set_faults(client, failing_numbers=["+12025550199"])
    await client.post(RECORDS, json=records("2025550123"), headers=headers)
    sent = [
        {"phoneNumber": "2025550123"},
        {"phoneNumber": "123456"},
        {"phoneNumber": "1234567890123456"},
        {"phoneNumber": "20255501x3"},
        {"phoneNumber": 2025550123},
        {"phoneNumber": "12025550199"},
        {"phoneNumber": "2025550155", "expiredDate": "2020-01-01T00:00:00Z"},
        {"phoneNumber": "2025550156", "expiredDate": "soon"},
        {"phoneNumber": "2025550157"},
    ]
    response = await client.post(RECORDS, json={"dncGroupRecords": sent}, headers=headers)
    assert response.status_code == 200
    assert response.json()["resultSet"] == {
        "errorCount": 8,
        "recordResults": [
            result("2025550123", "2025550123", ALREADY_EXISTS),
            result("123456", "123456", INVALID_PHONE),
            result("1234567890123456", "1234567890123456", INVALID_PHONE),
            result("20255501x3", "202555013", INVALID_PHONE),
            result(2025550123, "", INVALID_PHONE),
            result("12025550199", "12025550199", TEMPORARY_FAILURE),
            result("2025550155", "2025550155", INVALID_EXPIRED_DATE),
            result("2025550156", "2025550156", INVALID_EXPIRED_DATE),
            result("2025550157", "2025550157"),
        ],
    }
    groups = (await state(client))["dncGroups"]
    assert [r["phoneNumber"] for r in groups["1001"]["active"]] == ["2025550123", "2025550157"]


async def test_expire(client: httpx.AsyncClient, clock: FakeClock) -> None:
    headers = await cxone_token(client)
    await client.post(RECORDS, json=records("2025550123"), headers=headers)
    clock.advance(60)
    response = await client.request(
        "DELETE", RECORDS, json=records("2025550123", "2025550124", "12"), headers=headers
    )
    assert response.json()["resultSet"] == {
        "errorCount": 2,
        "recordResults": [
            result("2025550123", "2025550123"),
            result("2025550124", "2025550124", DOES_NOT_EXIST),
            result("12", "12", INVALID_PHONE),
        ],
    }
    assert (await client.get(RECORDS, headers=headers)).json()["totalRecords"] == 0
    group = (await state(client))["dncGroups"]["1001"]
    assert group["expired"] == [
        {
            "phoneNumber": "2025550123",
            "expiredDate": iso_ms(START_S + 60),
            "createdAt": iso_ms(START_S),
        }
    ]
    again = await client.post(RECORDS, json=records("2025550123"), headers=headers)
    assert again.json()["resultSet"]["errorCount"] == 0


async def test_expired_date_lapses(client: httpx.AsyncClient, clock: FakeClock) -> None:
    headers = await cxone_token(client)
    soon = iso_ms(START_S + 10)
    await client.post(RECORDS, json=records("2025550123", expiredDate=soon), headers=headers)
    assert (await client.get(RECORDS, headers=headers)).json()["totalRecords"] == 1
    clock.advance(10)
    assert (await client.get(RECORDS, headers=headers)).json()["totalRecords"] == 0
    lapsed = await client.request("DELETE", RECORDS, json=records("2025550123"), headers=headers)
    assert lapsed.json()["resultSet"]["recordResults"][0]["error"] == DOES_NOT_EXIST


async def test_search_and_paging(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    numbers = [f"202555010{i}" for i in range(5)]
    await client.post(RECORDS, json=records(*numbers), headers=headers)
    page = await client.get(RECORDS, params={"skip": 2, "top": 2}, headers=headers)
    body = page.json()
    assert body["totalRecords"] == 5
    assert [r["phoneNumber"] for r in body["dncGroupRecords"]] == numbers[2:4]
    found = await client.get(RECORDS, params={"phoneNumber": numbers[3]}, headers=headers)
    assert [r["phoneNumber"] for r in found.json()["dncGroupRecords"]] == [numbers[3]]
    assert found.json()["totalRecords"] == 1
    missing = await client.get(RECORDS, params={"phoneNumber": "3035550100"}, headers=headers)
    assert missing.json() == {"totalRecords": 0, "dncGroupRecords": []}
    too_big = await client.get(RECORDS, params={"top": 1001}, headers=headers)
    assert (too_big.status_code, too_big.json()["error"]) == (400, "invalid_request")


async def test_groups_and_versions(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    other = "/incontactapi/services/v31.0/dnc-groups/1002/records"
    assert (await client.get(other, headers=headers)).status_code == 200
    unknown = await client.get(RECORDS.replace("1001", "9999"), headers=headers)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    no_version = await client.get(RECORDS.replace("v33.0", "v33"), headers=headers)
    assert no_version.status_code == 404


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"{}",
        b'{"dncGroupRecords": "2025550123"}',
        b'{"dncGroupRecords": ["2025550123"]}',
        json.dumps(records(*[f"20255{i:05d}" for i in range(1001)])).encode(),
        b"[" * 10_000,
    ],
)
async def test_bad_record_bodies_are_400(client: httpx.AsyncClient, content: bytes) -> None:
    headers = await cxone_token(client)
    response = await client.post(RECORDS, content=content, headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert (await state(client))["dncGroups"]["1001"]["active"] == []


# -- adapter 2: outbound contacts ------------------------------------------------------------


async def test_contacts_create_and_find(client: httpx.AsyncClient) -> None:
    headers = await outbound_token(client)
    response = await client.post(
        CONTACTS,
        json={"contacts": [contact("+12025550123"), contact("+442079460123")]},
        headers=headers,
    )
    assert (response.status_code, response.json()) == (
        200,
        {
            "contacts": [
                {"recordId": "rec-1", "phoneNumber": "+12025550123", "status": "created"},
                {"recordId": "rec-2", "phoneNumber": "+442079460123", "status": "created"},
            ]
        },
    )
    found = await client.get(CONTACTS, params={"phoneNumber": "+442079460123"}, headers=headers)
    assert found.json() == {
        "totalRecords": 1,
        "contacts": [
            {
                "recordId": "rec-2",
                "phoneNumber": "+442079460123",
                "dnc": {"doNotCall": True, "optOutDate": "2026-05-01T12:00:00Z"},
                "customListIds": ["list-1"],
                "createdAt": iso_ms(START_S),
                "updatedAt": iso_ms(START_S),
            }
        ],
    }
    page = await client.get(CONTACTS, params={"skip": 1, "top": 1}, headers=headers)
    assert [c["recordId"] for c in page.json()["contacts"]] == ["rec-2"]


@pytest.mark.parametrize("names_number", [True, False])
async def test_contacts_conflict_refuses_the_whole_batch(
    client: httpx.AsyncClient, names_number: bool
) -> None:
    headers = await outbound_token(client)
    await set_faults(client, conflict_names_number=names_number)
    await client.post(CONTACTS, json={"contacts": [contact("+12025550123")]}, headers=headers)
    batch = [contact("+12025550100"), contact("+12025550123")]
    response = await client.post(CONTACTS, json={"contacts": batch}, headers=headers)
    expected: dict[str, Any] = {"existingRecordId": "rec-1", "message": "Contact already exists"}
    if names_number:
        expected["phoneNumber"] = "+12025550123"
    assert (response.status_code, response.json()) == (409, expected)
    listed = (await client.get(CONTACTS, headers=headers)).json()
    assert [c["phoneNumber"] for c in listed["contacts"]] == ["+12025550123"]


async def test_contacts_upsert_and_record_id_checks(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = await outbound_token(client)
    await client.post(CONTACTS, json={"contacts": [contact("+12025550123")]}, headers=headers)
    clock.advance(5)
    opt_in = contact(
        "+12025550123",
        dnc={"doNotCall": False},
        customListIds=[7],
        existingRecordId="rec-1",
        updateMode="upsert",
    )
    response = await client.post(CONTACTS, json={"contacts": [opt_in]}, headers=headers)
    assert response.json()["contacts"] == [
        {"recordId": "rec-1", "phoneNumber": "+12025550123", "status": "updated"}
    ]
    stored = (await state(client))["contacts"][0]
    assert (stored["dnc"], stored["customListIds"], stored["updatedAt"]) == (
        {"doNotCall": False, "optOutDate": None},
        [7],
        iso_ms(START_S + 5),
    )
    wrong = {**opt_in, "existingRecordId": "rec-9"}
    mismatch = await client.post(CONTACTS, json={"contacts": [wrong]}, headers=headers)
    assert (mismatch.status_code, mismatch.json()) == (
        409,
        {
            "existingRecordId": "rec-1",
            "message": "existingRecordId does not match",
            "phoneNumber": "+12025550123",
        },
    )
    nobody = contact("+12025550177", existingRecordId="rec-1", updateMode="upsert")
    missing = await client.post(CONTACTS, json={"contacts": [nobody]}, headers=headers)
    assert (missing.status_code, missing.json()["existingRecordId"]) == (409, None)
    new = contact("+12025550188", updateMode="upsert")
    created = await client.post(CONTACTS, json={"contacts": [new]}, headers=headers)
    assert created.json()["contacts"][0] == {
        "recordId": "rec-2",
        "phoneNumber": "+12025550188",
        "status": "created",
    }


@pytest.mark.parametrize(
    "batch",
    [
        [contact(f"+1202555{i:04d}") for i in range(1001)],
        [],
        [contact("+12025550123"), contact("+12025550123")],
        [contact("2025550123")],
        [contact("+12025550123", dnc={"doNotCall": True})],
        [
            contact(
                "+12025550123", dnc={"doNotCall": True, "optOutDate": "2026-05-01T12:00:00+02:00"}
            )
        ],
        [contact("+12025550123", updateMode="merge")],
        [contact("+12025550123", extra="field")],
    ],
)
async def test_contacts_bad_batches_are_400(
    client: httpx.AsyncClient, batch: list[dict[str, Any]]
) -> None:
    headers = await outbound_token(client)
    response = await client.post(CONTACTS, json={"contacts": batch}, headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert (await state(client))["contacts"] == []


async def test_contacts_failing_number_is_503(client: httpx.AsyncClient) -> None:
    headers = await outbound_token(client)
    await set_faults(client, failing_numbers=["12025550199"])
    batch = [contact("+12025550100"), contact("+12025550199")]
    response = await client.post(CONTACTS, json={"contacts": batch}, headers=headers)
    assert (response.status_code, response.json()["error"]) == (503, "temporary_failure")
    assert (await state(client))["contacts"] == []


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["seconds", "http-date", "none"])
async def test_rate_limit_429(client: httpx.AsyncClient, clock: FakeClock, mode: str) -> None:
    headers = await cxone_token(client)
    await set_faults(client, rate_limit_rps=2, retry_after_mode=mode)
    statuses = [(await client.get(RECORDS, headers=headers)).status_code for _ in range(2)]
    limited = await client.get(RECORDS, headers=headers)
    assert (statuses, limited.status_code, limited.json()["error"]) == (
        [200, 200],
        429,
        "rate_limited",
    )
    expected = {
        "seconds": "1",
        "http-date": formatdate(math.ceil(START_S) + 1, usegmt=True),
        "none": None,
    }[mode]
    assert limited.headers.get("retry-after") == expected
    clock.advance(0.5)  # 2 per second: one token back
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    assert (await client.get(RECORDS, headers=headers)).status_code == 429


async def test_injected_errors_repeat_with_a_seed(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    rng = random.Random(0)
    expected = [rng.choice((500, 502, 503)) if rng.random() < 0.5 else 200 for _ in range(12)]
    runs = []
    for _ in range(2):
        await set_faults(client, error_rate=0.5, seed=0)
        runs.append([(await client.get(RECORDS, headers=headers)).status_code for _ in range(12)])
    assert runs == [expected, expected]
    assert expected == [200, 200, 502, 200, 502, 200, 500, 200, 500, 200, 503, 200]


async def test_latency_and_timeout(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    await set_faults(client, latency_ms=50)
    started = time.perf_counter()
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    assert time.perf_counter() - started >= 0.05
    await set_faults(client, latency_ms=0, timeout_rate=1, hang_s=0.2)
    started = time.perf_counter()
    response = await client.get(RECORDS, headers=headers)
    assert (response.status_code, response.json()["error"]) == (504, "gateway_timeout")
    assert time.perf_counter() - started >= 0.2


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 2},
        {"no_such_knob": 1},
        {"error_rate": 0.6, "timeout_rate": 0.6},
        {"retry_after_mode": "minutes"},
        {"failing_numbers": ["12"]},
    ],
)
async def test_bad_fault_changes_are_refused(
    client: httpx.AsyncClient, changes: dict[str, object]
) -> None:
    before = (await state(client))["config"]
    response = await client.post("/_sandbox/faults", json=changes)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_config")
    assert (await state(client))["config"] == before


# -- control API and plumbing ----------------------------------------------------------------


async def test_state_counts_and_reset(client: httpx.AsyncClient) -> None:
    headers = await cxone_token(client)
    await client.post(RECORDS, json=records("2025550123"), headers=headers)
    await client.get(RECORDS)
    await client.get("/nowhere")
    await set_faults(client, latency_ms=1, failing_numbers=["2025550100"])
    snapshot = await state(client)
    assert snapshot["requests"] == {
        "auth_token": {"200": 1},
        "dnc_records": {"200": 1, "401": 1},
        "unknown": {"404": 1},
    }
    assert snapshot["tenantId"] == TENANT and snapshot["apiVersion"] == "v33.0"
    assert (await client.post("/_sandbox/reset")).status_code == 200
    cleared = await state(client)
    assert (cleared["requests"], cleared["tokens"]["issued"], cleared["dncGroups"]["1001"]) == (
        {},
        {},
        {"active": [], "expired": []},
    )
    assert (cleared["config"]["latency_ms"], cleared["config"]["failing_numbers"]) == (
        1,
        ["2025550100"],
    )
    assert (await client.get(RECORDS, headers=headers)).status_code == 401  # tokens forgotten
    await client.post("/_sandbox/reset", json={"config": True})
    restored = (await state(client))["config"]
    assert (restored["latency_ms"], restored["failing_numbers"]) == (0, [])


async def test_health_404_405(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    missing = await client.get("/v1/nothing")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    wrong = await client.put(RECORDS, json={})
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, POST, DELETE")
    assert wrong.json()["error"] == "method_not_allowed"
    assert (await client.get("/auth/token")).status_code == 405


@pytest.mark.parametrize(
    "path",
    ["/auth/token", "/oauth/token", RECORDS, CONTACTS, "/_sandbox/reset", "/_sandbox/faults"],
)
@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"null", b'{"a":' * 5000, b"a=%ZZ&&=="])
async def test_junk_never_500(client: httpx.AsyncClient, path: str, content: bytes) -> None:
    headers = await cxone_token(client) if path == RECORDS else await outbound_token(client)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = await client.post(path, content=content, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)


# -- bugs found by a break-it pass ------------------------------------------------------------


async def test_far_future_expiry_is_refused_and_listing_still_works(
    client: httpx.AsyncClient,
) -> None:
    headers = await cxone_token(client)
    response = await client.post(
        RECORDS,
        headers=headers,
        json=records("2025550123", expiredDate="9999-12-31T23:59:59-23:59"),
    )
    assert response.json()["resultSet"]["recordResults"] == [
        result("2025550123", "2025550123", "Invalid expiration date.")
    ]
    assert (await client.get(RECORDS, headers=headers)).status_code == 200
    assert (await client.get("/_sandbox/state")).status_code == 200


async def test_lone_surrogate_credentials_are_refused_not_a_crash(
    client: httpx.AsyncClient,
) -> None:
    content = '{"grant_type": "client_credentials", "client_id": "\\ud800", "client_secret": "x"}'
    response = await client.post(
        "/oauth/token", content=content, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


@pytest.mark.parametrize("rate", [1e-310, 0.001])
async def test_tiny_rate_limits_are_refused(client: httpx.AsyncClient, rate: float) -> None:
    response = await client.post("/_sandbox/faults", json={"rate_limit_rps": rate})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("failing", "sent"),
    [("+12025550123", "2025550123"), ("2025550123", "12025550123"), ("2025550123", "2025550123")],
)
async def test_failing_numbers_match_the_plus_one_national_form(
    client: httpx.AsyncClient, failing: str, sent: str
) -> None:
    await set_faults(client, failing_numbers=[failing])
    headers = await cxone_token(client)
    response = await client.post(RECORDS, headers=headers, json=records(sent))
    [row] = response.json()["resultSet"]["recordResults"]
    assert row["error"] == "Temporary failure processing record; try again."


async def test_failing_ten_digits_also_fail_the_e164_contact(client: httpx.AsyncClient) -> None:
    await set_faults(client, failing_numbers=["2025550123"])
    headers = await outbound_token(client)
    response = await client.post(
        CONTACTS, headers=headers, json={"contacts": [contact("+12025550123")]}
    )
    assert response.status_code == 503
