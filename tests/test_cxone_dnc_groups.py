"""Adapter 1 (CXone DNC groups) against respx: discovery, token, records, and every failure."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from dnc.cxone.discovery import tenant_id_from_token
from dnc.cxone.dnc_groups import DncGroupsTarget, group_phone
from dnc.cxone.errors import (
    CxoneAuthError,
    CxoneConnectionError,
    CxonePermanentError,
    CxoneRateLimited,
    CxoneServerError,
    CxoneTimeout,
    CxoneTransientError,
)
from dnc.cxone.transport import after_unanswered_attempt
from dnc.events import Action
from dnc.target import DncChange, OutcomeKind
from tests.cxone_fakes import (
    ACCESS_KEY_SECRET,
    API,
    CLIENT_SECRET,
    ISSUER,
    RECORDS_URL,
    TOKEN_URL,
    Sleeps,
    groups_settings,
    make_jwt,
)

OUT = DncChange("+12025550123", Action.OPT_OUT, 1_790_000_000_000)
OUT_UK = DncChange("+442079460123", Action.OPT_OUT, 1_790_000_000_000, 1_830_000_000_000)
IN = DncChange("+12025550124", Action.OPT_IN, 1_790_000_000_000)
_draws = random.Random(3)
JITTER = [_draws.uniform(0, 0.5), _draws.uniform(0, 1.0)]


def results(*rows: tuple[str, bool, str | None]) -> dict[str, object]:
    return {
        "resultSet": {
            "errorCount": sum(1 for r in rows if not r[1]),
            "recordResults": [
                {"phoneNumber": p, "formattedPhone": p, "success": ok, "error": err}
                for p, ok, err in rows
            ],
        }
    }


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{ISSUER}/.well-known/openid-configuration").respond(
            json={"issuer": ISSUER, "token_endpoint": TOKEN_URL}
        )
        router.get(f"{ISSUER}/.well-known/cxone-configuration").respond(
            json={"api_endpoint": API, "tenantId": "tenant-1"}
        )
        router.post(TOKEN_URL, name="token").mock(
            side_effect=[
                httpx.Response(
                    200, json={"access_token": make_jwt(suffix=str(i)), "expires_in": 3600}
                )
                for i in range(1, 10)
            ]
        )
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def target(
    http: httpx.AsyncClient, sleeps: Sleeps | None = None, **settings: object
) -> DncGroupsTarget:
    return DncGroupsTarget(
        http, groups_settings(**settings), sleep=sleeps or Sleeps(), rng=random.Random(3)
    )


async def test_opt_out_and_opt_in_go_as_post_and_delete(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    post = mock.post(RECORDS_URL).respond(
        json=results(("2025550123", True, None), ("442079460123", True, None))
    )
    delete = mock.delete(RECORDS_URL).respond(json=results(("2025550124", True, None)))
    outcomes = await target(http).apply([OUT, IN, OUT_UK])
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED] * 3
    assert [o.e164 for o in outcomes] == [OUT.e164, IN.e164, OUT_UK.e164]
    assert json.loads(post.calls.last.request.content) == {
        "dncGroupRecords": [
            {"phoneNumber": "2025550123"},
            {"phoneNumber": "442079460123", "expiredDate": "2027-12-28T13:20:00.000Z"},
        ]
    }
    assert json.loads(delete.calls.last.request.content) == {
        "dncGroupRecords": [{"phoneNumber": "2025550124"}]
    }
    request = post.calls.last.request
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {make_jwt(suffix='1')}"


async def test_token_request_is_form_encoded_with_basic_auth(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(json=results(("2025550123", True, None)))
    await target(http).apply([OUT])
    request = mock["token"].calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["password"],
        "username": ["key-1"],
        "password": [ACCESS_KEY_SECRET],
    }
    basic = base64.b64decode(request.headers["authorization"].removeprefix("Basic "))
    assert basic.decode() == f"client-1:{CLIENT_SECRET}"


async def test_discovery_runs_once_and_uses_the_token_tenant(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(json=results(("2025550123", True, None)))
    adapter = target(http)
    await adapter.apply([OUT])
    await adapter.apply([OUT])
    config = mock.routes[1]
    assert config.call_count == 1
    assert config.calls.last.request.url.params["tenantId"] == "tenant-1"
    assert mock["token"].call_count == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("Phone number already exists in the DNC group.", OutcomeKind.ALREADY_APPLIED),
        ("Phone number does not exist in the DNC group.", OutcomeKind.REJECTED),  # opt-out
        ("Temporary failure processing record; try again.", OutcomeKind.RETRYABLE),
        ("Invalid phone number.", OutcomeKind.REJECTED),
        (None, OutcomeKind.REJECTED),
    ],
)
async def test_record_results_inside_a_200(
    mock: respx.MockRouter, http: httpx.AsyncClient, error: str | None, kind: OutcomeKind
) -> None:
    mock.post(RECORDS_URL).respond(json=results(("2025550123", False, error)))
    mock.get(RECORDS_URL).respond(json=listing(("2025550123", None)))
    [outcome] = await target(http).apply([OUT])
    assert outcome.kind is kind
    assert outcome.reason == (error or "failed without a reason")


def listing(*rows: tuple[str, str | None]) -> dict[str, object]:
    return {
        "totalRecords": len(rows),
        "dncGroupRecords": [{"phoneNumber": p, "expiredDate": e} for p, e in rows],
    }


EXISTS = "Phone number already exists in the DNC group."


@pytest.mark.parametrize(
    ("change", "existing_expiry", "kind"),
    [
        (OUT, None, OutcomeKind.ALREADY_APPLIED),
        (OUT, "2027-01-01T00:00:00.000Z", OutcomeKind.REJECTED),  # would lapse: not held
        (
            DncChange(OUT.e164, Action.OPT_OUT, OUT.event_ms, 1_830_000_000_000),
            "2030-01-01T00:00:00.000Z",
            OutcomeKind.ALREADY_APPLIED,
        ),
        (
            DncChange(OUT.e164, Action.OPT_OUT, OUT.event_ms, 1_830_000_000_000),
            "2027-01-01T00:00:00.000Z",
            OutcomeKind.REJECTED,
        ),
    ],
)
async def test_existing_opt_out_is_held_only_if_it_lasts_long_enough(
    mock: respx.MockRouter,
    http: httpx.AsyncClient,
    change: DncChange,
    existing_expiry: str | None,
    kind: OutcomeKind,
) -> None:
    mock.post(RECORDS_URL).respond(json=results(("2025550123", False, EXISTS)))
    lookup = mock.get(RECORDS_URL).respond(json=listing(("2025550123", existing_expiry)))
    [outcome] = await target(http).apply([change])
    assert outcome.kind is kind
    assert lookup.calls.last.request.url.params["phoneNumber"] == "2025550123"


async def test_existing_record_that_cannot_be_found_is_retryable(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(json=results(("2025550123", False, EXISTS)))
    mock.get(RECORDS_URL).respond(json=listing())
    [outcome] = await target(http).apply([OUT])
    assert outcome.kind is OutcomeKind.RETRYABLE


async def test_does_not_exist_is_only_already_applied_for_an_opt_in(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    gone = "Phone number does not exist in the DNC group."
    mock.post(RECORDS_URL).respond(json=results(("2025550123", False, gone)))
    mock.delete(RECORDS_URL).respond(json=results(("2025550124", False, gone)))
    outcomes = await target(http).apply([OUT, IN])
    assert [o.kind for o in outcomes] == [OutcomeKind.REJECTED, OutcomeKind.ALREADY_APPLIED]


async def test_ten_digit_foreign_number_is_ambiguous_in_auto_format(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    egypt = DncChange("+2025550123", Action.OPT_IN, OUT.event_ms)
    route = mock.delete(RECORDS_URL).respond(json=results(("2025550123", True, None)))
    [outcome] = await target(http).apply([egypt])
    assert outcome.kind is OutcomeKind.REJECTED and "e164-digits" in outcome.reason
    assert route.call_count == 0  # never sent: it would opt in +1 202-555-0123
    [outcome] = await target(http, phone_format="e164-digits").apply([egypt])
    assert outcome.kind is OutcomeKind.APPLIED


async def test_a_number_twice_in_a_batch_is_refused(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="twice"):
        await target(http).apply([OUT, DncChange(OUT.e164, Action.OPT_IN, OUT.event_ms + 1)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"e164": "12025550123"},
        {"e164": "+0123456789"},
        {"e164": "+1"},
        {"event_ms": -1},
        {"event_ms": 10**16},
        {"expires_at_ms": 10**16},
    ],
)
def test_change_values_are_checked(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {
        "e164": OUT.e164,
        "action": Action.OPT_OUT,
        "event_ms": OUT.event_ms,
    }
    values.update(kwargs)
    with pytest.raises(ValueError):
        DncChange(**values)  # type: ignore[arg-type]


async def test_raised_retry_after_is_what_the_server_said_sleeps_are_capped(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(429, headers={"Retry-After": "100"})
    sleeps = Sleeps()
    with pytest.raises(CxoneRateLimited) as info:
        await target(http, sleeps, retry_after_cap_s=1.0).apply([OUT])
    assert info.value.retry_after_s == 100.0 and sleeps.delays == [1.0, 1.0, 1.0]


def test_errors_survive_pickling() -> None:
    import pickle

    from dnc.cxone.errors import CxoneTransientError

    timeout = pickle.loads(pickle.dumps(CxoneTimeout("t", 2.0, maybe_sent=False)))
    assert (str(timeout), timeout.retry_after_s, timeout.maybe_sent) == ("t", 2.0, False)
    permanent = pickle.loads(pickle.dumps(CxonePermanentError("p", 404)))
    assert (str(permanent), permanent.status) == ("p", 404)
    transient = pickle.loads(pickle.dumps(CxoneTransientError("x", 5.0)))
    assert (str(transient), transient.retry_after_s) == ("x", 5.0)


async def test_missing_or_unmatched_results_are_retryable_not_applied(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(json=results(("2025550999", True, None)))
    outcomes = await target(http).apply([OUT, OUT_UK])
    assert [o.kind for o in outcomes] == [OutcomeKind.RETRYABLE, OutcomeKind.RETRYABLE]


async def test_results_are_matched_by_number_when_reordered(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(
        json=results(("442079460123", False, "Invalid phone number."), ("2025550123", True, None))
    )
    outcomes = await target(http).apply([OUT, OUT_UK])
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.REJECTED]


async def test_401_mints_once_and_retries_once(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    records = mock.post(RECORDS_URL).mock(
        side_effect=[
            httpx.Response(401),
            httpx.Response(200, json=results(("2025550123", True, None))),
        ]
    )
    [outcome] = await target(http).apply([OUT])
    assert outcome.kind is OutcomeKind.APPLIED
    assert mock["token"].call_count == 2 and records.call_count == 2
    assert records.calls.last.request.headers["authorization"].endswith(make_jwt(suffix="2"))


async def test_second_401_is_an_auth_error_without_secrets(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).respond(401)
    with pytest.raises(CxoneAuthError) as info:
        await target(http).apply([OUT])
    message = str(info.value)
    assert "fresh token" in message
    for secret in (CLIENT_SECRET, ACCESS_KEY_SECRET, make_jwt(suffix="1"), "2025550123"):
        assert secret not in message


@pytest.mark.parametrize("status", [400, 401])
async def test_token_endpoint_refusal_is_an_auth_error(
    http: httpx.AsyncClient, status: int
) -> None:
    with respx.mock() as router:
        router.get(f"{ISSUER}/.well-known/openid-configuration").respond(
            json={"token_endpoint": TOKEN_URL}
        )
        router.post(TOKEN_URL).respond(status, json={"error": "invalid_grant"})
        with pytest.raises(CxoneAuthError, match="invalid_grant") as info:
            await target(http).apply([OUT])
    assert ACCESS_KEY_SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize(
    ("header", "delay"),
    # Without Retry-After: full jitter below 0.5 s, drawn from the seeded generator.
    [("7", 7.0), ("Thu, 01 Jan 2099 00:00:00 GMT", 120.0), (None, JITTER[0])],
)
async def test_429_honours_retry_after_or_backs_off(
    mock: respx.MockRouter, http: httpx.AsyncClient, header: str | None, delay: float
) -> None:
    headers = {"Retry-After": header} if header else {}
    mock.post(RECORDS_URL).mock(
        side_effect=[
            httpx.Response(429, headers=headers),
            httpx.Response(200, json=results(("2025550123", True, None))),
        ]
    )
    sleeps = Sleeps()
    [outcome] = await target(http, sleeps).apply([OUT])
    assert outcome.kind is OutcomeKind.APPLIED
    assert sleeps.delays == [pytest.approx(delay)]


async def test_429_that_persists_is_raised_with_its_delay(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    route = mock.post(RECORDS_URL).respond(429, headers={"Retry-After": "3"})
    sleeps = Sleeps()
    with pytest.raises(CxoneRateLimited) as info:
        await target(http, sleeps).apply([OUT])
    assert info.value.retry_after_s == 3.0
    assert route.call_count == 4 and sleeps.delays == [3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("effect", "error"),
    [
        (httpx.Response(503), CxoneServerError),
        (httpx.ReadTimeout("slow"), CxoneTimeout),
        (httpx.ConnectError("refused"), CxoneConnectionError),
    ],
)
async def test_transient_failures_are_retried_then_raised(
    mock: respx.MockRouter,
    http: httpx.AsyncClient,
    effect: object,
    error: type[Exception],
) -> None:
    route = mock.post(RECORDS_URL).mock(side_effect=[effect] * 4)
    sleeps = Sleeps()
    with pytest.raises(error) as info:
        await target(http, sleeps).apply([OUT])
    assert route.call_count == 4 and len(sleeps.delays) == 3
    assert info.value.__cause__ is None  # the httpx request (with its token) is not chained
    assert info.value.__context__ is None


async def test_transient_then_success_is_applied(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(RECORDS_URL).mock(
        side_effect=[
            httpx.Response(502),
            httpx.ConnectTimeout("slow"),
            httpx.Response(200, json=results(("2025550123", True, None))),
        ]
    )
    sleeps = Sleeps()
    adapter = target(http, sleeps)
    [outcome] = await adapter.apply([OUT])
    assert outcome.kind is OutcomeKind.APPLIED
    assert sleeps.delays == JITTER  # uniform(0, 0.5) then uniform(0, 1.0)
    assert adapter.transport.retries == 2 and adapter.transport.calls == 3


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_other_4xx_is_permanent_and_not_retried(
    mock: respx.MockRouter, http: httpx.AsyncClient, status: int
) -> None:
    route = mock.post(RECORDS_URL).respond(status, json={"error": "bad 2025550123"})
    with pytest.raises(CxonePermanentError) as info:
        await target(http).apply([OUT])
    assert info.value.status == status and route.call_count == 1
    assert "2025550123" not in str(info.value) and "***0123" in str(info.value)


def test_phone_format() -> None:
    assert group_phone("+12025550123", "auto") == "2025550123"
    assert group_phone("+442079460123", "auto") == "442079460123"
    assert group_phone("+12025550123", "e164-digits") == "12025550123"


def test_tenant_claim() -> None:
    assert tenant_id_from_token(make_jwt("t-42")) == "t-42"
    for bad in ("opaque-token", "a.b.c", make_jwt("")):
        with pytest.raises(CxoneAuthError) as info:
            tenant_id_from_token(bad)
        assert bad not in str(info.value) or bad == "a.b.c"


def test_group_id_is_required(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="DNC_CXONE_DNC_GROUP_ID"):
        target(http, dnc_group_id="")


async def test_batch_size_is_enforced(mock: respx.MockRouter, http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="at most 1"):
        await target(http, batch_size=1).apply([OUT, IN])


@pytest.mark.parametrize(
    ("effects", "unanswered"),
    [
        ([httpx.ReadTimeout("slow")] + [httpx.Response(503)] * 3, True),  # then 5xx
        ([httpx.Response(503)] * 3 + [httpx.ReadTimeout("slow")], True),  # last: a timeout
        ([httpx.Response(503)] * 4, False),  # every attempt answered: nothing landed
        ([httpx.ConnectError("refused")] * 4, False),  # never left
    ],
)
async def test_the_error_says_when_an_attempt_may_have_landed_unanswered(
    mock: respx.MockRouter, http: httpx.AsyncClient, effects: list[object], unanswered: bool
) -> None:
    """An add whose answer was lost may have created the record, whatever the last attempt
    said: the ownership ledger needs to know (``dnc.ownership``)."""
    mock.post(RECORDS_URL).mock(side_effect=effects)
    with pytest.raises(CxoneTransientError) as info:
        await target(http, Sleeps()).apply([OUT])
    assert after_unanswered_attempt(info.value) is unanswered
