"""The sandbox's write journal (``sandbox.journal``): every DNC write applied, in order, with
the event ``X-Dnc-Sync-Trace`` names; served by ``GET /_sandbox/journal``, cleared on reset,
kept in the state file. In process through httpx.ASGITransport, on a fake clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dnc.cxone.contacts import OutboundContactsTarget
from dnc.cxone.factory import build_http_client
from dnc.events import Action
from dnc.settings import CxoneSettings
from dnc.target import DncChange
from sandbox import journal as journal_module
from sandbox import persist
from sandbox.app import SandboxApp
from sandbox.context import Sandbox
from sandbox.journal import Trace, WriteJournal
from sandbox.settings import SandboxSettings

BASE = "http://sandbox.test"
START_S = 1_780_000_000.0  # 2026-05-28T20:26:40Z
START_MS = 1_780_000_000_000
RECORDS = "/inContactAPI/services/v33.0/dnc-groups/1001/records"
CONTACTS = "/api/v2/outbound/contacts"
TRACE = "X-Dnc-Sync-Trace"
EXPIRY = "2027-01-01T00:00:00.000Z"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = START_S

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> SandboxApp:
    return SandboxApp(Sandbox.start(SandboxSettings(), clock=clock))


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


async def bearer(client: httpx.AsyncClient, app: SandboxApp) -> dict[str, str]:
    settings = app.sandbox.settings
    form = {
        "grant_type": "password",
        "username": settings.access_key_id,
        "password": settings.access_key_secret.get_secret_value(),
    }
    auth = (settings.client_id, settings.client_secret.get_secret_value())
    response = await client.post("/auth/token", data=form, auth=auth)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def outbound_bearer(client: httpx.AsyncClient, app: SandboxApp) -> dict[str, str]:
    settings = app.sandbox.settings
    body = {
        "grant_type": "client_credentials",
        "client_id": settings.outbound_client_id,
        "client_secret": settings.outbound_client_secret.get_secret_value(),
    }
    response = await client.post("/oauth/token", json=body)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def write(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    method: str,
    *records: dict[str, Any],
    trace: str | None = None,
) -> dict[str, Any]:
    extra = {} if trace is None else {TRACE: trace}
    response = await client.request(
        method, RECORDS, json={"dncGroupRecords": list(records)}, headers=headers | extra
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def journal(client: httpx.AsyncClient, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/_sandbox/journal{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def brief(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("seq", "method", "phoneNumber", "action", "expiredDate", "changed", "eventMs")
    return [tuple(entry[k] for k in keys) for entry in entries]


async def test_dnc_group_writes_are_journaled_in_order_with_their_events(
    client: httpx.AsyncClient, app: SandboxApp, clock: FakeClock
) -> None:
    auth = await bearer(client, app)
    await write(
        client,
        auth,
        "POST",
        {"phoneNumber": "12025550101"},
        {"phoneNumber": "+1 (202) 555-0102", "expiredDate": EXPIRY},
        {"phoneNumber": "12"},  # invalid: refused, not journaled
        trace=f"12025550101={START_MS - 5},+1 (202) 555-0102={START_MS - 4},12={START_MS}",
    )
    clock.now_s += 1.5
    await write(client, auth, "DELETE", {"phoneNumber": "12025550101"}, trace="12025550101=7")
    # already active / not there: the state was already the one asked, still journaled
    await write(client, auth, "POST", {"phoneNumber": "12025550102"}, trace="12025550102=8")
    await write(client, auth, "DELETE", {"phoneNumber": "12025550199"})  # no trace header
    failing = await client.post("/_sandbox/faults", json={"failing_numbers": ["2025550103"]})
    assert failing.status_code == 200  # refused for now: not written, not journaled
    await write(client, auth, "POST", {"phoneNumber": "12025550103"}, trace="12025550103=9")
    body = await journal(client)
    assert brief(body["entries"]) == [
        (1, "POST", "12025550101", "optOut", None, True, START_MS - 5),
        (2, "POST", "12025550102", "optOut", EXPIRY, True, START_MS - 4),
        (3, "DELETE", "12025550101", "optIn", None, True, 7),
        (4, "POST", "12025550102", "optOut", None, False, 8),
        (5, "DELETE", "12025550199", "optIn", None, False, None),
    ]
    assert [e["atMs"] for e in body["entries"]] == [START_MS, START_MS] + [START_MS + 1500] * 3
    assert {e["target"] for e in body["entries"]} == {"dnc-group:1001"}
    assert (body["firstSeq"], body["nextSeq"], body["dropped"], body["more"]) == (1, 6, 0, False)
    state = (await client.get("/_sandbox/state")).json()
    assert state["journal"] == {"firstSeq": 1, "nextSeq": 6, "dropped": 0}


async def test_contacts_are_journaled(client: httpx.AsyncClient, app: SandboxApp) -> None:
    auth = await outbound_bearer(client, app)

    def contact(number: str, dnc: bool, **extra: Any) -> dict[str, Any]:
        flag = {"doNotCall": dnc, "optOutDate": "2026-05-01T12:00:00Z"}
        return {"phone": {"phoneNumber": number}, "dnc": flag, **extra}

    first = [contact("+12025550101", True), contact("+12025550102", False)]
    trace = {TRACE: "+12025550102=2,+12025550101=1"}  # out of order: paired by number
    response = await client.post(CONTACTS, json={"contacts": first}, headers=auth | trace)
    assert response.status_code == 200
    record_id = response.json()["contacts"][0]["recordId"]
    conflict = await client.post(  # 409: nothing applied, nothing journaled
        CONTACTS, json={"contacts": [contact("+12025550101", False)]}, headers=auth
    )
    assert conflict.status_code == 409
    upsert = contact("+12025550101", False, existingRecordId=record_id, updateMode="upsert")
    headers = auth | {TRACE: "+12025550101=3"}
    assert (await client.post(CONTACTS, json={"contacts": [upsert]}, headers=headers)).is_success
    entries = (await journal(client))["entries"]
    assert [(e["target"], e["method"]) for e in entries] == [("contacts", "POST")] * 3
    assert brief(entries) == [
        (1, "POST", "+12025550101", "optOut", None, True, 1),
        (2, "POST", "+12025550102", "optIn", None, False, 2),
        (3, "POST", "+12025550101", "optIn", None, True, 3),
    ]


def test_the_trace_is_paired_by_position_then_by_number_and_never_fails() -> None:
    trace = Trace.parse(b"111=1, 222 = 2 ,333=x,=4,444,555=12345678901234567,111=9,666=6")
    assert trace.event_for(0, "111") == 1  # in place
    assert trace.event_for(3, "111") is None  # elsewhere, and named twice: ambiguous
    assert trace.event_for(1, "222") == 2  # blanks around items and "=" are dropped
    assert trace.event_for(5, "222") == 2  # not at its position: the only item naming it
    assert trace.event_for(2, "333") is None  # malformed time
    assert trace.event_for(4, "444") is None  # no "="
    assert trace.event_for(5, "555") is None  # over 15 digits: no epoch ms
    assert trace.event_for(7, "666") == 6
    assert trace.event_for(0, None) is None and trace.event_for(0, "999") is None
    assert Trace.parse(None).event_for(0, "111") is None
    assert Trace.parse(b"123=\xb2").event_for(0, "123") is None  # a digit, not ASCII


async def test_a_garbled_trace_changes_nothing_but_the_event(
    client: httpx.AsyncClient, app: SandboxApp
) -> None:
    auth = await bearer(client, app)
    answer = await write(client, auth, "POST", {"phoneNumber": "12025550101"}, trace=",,=,x=y")
    assert answer["resultSet"]["errorCount"] == 0
    [entry] = (await journal(client))["entries"]
    assert (entry["changed"], entry["eventMs"]) == (True, None)


async def test_the_journal_is_paged_bounded_and_cleared_on_reset(
    client: httpx.AsyncClient, app: SandboxApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await bearer(client, app)
    numbers = [{"phoneNumber": f"1202555{n:04d}"} for n in range(5)]
    await write(client, auth, "POST", *numbers)
    page = await journal(client, "?after=1&limit=2")
    assert [e["seq"] for e in page["entries"]] == [2, 3] and page["more"] is True
    last = await journal(client, "?after=3")
    assert [e["seq"] for e in last["entries"]] == [4, 5] and last["more"] is False
    assert (await journal(client, "?after=9"))["entries"] == []
    for bad in ("?after=-1", "?limit=0", "?limit=1001", "?after=x"):
        assert (await client.get(f"/_sandbox/journal{bad}")).status_code == 400
    monkeypatch.setattr(journal_module, "MAX_ENTRIES", 3)
    await write(client, auth, "DELETE", numbers[0])
    kept = await journal(client)
    assert [e["seq"] for e in kept["entries"]] == [4, 5, 6]
    assert (kept["firstSeq"], kept["nextSeq"], kept["dropped"]) == (4, 7, 3)
    assert (await client.post("/_sandbox/reset")).status_code == 200
    cleared = await journal(client)
    assert (cleared["entries"], cleared["firstSeq"], cleared["nextSeq"]) == ([], 1, 1)


def test_the_journal_is_kept_in_the_state_file(tmp_path: Path) -> None:
    sandbox = Sandbox.start(SandboxSettings(), clock=FakeClock())
    for seq in range(3):
        sandbox.state.journal.append(
            now_s=START_S + seq,
            target="dnc-group:1001",
            method="POST",
            phone_number="12025550101",
            action="optOut",
            expired_date=EXPIRY if seq else None,
            changed=seq == 0,
            event_ms=None if seq == 2 else START_MS + seq,
        )
    path = tmp_path / "state.json"
    persist.save(sandbox.state, path)
    back = persist.load(path, ["1001"])
    assert back.journal == sandbox.state.journal
    data = json.loads(path.read_text())
    del data["journal"]  # a file written before the journal existed
    assert persist.restore(data, ["1001"]).journal == WriteJournal()
    data = json.loads(path.read_text())
    data["journal"]["entries"][1]["seq"] = 7
    with pytest.raises(persist.StateFileError):
        persist.restore(data, ["1001"])
    data["journal"]["entries"][1] |= {"seq": 2, "action": "remove"}
    with pytest.raises(persist.StateFileError):
        persist.restore(data, ["1001"])


def test_saving_notices_new_journal_entries() -> None:
    sandbox = Sandbox.start(SandboxSettings(), clock=FakeClock())
    before = persist.changes(sandbox.state)
    sandbox.state.journal.append(
        now_s=START_S,
        target="contacts",
        method="POST",
        phone_number="+12025550101",
        action="optIn",
        expired_date=None,
        changed=False,
        event_ms=None,
    )
    assert persist.changes(sandbox.state) != before


@pytest.mark.socket
async def test_the_contacts_adapter_traces_its_writes(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as control:
        await control.post("/_sandbox/reset", json={"config": True})
        settings = CxoneSettings(
            adapter="outbound-contacts",
            contacts_base_url=sandbox_url,
            client_id="sandbox-outbound-client-id",
            client_secret="sandbox-outbound-client-secret-0123456789",
            send_trace=True,
            rate_limit_rps=0,
        )
        opt_out = DncChange("+12025550101", Action.OPT_OUT, START_MS)
        opt_in = DncChange("+12025550102", Action.OPT_IN, START_MS + 1)
        async with build_http_client(settings) as http:
            target = OutboundContactsTarget(http, settings)
            await target.apply([opt_out, opt_in])
            await target.apply([DncChange(opt_out.e164, Action.OPT_IN, START_MS + 2)])  # a 409
        entries = (await journal(control))["entries"]
    assert brief(entries) == [
        (1, "POST", "+12025550101", "optOut", None, True, START_MS),
        (2, "POST", "+12025550102", "optIn", None, False, START_MS + 1),
        (3, "POST", "+12025550101", "optIn", None, True, START_MS + 2),  # the upsert
    ]
    assert {e["target"] for e in entries} == {"contacts"}
