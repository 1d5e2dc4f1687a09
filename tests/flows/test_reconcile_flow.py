"""The reconciliation flow end to end: the sync writes, the group drifts out of band (an admin
deletes, adds, changes an expiry), ``reconcile-dnc`` finds each class, ``repair`` requeues the
repairable ones, the next sync fixes them and the run after reports none of them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from dnc.ownership import OwnershipLedger
from dnc.reconcile.lease import LeaseBusy
from dnc.reconcile.report import load_last
from flows.reconcile import ReconcileIncomplete, reconcile_dnc
from flows.sync import sync_dnc
from tests.flows.test_sync_flow import EVENTS, EXPECTED, active, post

pytestmark = [
    pytest.mark.socket,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

NO_DRIFT = {"opt_out_missing": 0, "opt_in_record": 0, "expiry_differs": 0, "not_owned": 0}


async def out_of_band(world: dict[str, Any], **change: object) -> None:
    response = await world["control"].post("/_sandbox/dnc-groups/1001/records", json=change)
    assert response.status_code == 200, response.text


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()


async def settle_without_push(world: dict[str, Any], number: str) -> None:
    """Acknowledge the pending claim of ``number`` as if CXone had answered it applied."""
    queue = world["queue"]
    assert await queue.acquire_lease("test-holder", 30_000)
    claims = [c for c in await queue.claim("test-holder", 100) if c.e164 == number]
    assert await queue.acknowledge(claims) == [True]
    await queue.release_lease("test-holder")


async def test_a_synced_group_has_no_drift(world: dict[str, Any]) -> None:
    for number, action, offset in EVENTS:
        await post(world, number, action, offset)
    await sync_dnc()
    report = await reconcile_dnc()
    assert report["complete"] is True
    assert report["drift"] == NO_DRIFT
    assert report["records"] == len(EXPECTED) and report["numbers"] == 16
    assert report["notes"]["in_sync"] == 16
    assert report["api_calls"] == 1  # one page: ceil(14 / 1000)
    kept = await load_last(world["redis"], world["keys"])
    assert kept is not None and kept.drift == NO_DRIFT


async def test_each_drift_class_is_found_repaired_and_gone(world: dict[str, Any]) -> None:
    for number, action, offset in EVENTS:
        await post(world, number, action, offset)
    await sync_dnc()
    # an opt-in whose record this service created stays in CXone (a DELETE that "worked")
    await post(world, "+12025550200", "optIn", 900)
    await settle_without_push(world, "+12025550200")
    await out_of_band(
        world,
        delete=["2025550201", "2025550202"],  # two of our opt-outs vanish
        add=[
            {"phoneNumber": "2025550102"},  # an admin's record for a number opted in here
            {"phoneNumber": "2025550999"},  # a number this service never heard of
            {"phoneNumber": "2025550203", "expiredDate": iso_in(86_400)},  # ours, now lapsing
        ],
    )
    report = await reconcile_dnc(repair=True)
    assert report["drift"] == {
        "opt_out_missing": 2,
        "opt_in_record": 1,
        "expiry_differs": 1,
        "not_owned": 1,
    }
    assert report["notes"]["unknown_number"] == 1
    assert report["requeued"] == 3
    assert set(report["samples"]["opt_out_missing"]) == {"***0201", "***0202"}
    assert all("2025550" not in s for v in report["samples"].values() for s in v)  # masked

    await sync_dnc()
    after = await reconcile_dnc()
    assert after["drift"] == NO_DRIFT | {"expiry_differs": 1, "not_owned": 1}
    groups = await active(world)
    assert {"2025550201", "2025550202"} <= groups and "2025550200" not in groups
    assert "2025550102" in groups  # never removed: not ours
    ledger = OwnershipLedger(world["redis"], world["keys"])
    entries = await ledger.entries(["+12025550201", "+12025550200", "+12025550102"])
    assert entries["+12025550201"] is not None and entries["+12025550200"] is None
    assert entries["+12025550102"] is None


async def test_pending_and_dead_lettered_numbers_are_not_drift(world: dict[str, Any]) -> None:
    await post(world, "+12025550101", "optOut", 0)  # pending: not synced yet
    report = await reconcile_dnc()
    assert report["drift"] == NO_DRIFT and report["notes"]["in_flight"] == 1


async def test_a_spent_budget_reports_incomplete_and_looks_for_no_missing_record(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await post(world, "+12025550101", "optOut", 0)
    await sync_dnc()
    await out_of_band(world, delete=["2025550101"])
    monkeypatch.setenv("DNC_RECONCILE_PAGE_SIZE", "1")
    await out_of_band(world, add=[{"phoneNumber": f"20255509{n:02d}"} for n in range(5)])
    with pytest.raises(ReconcileIncomplete):
        await reconcile_dnc(time_budget_s=0.001)
    kept = await load_last(world["redis"], world["keys"])
    assert kept is not None and kept.complete is False
    assert kept.drift["opt_out_missing"] == 0  # not looked for


async def test_a_held_sync_lease_is_waited_for_then_refused(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_RECONCILE_LEASE_WAIT_S", "0.5")
    assert await world["queue"].acquire_lease("a-sync-run", 30_000)
    with pytest.raises(LeaseBusy):
        await reconcile_dnc()


async def test_outbound_contacts_are_read_back_by_their_dnc_flag(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "DNC_CXONE_ADAPTER": "outbound-contacts",
        "DNC_CXONE_CONTACTS_BASE_URL": str(world["control"].base_url).rstrip("/"),
        "DNC_CXONE_CLIENT_ID": "sandbox-outbound-client-id",
        "DNC_CXONE_CLIENT_SECRET": "sandbox-outbound-client-secret-0123456789",
    }.items():
        monkeypatch.setenv(name, value)
    await post(world, "+12025550101", "optOut", 0)
    await post(world, "+12025550102", "optOut", 0)
    await post(world, "+12025550102", "optIn", 10)  # never flagged by us: no contact at all
    await sync_dnc()
    assert (await reconcile_dnc())["drift"] == NO_DRIFT
    await admin_flags(world, "+12025550103", True)  # someone else's contact
    await post(world, "+12025550103", "optIn", 20)  # opted in here: kept, reported
    await sync_dnc()
    await admin_flags(world, "+12025550101", False)  # someone clears our opt-out's flag
    report = await reconcile_dnc(repair=True)
    assert report["drift"] == NO_DRIFT | {"opt_out_missing": 1, "not_owned": 1}
    assert report["records"] == 1 and report["requeued"] == 1  # flagged: only theirs
    await sync_dnc()
    after = await reconcile_dnc()
    assert after["drift"] == NO_DRIFT | {"not_owned": 1} and after["records"] == 2


async def admin_flags(world: dict[str, Any], e164: str, do_not_call: bool) -> None:
    """Set a contact's flag through the contacts API, as another integration would."""
    auth = await contacts_auth(world)
    found = await world["control"].get(
        "/api/v2/outbound/contacts", params={"phoneNumber": e164}, headers=auth
    )
    existing = found.json()["contacts"]
    contact: dict[str, Any] = {
        "phone": {"phoneNumber": e164},
        "dnc": {"doNotCall": do_not_call, "optOutDate": "2026-01-01T00:00:00Z"},
    }
    if existing:
        contact |= {"existingRecordId": existing[0]["recordId"], "updateMode": "upsert"}
    answer = await world["control"].post(
        "/api/v2/outbound/contacts", json={"contacts": [contact]}, headers=auth
    )
    assert answer.status_code == 200, answer.text


