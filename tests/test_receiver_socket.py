"""The receiver as users run it: `dnc-sync serve` (uvicorn, 2 workers) on a real socket,
writing to the real redis-server."""

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
import redis

from tests.conftest import BEARER, free_port, wait_until_ok

pytestmark = [pytest.mark.socket, pytest.mark.redis]


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    redis: redis.Redis
    namespace: str


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    namespace = f"sock{os.getpid()}"
    env = os.environ | {
        "DNC_REDIS_URL": redis_url,
        "DNC_REDIS_NAMESPACE": namespace,
        "DNC_RECEIVER_BEARER_SECRETS": BEARER,
        "DNC_RECEIVER_MAX_BODY_BYTES": "2048",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path_factory.mktemp("receiver") / "receiver.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dnc_sync", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until_ok(f"{url}/readyz", proc)
        yield Served(url, proc, log_path, client, namespace)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)
        keys = list(client.scan_iter(match="{" + namespace + "}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def post(served: Served, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {BEARER}"}
    extra = kwargs.pop("headers", {})
    headers.update(extra)  # type: ignore[arg-type]
    return httpx.post(f"{served.url}/v1/events", headers=headers, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_event_over_socket_lands_in_real_redis(served: Served) -> None:
    stamp = int(time.time() * 1000) - 60_000
    before = time.time() * 1000
    response = post(
        served, json={"phoneNumber": "+44 20 7946 0123", "eventName": "optOut", "timestamp": stamp}
    )
    assert (response.status_code, response.json()["status"]) == (202, "queued")
    score = served.redis.zscore("{" + served.namespace + "}:pending", "+442079460123")
    assert before <= score <= time.time() * 1000  # scored by receive time, not event time


def test_chunked_body_over_cap_is_413(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"phoneNumber": "2025550123", "metadata": {"pad": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}}'

    response = post(served, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_metrics_aggregate_both_workers(served: Served) -> None:
    for _ in range(20):
        post(served, json={"phoneNumber": "73827", "eventName": "optOut", "timestamp": 1})
    text = httpx.get(f"{served.url}/metrics", timeout=5).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("dnc_receiver_requests_total")
        and 'outcome="rejected"' in row
        and "too_short" in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 20


def test_logs_are_json_and_mask_numbers(served: Served) -> None:
    post(
        served,
        json={
            "phoneNumber": "+1 202 555 0199",
            "eventName": "optIn",
            "timestamp": int(time.time() * 1000) - 5_000,
        },
    )
    deadline = time.monotonic() + 3  # lines are flushed at least every 0.5 s
    while '"number":"***0199"' not in (text := served.log_path.read_text()):
        assert time.monotonic() < deadline, "masked request line never logged"
        time.sleep(0.1)
    for secret_or_number in ("2025550199", "202 555 0199", BEARER, "79460123"):
        assert secret_or_number not in text


def test_sigterm_stops_cleanly_and_flushes_logs(served: Served) -> None:
    response = post(
        served,
        json={
            "phoneNumber": "+1 202 555 0177",
            "eventName": "optOut",
            "timestamp": int(time.time() * 1000) - 5_000,
        },
    )
    assert response.status_code == 202
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 0
    assert '"number":"***0177"' in served.log_path.read_text()
