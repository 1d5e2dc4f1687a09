"""The sandbox as users run it: `dnc-sync sandbox` (uvicorn) on a real loopback socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_until_ok

pytestmark = pytest.mark.socket

CLIENT_ID = "socket-client-id"
CLIENT_SECRET = "sock=et&secret+0123456789"
KEY_ID = "SOCKETKEYID"
KEY_SECRET = "socket-key=secret&+0123456789"
RECORDS = "/inContactAPI/services/v33.0/dnc-groups/2002/records"


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    env = os.environ | {
        "DNC_SANDBOX_CLIENT_ID": CLIENT_ID,
        "DNC_SANDBOX_CLIENT_SECRET": CLIENT_SECRET,
        "DNC_SANDBOX_ACCESS_KEY_ID": KEY_ID,
        "DNC_SANDBOX_ACCESS_KEY_SECRET": KEY_SECRET,
        "DNC_SANDBOX_DNC_GROUP_IDS": "2001,2002",
    }
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dnc_sync", "sandbox", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/healthz", proc)
        yield Served(url, proc, log_path)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)


def token(served: Served) -> dict[str, str]:
    form = {"grant_type": "password", "username": KEY_ID, "password": KEY_SECRET}
    response = httpx.post(
        f"{served.url}/auth/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_token_and_dnc_round_trip(served: Served) -> None:
    headers = token(served)
    body = {"dncGroupRecords": [{"phoneNumber": "2025550123"}]}
    added = httpx.post(f"{served.url}{RECORDS}", json=body, headers=headers, timeout=5)
    assert added.json()["resultSet"] == {
        "errorCount": 0,
        "recordResults": [
            {
                "phoneNumber": "2025550123",
                "formattedPhone": "2025550123",
                "success": True,
                "error": None,
            }
        ],
    }
    listed = httpx.get(f"{served.url}{RECORDS}", headers=headers, timeout=5).json()
    assert [r["phoneNumber"] for r in listed["dncGroupRecords"]] == ["2025550123"]


def test_hang_makes_a_short_read_timeout_fire(served: Served) -> None:
    headers = token(served)
    faults = httpx.post(
        f"{served.url}/_sandbox/faults", json={"timeout_rate": 1, "hang_s": 5}, timeout=5
    )
    assert faults.status_code == 200
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{served.url}{RECORDS}", headers=headers, timeout=httpx.Timeout(5, read=0.3))
    finally:
        httpx.post(f"{served.url}/_sandbox/faults", json={"timeout_rate": 0}, timeout=5)
    assert time.monotonic() - started < 2
    assert httpx.get(f"{served.url}{RECORDS}", headers=headers, timeout=5).status_code == 200


def test_a_slow_delete_lands_although_the_client_gave_up(served: Served) -> None:
    headers = token(served)
    body = {"dncGroupRecords": [{"phoneNumber": "2025550177"}]}
    assert httpx.post(f"{served.url}{RECORDS}", json=body, headers=headers, timeout=5).is_success
    faults = httpx.post(f"{served.url}/_sandbox/faults", json={"delete_latency_ms": 500}, timeout=5)
    assert faults.status_code == 200
    sent_ms = time.time() * 1000
    try:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up long before 500 ms
            httpx.request(
                "DELETE",
                f"{served.url}{RECORDS}",
                json=body,
                headers=headers,
                timeout=httpx.Timeout(5, read=0.05),
            )
        deadline = time.monotonic() + 10
        landed: list[dict[str, object]] = []
        while not landed and time.monotonic() < deadline:
            time.sleep(0.05)
            journal = httpx.get(f"{served.url}/_sandbox/journal", timeout=5).json()
            landed = [e for e in journal["entries"] if e["method"] == "DELETE"]
    finally:
        httpx.post(f"{served.url}/_sandbox/faults", json={"delete_latency_ms": 0}, timeout=5)
    [expired] = landed  # applied anyway, and no sooner than the latency after it was sent
    assert expired["phoneNumber"] == "2025550177" and expired["changed"] is True
    assert int(str(expired["atMs"])) >= sent_ms + 500 - 1  # the sandbox's clock is ms
    listed = httpx.get(f"{served.url}{RECORDS}", headers=headers, timeout=5).json()
    assert "2025550177" not in [r["phoneNumber"] for r in listed["dncGroupRecords"]]


def test_sigterm_stops_cleanly_without_printing_secrets(served: Served) -> None:
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=10) == 0
    text = served.log_path.read_text()
    assert f"CXone sandbox on {served.url}" in text
    for secret in (CLIENT_SECRET, KEY_SECRET, "sandbox-outbound-client-secret"):
        assert secret not in text
