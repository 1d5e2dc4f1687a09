"""The ownership ledger end to end (``dnc.ownership``): events through the receiver into the real
Redis, sync flow runs, and the sandbox (a real socket) holding the DNC group, with records an
admin added out of band and replies lost on the way back."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from dnc.ownership import CREATED, CREATED_UNANSWERED, OwnedRecord, OwnershipLedger
from flows.sync import sync_dnc
from tests.flows.test_sync_flow import active, post

pytestmark = [
    pytest.mark.socket,
    # Prefect's own client leaves a socket to its temporary test server open; only here.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

NUMBER, DIGITS = "+12025550111", "2025550111"
GROUP = "1001"
LOST_FIRST = {"lost_reply_rate": 0.2, "seed": 14, "hang_s": 5}
"""The fault config whose first lost-reply draw loses an answer and the next few do not: the
sandbox draws once per successful records call (``sandbox.faults.lose_reply``) from
``random.Random(seed)``, so the first POST lands unanswered and its retry is answered."""
QUICK_TIMEOUTS = {
    # A lost reply costs a 1 s read timeout (room for a slow loopback answer on a loaded
    # machine), and the next run waits out the takeover grace an abandoned attempt leaves:
    # connect + pool + write + read + margin = 1.8 s (dnc.fence).
    "DNC_CXONE_CONNECT_TIMEOUT_S": "0.1",
    "DNC_CXONE_POOL_TIMEOUT_S": "0.1",
    "DNC_CXONE_WRITE_TIMEOUT_S": "0.1",
    "DNC_CXONE_READ_TIMEOUT_S": "1",
    "DNC_SYNC_FENCE_MARGIN_S": "0.5",
}


def ledger(world: dict[str, Any]) -> OwnershipLedger:
    return OwnershipLedger(world["redis"], world["keys"])


async def admin_adds(world: dict[str, Any], digits: str) -> None:
    """A CXone admin adds a record (no expiry) behind this service's back."""
    response = await world["control"].post(
        f"/_sandbox/dnc-groups/{GROUP}/records", json={"add": [{"phoneNumber": digits}]}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "added": 1,
        "updated": 0,
        "deleted": 0,
        "expired": 0,
        "unchanged": 0,
    }