async def contacts_auth(world: dict[str, Any]) -> dict[str, str]:
    token = await world["control"].post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "sandbox-outbound-client-id",
            "client_secret": "sandbox-outbound-client-secret-0123456789",
        },
    )
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_with_remove_foreign_records_the_repair_removes_a_not_owned_record(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await out_of_band(world, add=[{"phoneNumber": "2025550102"}])  # an admin's record
    await post(world, "+12025550102", "optIn", 10)
    await sync_dnc()  # not sent: not ours
    assert (await reconcile_dnc(repair=True))["requeued"] == 0
    monkeypatch.setenv("DNC_SYNC_REMOVE_FOREIGN_RECORDS", "true")
    report = await reconcile_dnc(repair=True)
    assert report["drift"]["not_owned"] == 1 and report["requeued"] == 1
    await sync_dnc()
    assert "2025550102" not in await active(world)
    assert (await reconcile_dnc())["drift"] == NO_DRIFT


async def test_a_failed_run_is_kept_as_the_last_one_and_the_progress_ends_at_100(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    await reconcile_dnc()
    async with get_client() as prefect:
        progress = await prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dnc-reconcile-progress"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert progress and progress[0].data == 100.0
    monkeypatch.setenv("DNC_CXONE_DNC_GROUP_ID", "")
    with pytest.raises(ValueError, match="DNC_CXONE_DNC_GROUP_ID"):
        await reconcile_dnc()
    kept = await load_last(world["redis"], world["keys"])
    assert kept is not None and kept.complete is False
    assert kept.incomplete_reason.startswith("failed: ValueError: DNC_CXONE_DNC_GROUP_ID")
