"""Hostile and malformed input: the fuzz (in process and over a socket) and slow clients.

10,000 fuzz cases in all, split for speed (``reliability/fuzz_receiver.py`` runs 10,000 over the
socket alone, on demand):

- 8,000 hypothesis cases from ``reliability/fuzz_cases.py`` through ``httpx.ASGITransport`` into the
  app on fakeredis: no 5xx, a JSON error body for every 4xx, every refusal in the rejected
  stream status by status, no 202 without valid credentials;
- 2,000 cases of ``reliability/fuzz_receiver.py`` over a socket, raw bytes and schemathesis, against
  ``dnc-sync serve`` and a real redis-server (uvicorn's parser and ``receiver.protocol``
  included), memory and liveness checked;
- slow clients against a served receiver with 1 s timeouts: trickled bodies (with and
  without the secret), trickled heads (first or next on a kept-alive connection) and idle
  connections are all closed after their timeout while a normal client is served at once;
  oversize heads get 431 and bytes that are not HTTP a JSON 400.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from receiver.openapi import build_document
from reliability import fuzz_cases as fc
from reliability.processes import run_script
from reliability.services import Services
from tests.conftest import make_app, make_store

IN_PROCESS_CASES = 8_000  # plus SOCKET_CASES over a socket: 10,000 in all
BATCH = 25
SOCKET_CASES = 2_000
TIMEOUT_S = 1.0  # body and header timeouts of the served receiver below


# -- the document schemathesis reads -----------------------------------------------------------


def test_every_openapi_ref_resolves() -> None:
    """A dangling $ref made schemathesis send no body at all (every case a 415)."""
    document = build_document()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs and refs <= set(document["components"]["schemas"])


# -- in process: 10,000 cases ------------------------------------------------------------------


def as_httpx(request: fc.FuzzRequest) -> dict[str, object]:
    """``httpx.AsyncClient.request`` arguments for ``request`` (never a raw one)."""
    content: object = request.body
    if request.chunks is not None:

        async def stream() -> AsyncIterator[bytes]:
            for chunk in request.chunks or ():
                yield chunk

        content = stream()
    return {
        "method": request.method,
        "url": "http://receiver" + request.target.decode("latin-1"),
        "headers": list(request.headers),
        "content": content,
    }


async def rejected_statuses(client: aioredis.Redis) -> Counter[str]:
    """Statuses in both refusal streams (authenticated, and callers without a secret)."""
    entries = await client.xrange("{fuzz}:rejected", "-", "+")
    entries += await client.xrange("{fuzz}:rejected-unauthenticated", "-", "+")
    return Counter(fields[b"status"].decode() for _, fields in entries)


def test_in_process_fuzz(fake_redis: aioredis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="dnc.receiver")  # not thousands of refusal lines
    store = make_store(fake_redis, "fuzz")
    app = make_app(store, bearer_secrets=[fc.BEARER], hmac_secrets=[fc.HMAC_KEY])
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    statuses: Counter[int] = Counter()
    expected: Counter[str] = Counter()
    unsendable: Counter[str] = Counter()
    failures: list[tuple[str, str, bytes]] = []

    async def send_all(batch: list[fc.FuzzRequest]) -> None:
        for request in batch:
            if request.raw is not None:  # not HTTP: only a socket can carry it
                unsendable["not_http"] += 1
                continue
            try:
                response = await client.request(**as_httpx(request))  # type: ignore[arg-type]
            except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError) as exc:
                unsendable[type(exc).__name__] += 1  # httpx will not build it: not a case
                continue
            status, body = response.status_code, response.content
            statuses[status] += 1
            if fc.recorded(request, status, body):
                expected[str(status)] += 1
            failures.extend((request.kind, p, body[:200]) for p in fc.judge(request, status, body))

    # Batches of BATCH cases per hypothesis example: the engine's own cost per example is
    # then shared, which halves the time per case; every case is still a fresh draw.
    @seed(20240606)
    @settings(
        max_examples=IN_PROCESS_CASES // BATCH,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(fc.requests(), min_size=BATCH, max_size=BATCH))
    def case(batch: list[fc.FuzzRequest]) -> None:
        loop.run_until_complete(send_all(batch))

    try:
        case()
        recorded = loop.run_until_complete(rejected_statuses(fake_redis))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    sent = sum(statuses.values())
    assert sent + sum(unsendable.values()) == IN_PROCESS_CASES
    assert sent >= 0.9 * IN_PROCESS_CASES, unsendable
    assert failures == []
    assert not [s for s in statuses if s >= 500]
    assert statuses[202] > 0 and statuses[422] > 0 and statuses[413] > 0  # every path taken
    assert recorded == expected


# -- over a socket: reliability/fuzz_receiver.py at CI size ------------------------------------


@pytest.mark.socket
@pytest.mark.redis
def test_socket_fuzz_with_schemathesis() -> None:
    result = run_script("reliability.fuzz_receiver", "--cases", str(SOCKET_CASES), timeout_s=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["cases"] >= SOCKET_CASES
    assert figures["by_source"]["schemathesis"] > 0
    assert (figures["5xx"], figures["bad_bodies"], figures["alive"]) == (0, 0, True)
    assert figures["rejections_recorded"] >= figures["rejections_expected"] > 0


# -- slow clients ------------------------------------------------------------------------------


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``dnc-sync serve`` (one worker) with 1 s body and header timeouts."""
    namespace = f"slow{os.getpid()}"
    services = Services(tmp_path_factory.mktemp("slow"))
    client = redis.Redis.from_url(redis_url)
    try:
        services.start_receiver(
            {
                "DNC_REDIS_URL": redis_url,
                "DNC_REDIS_NAMESPACE": namespace,
                "DNC_RECEIVER_BEARER_SECRETS": fc.BEARER,
                "DNC_RECEIVER_BODY_TIMEOUT_S": str(TIMEOUT_S),
                "DNC_RECEIVER_HEADER_TIMEOUT_S": str(TIMEOUT_S),
            }
        )
        yield Served(services.ports["receiver"], services.procs["receiver"])
    finally:
        services.stop_all()
        keys = list(client.scan_iter(match="{" + namespace + "}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def head(*, authorized: bool, length: int = 200) -> bytes:
    lines = [b"POST /v1/events HTTP/1.1", b"host: x", b"content-type: application/json"]
    if authorized:
        lines.append(b"authorization: Bearer " + fc.BEARER.encode())
    lines.append(b"content-length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass
class SlowResult:
    kind: str
    answer: bytes
    closed_after_s: float


async def slow_client(port: int, kind: str, first: bytes, stop_s: float) -> SlowResult:
    """Send ``first``, then one byte every 0.1 s until the server closes (or ``stop_s``);
    return what came back and when the connection was closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(first)
    answer = b""
    try:
        while time.monotonic() - started < stop_s:
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.1)
            except TimeoutError:
                writer.write(b"a" if kind != "idle" else b"")
                continue
            if not data:
                break
            answer += data
    except ConnectionError:
        pass
    closed_after_s = time.monotonic() - started
    writer.close()
    return SlowResult(kind, answer, closed_after_s)


SLOW_KINDS = {
    "trickled_body": head(authorized=True),
    "trickled_body_no_secret": head(authorized=False),
    "trickled_head": b"POST /v1/events HTTP/1.1\r\nx-slow: ",
    # a kept-alive connection: one request answered, then the next head trickles
    "trickled_second_head": b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nPOST / HTTP/1.1\r\nx: ",
    "idle": b"",
}


@pytest.mark.socket
@pytest.mark.redis
async def test_slow_clients_are_cut_off_and_do_not_block_others(served: Served) -> None:
    stop_s = TIMEOUT_S + 4
    slow = [
        asyncio.create_task(slow_client(served.port, kind, first, stop_s))
        for kind, first in SLOW_KINDS.items()
        for _ in range(20)
    ]
    await asyncio.sleep(0.3)  # all connected and trickling
    event = {
        "phoneNumber": "+1 202 555 0142",
        "eventName": "optOut",
        "timestamp": int(time.time() * 1000) - 1_000,
    }
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {fc.BEARER}"}) as http:
        started = time.monotonic()
        response = await http.post(f"http://127.0.0.1:{served.port}/v1/events", json=event)
        normal_s = time.monotonic() - started
    assert response.status_code == 202
    assert normal_s < 0.5
    results = await asyncio.gather(*slow)
    by_kind: dict[str, list[SlowResult]] = {}
    for result in results:
        by_kind.setdefault(result.kind, []).append(result)
    expected = {
        "trickled_body": b'"error":"body_timeout"',
        "trickled_body_no_secret": b'"error":"unauthorized"',  # at once; closed after the timeout
        "trickled_head": b'"error":"header_timeout"',
        "trickled_second_head": b'"error":"header_timeout"',
        "idle": b"",
    }
    for kind, marker in expected.items():
        for result in by_kind[kind]:
            assert marker in result.answer, (kind, result.answer[:300])
            assert TIMEOUT_S - 0.1 <= result.closed_after_s < TIMEOUT_S + 2, (kind, result)
    assert served.proc.poll() is None


@pytest.mark.socket
@pytest.mark.redis
def test_oversize_head_is_431_and_garbage_is_json_400(served: Served) -> None:
    url = f"http://127.0.0.1:{served.port}"
    big = httpx.get(f"{url}/healthz", headers={"x-big": "v" * 20_000}, timeout=5)
    assert (big.status_code, big.json()["error"]) == (431, "headers_too_large")
    long_path = httpx.get(f"{url}/" + "a" * 20_000, timeout=5)
    assert long_path.status_code == 431
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x00\xa5 not http\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "malformed_request"
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