async def journal(world: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """This service's writes the sandbox applied: (method, digits, action, changed)."""
    body = (await world["control"].get("/_sandbox/journal")).json()
    return [(e["method"], e["phoneNumber"], e["action"], e["changed"]) for e in body["entries"]]


async def expired(world: dict[str, Any]) -> set[str]:
    snapshot = (await world["control"].get("/_sandbox/state")).json()
    return {r["phoneNumber"] for r in snapshot["dncGroups"][GROUP]["expired"]}


async def records_requests(world: dict[str, Any]) -> dict[str, int]:
    """Requests to the DNC group records API by status (``{}``: none at all)."""
    snapshot = (await world["control"].get("/_sandbox/state")).json()
    counts: dict[str, int] = snapshot["requests"].get("dnc_records", {})
    return counts


async def applications(world: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await world["redis"].xrange(world["keys"].applications)
    return [json.loads(row[b"application"]) | {"outcome": row[b"outcome"]} for _, row in rows]


async def adds_in_flight(world: dict[str, Any]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = await world["redis"].hgetall(world["keys"].adds_in_flight)
    return found


async def test_our_opt_out_is_owned_and_our_opt_in_removes_it(world: dict[str, Any]) -> None:
    expires_ms = world["base_ms"] + 30 * 86_400_000
    response = await world["receiver"].post(
        "/v1/events",
        json={
            "phoneNumber": NUMBER,
            "eventName": "optOut",
            "timestamp": world["base_ms"] - 600_000,
            "expiresAt": expires_ms,
        },
    )
    assert response.status_code == 202, response.text
    before_ms = int(time.time() * 1000)
    first = await sync_dnc()
    after_ms = int(time.time() * 1000)
    assert (first["applied_opt_outs"], first["already_applied"], first["not_owned"]) == (1, 0, 0)
    [opt_out] = await applications(world)
    assert (opt_out["action"], opt_out["result"], opt_out["recordId"]) == (
        "optOut",
        "applied",
        DIGITS,
    )
    entry = (await ledger(world).entries([NUMBER]))[NUMBER]
    assert entry is not None
    assert before_ms <= entry.created_ms <= after_ms
    assert entry == OwnedRecord(DIGITS, entry.created_ms, opt_out["flowRunId"], expires_ms, CREATED)
    assert await adds_in_flight(world) == {}  # answered: the add marker is gone
    assert await active(world) == {DIGITS}

    await post(world, NUMBER, "optIn", 60_000)
    second = await sync_dnc()
    assert (second["applied_opt_ins"], second["not_owned"], second["claimed"]) == (1, 0, 1)
    assert await active(world) == set()
    assert await expired(world) == {DIGITS}  # expired, as the API's DELETE does
    assert await ledger(world).entries([NUMBER]) == {NUMBER: None}
    assert await ledger(world).count() == 0
    assert await adds_in_flight(world) == {}
    rows = await applications(world)
    assert [(r["action"], r["result"], r["httpStatus"], r["outcome"]) for r in rows] == [
        ("optOut", "applied", 200, b"acknowledged"),
        ("optIn", "applied", 200, b"acknowledged"),
    ]
    assert rows[1]["flowRunId"] != opt_out["flowRunId"]
    assert await journal(world) == [
        ("POST", DIGITS, "optOut", True),
        ("DELETE", DIGITS, "optIn", True),
    ]


async def test_an_opt_in_leaves_an_admins_record_alone(world: dict[str, Any]) -> None:
    await admin_adds(world, DIGITS)
    await post(world, NUMBER, "optIn", 0)
    counters = await sync_dnc()
    assert (counters["claimed"], counters["not_owned"], counters["applied_opt_ins"]) == (1, 1, 0)
    assert counters["api_calls"] == 0  # no request at all went to the records API
    assert await active(world) == {DIGITS}  # the admin's record stays
    assert await records_requests(world) == {}
    assert await journal(world) == []  # no DELETE (nor anything else) reached the sandbox
    assert (await world["queue"].backlog()) == (0, None)  # settled: it left the pending set
    assert await world["queue"].dead_letters() == {}
    [row] = await applications(world)
    assert (row["number"], row["action"], row["result"], row["httpStatus"], row["outcome"]) == (
        NUMBER,
        "optIn",
        "not_owned",
        None,
        b"acknowledged",
    )
    assert "DNC_SYNC_REMOVE_FOREIGN_RECORDS" in row["reason"]
    assert await ledger(world).count() == 0


async def test_remove_foreign_records_lets_an_opt_in_remove_an_admins_record(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_SYNC_REMOVE_FOREIGN_RECORDS", "true")
    await admin_adds(world, DIGITS)
    await post(world, NUMBER, "optIn", 0)
    counters = await sync_dnc()
    assert (counters["claimed"], counters["not_owned"], counters["applied_opt_ins"]) == (1, 0, 1)
    assert await active(world) == set()
    assert await expired(world) == {DIGITS}
    assert await journal(world) == [("DELETE", DIGITS, "optIn", True)]
    assert (await world["queue"].backlog()) == (0, None)
    [row] = await applications(world)
    assert (row["result"], row["httpStatus"]) == ("applied", 200)
    assert await ledger(world).count() == 0
    assert await adds_in_flight(world) == {}


async def test_our_opt_out_onto_an_admins_record_does_not_make_it_ours(
    world: dict[str, Any],
) -> None:
    await admin_adds(world, DIGITS)
    await post(world, NUMBER, "optOut", 0)
    first = await sync_dnc()
    assert (first["already_applied"], first["applied_opt_outs"], first["http_retries"]) == (1, 0, 0)
    assert await ledger(world).entries([NUMBER]) == {NUMBER: None}
    assert await adds_in_flight(world) == {}  # a final answer: no add of ours in flight
    assert await journal(world) == [("POST", DIGITS, "optOut", False)]  # "already exists"

    await post(world, NUMBER, "optIn", 60_000)
    second = await sync_dnc()
    assert (second["not_owned"], second["applied_opt_ins"], second["api_calls"]) == (1, 0, 0)
    assert await active(world) == {DIGITS}  # the admin's record stays
    assert await journal(world) == [("POST", DIGITS, "optOut", False)]  # no DELETE
    assert (await world["queue"].backlog()) == (0, None)
    assert [(r["action"], r["result"]) for r in await applications(world)] == [
        ("optOut", "already_applied"),
        ("optIn", "not_owned"),
    ]


def test_the_lost_reply_faults_lose_only_the_first_answer() -> None:
    rolls = random.Random(LOST_FIRST["seed"])  # the sandbox's generator, as it is seeded
    draws = [rolls.random() for _ in range(6)]
    assert draws[0] < LOST_FIRST["lost_reply_rate"]
    assert all(draw >= LOST_FIRST["lost_reply_rate"] for draw in draws[1:])


async def test_an_add_whose_reply_was_lost_is_ours_and_our_opt_in_removes_it(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in QUICK_TIMEOUTS.items():
        monkeypatch.setenv(name, value)
    await post(world, NUMBER, "optOut", 0)
    faults = await world["control"].post("/_sandbox/faults", json=LOST_FIRST)
    assert faults.status_code == 200, faults.text
    first = await sync_dnc()
    # the POST landed but its answer was lost (read timeout); the retry heard "already exists"
    assert (first["already_applied"], first["applied_opt_outs"], first["http_retries"]) == (1, 0, 1)
    assert await journal(world) == [
        ("POST", DIGITS, "optOut", True),
        ("POST", DIGITS, "optOut", False),
    ]
    [opt_out] = await applications(world)
    assert (opt_out["result"], opt_out["httpStatus"]) == ("already_applied", 200)
    entry = (await ledger(world).entries([NUMBER]))[NUMBER]
    assert entry is not None
    assert (entry.record_id, entry.flow_run_id, entry.expires_ms, entry.how) == (
        DIGITS,
        opt_out["flowRunId"],
        None,
        CREATED_UNANSWERED,
    )
    assert await adds_in_flight(world) == {}

    await world["control"].post("/_sandbox/faults", json={"lost_reply_rate": 0})
    await post(world, NUMBER, "optIn", 60_000)
    second = await sync_dnc()
    assert (second["applied_opt_ins"], second["not_owned"]) == (1, 0)
    assert await active(world) == set()
    assert (await journal(world))[2:] == [("DELETE", DIGITS, "optIn", True)]
    assert await ledger(world).count() == 0


async def test_an_add_lost_before_a_prefect_retry_of_the_batch_is_ours(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in QUICK_TIMEOUTS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DNC_CXONE_MAX_ATTEMPTS", "1")  # the transport gives up at once...
    monkeypatch.setenv("DNC_SYNC_PUSH_RETRIES", "1")  # ...and Prefect pushes the batch again
    await post(world, NUMBER, "optOut", 0)
    await world["control"].post("/_sandbox/faults", json=LOST_FIRST)
    counters = await sync_dnc()
    # the scenario itself (pytest.fail: not the expected AssertionError)
    happened = (counters["already_applied"], counters["http_retries"], counters["failed_batches"])
    if happened != (1, 0, 0):
        pytest.fail(f"not the scenario: (already_applied, http_retries, failed) = {happened}")
    writes = await journal(world)
    if writes != [("POST", DIGITS, "optOut", True), ("POST", DIGITS, "optOut", False)]:
        pytest.fail(f"not the scenario: journal {writes}")
    entry = (await ledger(world).entries([NUMBER]))[NUMBER]
    assert entry is not None, "our own lost add was taken for someone else's record"
    assert entry.how == CREATED_UNANSWERED


async def test_an_answered_failure_never_makes_an_admins_record_ours(
    world: dict[str, Any],
) -> None:
    """A per-record "try again" is an answer: nothing was added, so the "already exists"
    that follows is the admin's record, and the opt-in after it leaves it alone."""
    await admin_adds(world, DIGITS)
    await world["control"].post("/_sandbox/faults", json={"failing_numbers": [DIGITS]})
    await post(world, NUMBER, "optOut", 0)
    assert (await sync_dnc(max_batches=1))["retried"] == 1  # one push, answered "try again"
    await world["control"].post("/_sandbox/faults", json={"failing_numbers": []})
    assert (await sync_dnc())["already_applied"] == 1
    assert await adds_in_flight(world) == {} and await ledger(world).count() == 0
    await post(world, NUMBER, "optIn", 10)
    assert (await sync_dnc())["not_owned"] == 1
    assert DIGITS in await active(world)


async def test_a_record_of_ours_deleted_elsewhere_is_released_by_reconciliation(
    world: dict[str, Any],
) -> None:
    from flows.reconcile import reconcile_dnc

    await post(world, NUMBER, "optOut", 0)
    await sync_dnc()
    assert await ledger(world).count() == 1
    answer = await world["control"].post(
        f"/_sandbox/dnc-groups/{GROUP}/records", json={"delete": [DIGITS]}
    )
    assert answer.json()["deleted"] == 1
    assert (await reconcile_dnc())["released"] == 1  # found gone: no longer ours
    await admin_adds(world, DIGITS)  # a litigator scrub puts the number back
    await post(world, NUMBER, "optIn", 10)
    assert (await sync_dnc())["not_owned"] == 1
    assert DIGITS in await active(world)
