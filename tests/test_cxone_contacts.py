"""Adapter 2 (outbound contacts) against respx: token, body, and 409 resolution."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import respx

from dnc.cxone.contacts import OutboundContactsTarget
from dnc.cxone.errors import CxoneTransientError
from dnc.events import Action
from dnc.target import DncChange, OutcomeKind
from tests.cxone_fakes import CONTACTS_BASE, CONTACTS_SECRET, Sleeps, contacts_settings

URL = f"{CONTACTS_BASE}/api/v2/outbound/contacts"
A = DncChange("+12025550101", Action.OPT_OUT, 1_790_000_000_000)
B = DncChange("+12025550102", Action.OPT_IN, 1_790_000_001_000)
C = DncChange("+12025550103", Action.OPT_OUT, 1_790_000_002_000)
D = DncChange("+12025550104", Action.OPT_OUT, 1_790_000_003_000)


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{CONTACTS_BASE}/oauth/token", name="token").respond(
            json={"access_token": "opaque-token-1", "expires_in": 3600}
        )
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def target(http: httpx.AsyncClient, **settings: object) -> OutboundContactsTarget:
    return OutboundContactsTarget(http, contacts_settings(**settings), sleep=Sleeps())


def sent(request: httpx.Request) -> list[dict[str, object]]:
    contacts: list[dict[str, object]] = json.loads(request.content)["contacts"]
    return contacts


class FakeContacts:
    """A server that holds existing record ids and answers like the contract: 409 for the
    first existing contact sent without a matching upsert, naming its number or not."""

    def __init__(self, existing: dict[str, str], names_number: bool) -> None:
        self.existing = existing
        self.names_number = names_number
        self.requests: list[list[dict[str, object]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        contacts = sent(request)
        self.requests.append(contacts)
        for contact in contacts:
            phone = contact["phone"]["phoneNumber"]  # type: ignore[index]
            record = self.existing.get(phone)
            if record and contact.get("existingRecordId") != record:
                body = {"existingRecordId": record, "message": "Contact already exists"}
                if self.names_number:
                    body["phoneNumber"] = phone
                return httpx.Response(409, json=body)
        return httpx.Response(200, json={"contacts": []})


async def test_body_and_token(mock: respx.MockRouter, http: httpx.AsyncClient) -> None:
    route = mock.post(URL).respond(200, json={"contacts": []})
    outcomes = await target(http).apply([A, B])
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    assert sent(route.calls.last.request) == [
        {
            "phone": {"phoneNumber": A.e164},
            "dnc": {"doNotCall": True, "optOutDate": "2026-09-21T14:13:20.000Z"},
            "customListIds": ["list-1"],
        },
        {
            "phone": {"phoneNumber": B.e164},
            "dnc": {"doNotCall": False, "optOutDate": "2026-09-21T14:13:21.000Z"},
            "customListIds": ["list-1"],
        },
    ]
    assert json.loads(mock["token"].calls.last.request.content) == {
        "grant_type": "client_credentials",
        "client_id": "contacts-client",
        "client_secret": CONTACTS_SECRET,
    }
    assert route.calls.last.request.headers["authorization"] == "Bearer opaque-token-1"


@pytest.mark.parametrize("names_number", [True, False])
async def test_409_puts_the_record_id_on_its_own_contact_only(
    mock: respx.MockRouter, http: httpx.AsyncClient, names_number: bool
) -> None:
    server = FakeContacts({C.e164: "rec-77"}, names_number)
    mock.post(URL).mock(side_effect=server)
    outcomes = await target(http).apply([A, B, C, D])
    assert [o.kind for o in outcomes] == [
        OutcomeKind.APPLIED,
        OutcomeKind.APPLIED,
        OutcomeKind.CONFLICT_RESOLVED,
        OutcomeKind.APPLIED,
    ]
    for request in server.requests:
        for contact in request:
            phone = contact["phone"]["phoneNumber"]  # type: ignore[index]
            if "existingRecordId" in contact:
                assert (phone, contact["existingRecordId"], contact["updateMode"]) == (
                    C.e164,
                    "rec-77",
                    "upsert",
                )
    # every number's final request was accepted: A, B, D plain, C as an upsert
    # named: refused, then upsert. Unnamed: refused, [A,B] ok, [C,D] refused, [C] refused,
    # [C] upsert ok, [D] ok.
    assert len(server.requests) == (2 if names_number else 6)


async def test_several_conflicts_without_numbers_are_all_found(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    server = FakeContacts({A.e164: "rec-1", D.e164: "rec-4"}, names_number=False)
    mock.post(URL).mock(side_effect=server)
    outcomes = await target(http).apply([A, B, C, D])
    assert [o.kind for o in outcomes] == [
        OutcomeKind.CONFLICT_RESOLVED,
        OutcomeKind.APPLIED,
        OutcomeKind.APPLIED,
        OutcomeKind.CONFLICT_RESOLVED,
    ]


async def test_409_after_a_timeout_means_the_first_attempt_landed(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    route = mock.post(URL).mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.Response(409, json={"existingRecordId": "rec-1", "phoneNumber": A.e164}),
            httpx.Response(200, json={"contacts": []}),
        ]
    )
    [outcome] = await target(http).apply([A])
    assert outcome.kind is OutcomeKind.ALREADY_APPLIED
    assert sent(route.calls.last.request)[0]["existingRecordId"] == "rec-1"


@pytest.mark.parametrize(
    "responses",
    [
        lambda: [httpx.Response(409, json={"message": "exists"})],  # no record id
        lambda: [httpx.Response(409, json={"existingRecordId": "rec-1"})] * 2,  # id refused
    ],
)
async def test_unresolvable_409_is_rejected_for_that_contact(
    mock: respx.MockRouter,
    http: httpx.AsyncClient,
    responses: Callable[[], list[httpx.Response]],
) -> None:
    mock.post(URL).mock(side_effect=responses())
    [outcome] = await target(http).apply([A])
    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.reason.startswith("unresolvable 409")


async def test_resolution_is_bounded(mock: respx.MockRouter, http: httpx.AsyncClient) -> None:
    counter = iter(range(10_000))
    route = mock.post(URL).mock(
        side_effect=lambda request: httpx.Response(
            409, json={"existingRecordId": f"rec-{next(counter)}", "phoneNumber": A.e164}
        )
    )
    with pytest.raises(CxoneTransientError, match="did not converge"):
        await target(http).apply([A, B])
    assert route.call_count == 4 * 2 + 8


def test_base_url_is_required(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="DNC_CXONE_CONTACTS_BASE_URL"):
        target(http, contacts_base_url="")


async def test_connect_timeout_then_409_is_a_plain_conflict(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    # A connect timeout never sent the request: the 409 is an older contact, not our landing.
    mock.post(URL).mock(
        side_effect=[
            httpx.ConnectTimeout("slow"),
            httpx.Response(409, json={"existingRecordId": "rec-1", "phoneNumber": A.e164}),
            httpx.Response(200, json={"contacts": []}),
        ]
    )
    [outcome] = await target(http).apply([A])
    assert outcome.kind is OutcomeKind.CONFLICT_RESOLVED


async def test_expiring_opt_out_is_held_without_expiry_and_says_so(
    mock: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    mock.post(URL).respond(200, json={"contacts": []})
    expiring = DncChange(A.e164, Action.OPT_OUT, A.event_ms, A.event_ms + 86_400_000)
    [outcome] = await target(http).apply([expiring])
    assert outcome.kind is OutcomeKind.APPLIED
    assert (
        outcome.reason == "held without expiry: the outbound-contacts contract has no expiry date"
    )


async def test_a_number_twice_is_refused(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="twice"):
        await target(http).apply([A, A])
