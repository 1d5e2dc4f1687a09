"""Nobody without a valid secret changes anyone's DNC state.

What ``tests/test_receiver_auth.py`` already covers (rotation, a few replays and a tampered
body, malformed signatures) is not repeated; this adds:

- every operation of ``/openapi.json`` that is not a read refuses 100 % of a generated set of
  requests without valid credentials (missing, wrong, truncated, extended, wrong scheme,
  non-ASCII bytes, doubled headers, the secret in another header or the query, old and future
  signatures, a signature of another body or with another key) with a JSON 401, and nothing
  but the rejected stream (without the body) is written; the same bodies with the secret are
  accepted, so the refusals are the credentials' doing;
- signatures, as properties: any age outside the window is refused, any inside accepted;
  a signature of one body never admits another;
- the decision is ``hmac.compare_digest``'s, on bytes, over every configured secret.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import importlib
import json
import logging
import pickle
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

import receiver.auth
from dnc.store import EventStore
from receiver.app import ReceiverApp
from receiver.auth import Authenticator, sign
from receiver.openapi import build_document
from reliability.processes import run_script
from tests.conftest import BEARER, HMAC_KEY, make_app, make_store

WINDOW_S = 300
SECRET = BEARER.encode()
GENERATED = 1_000  # refused requests per operation
FAST = settings(
    database=None, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)

UNAUTHENTICATED_KEYS = [b"{sec}:rejected-unauthenticated", b"{sec}:rejection-counts"]
"""What a refused stranger may write: the capped stream and the counts by reason."""


def writing_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document that is not a read."""
    paths: dict[str, dict[str, Any]] = build_document()["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method.lower() not in ("get", "head", "options")
    ]


def event_body(n: int) -> bytes:
    """A valid opt-out that would be queued (202) with credentials; ``n`` varies the number."""
    number = f"+1 202 555 {n % 10_000:04d}"
    stamp = int(time.time() * 1000) - 60_000
    return json.dumps({"phoneNumber": number, "eventName": "optOut", "timestamp": stamp}).encode()


@pytest.fixture
def store(fake_redis: aioredis.Redis) -> EventStore:
    return make_store(fake_redis, "sec")


@pytest.fixture
def app(store: EventStore, caplog: pytest.LogCaptureFixture) -> ReceiverApp:
    caplog.set_level(logging.ERROR, logger="dnc.receiver")
    return make_app(store)


# -- a generated set of requests without valid credentials ------------------------------------

_text_bytes = st.binary(min_size=0, max_size=48).map(
    lambda b: bytes(c for c in b if c not in b"\r\n\x00")
)
_wrong_tokens = st.one_of(
    _text_bytes.filter(lambda b: b.strip() != SECRET),
    st.integers(0, len(SECRET) - 1).map(lambda n: SECRET[:n]),  # truncated
    _text_bytes.filter(bool).map(lambda b: SECRET + b.strip() + b"x"),  # extended
    st.just(SECRET.upper()),
    st.just(SECRET.swapcase()),
    st.just(HMAC_KEY.encode()),  # the other kind of secret
)
_wrong_schemes = st.sampled_from([b"Basic", b"Token", b"Digest", b"Bearer:", b"Bearerx", b""])


Headers = list[tuple[bytes, bytes]]
VALID_BEARER = (b"authorization", b"Bearer " + SECRET)


def _signature(stamp: int, body: bytes, key: bytes = HMAC_KEY.encode()) -> Headers:
    return [
        (b"x-signature-timestamp", str(stamp).encode()),
        (b"x-signature", sign(key, stamp, body)),
    ]


@st.composite
def _wrong_bearer(draw: st.DrawFn, body: bytes) -> Headers:
    return [(b"authorization", b"Bearer " + draw(_wrong_tokens))]


@st.composite
def _wrong_scheme(draw: st.DrawFn, body: bytes) -> Headers:
    return [(b"authorization", draw(_wrong_schemes) + b" " + SECRET)]


@st.composite
def _non_ascii(draw: st.DrawFn, body: bytes) -> Headers:
    noise = draw(st.binary(min_size=1, max_size=8).map(lambda b: bytes(c | 0x80 for c in b)))
    cut = draw(st.integers(0, len(SECRET)))
    return [(b"authorization", b"Bearer " + SECRET[:cut] + noise + SECRET[cut:])]


@st.composite
def _doubled(draw: st.DrawFn, body: bytes) -> Headers:
    """Two Authorization headers are ambiguous: refused even when both are valid."""
    other = draw(st.sampled_from([VALID_BEARER[1], b"Bearer wrong-secret-0123456789", b""]))
    pair = [VALID_BEARER, (b"authorization", other)]
    return pair if draw(st.booleans()) else pair[::-1]


@st.composite
def _elsewhere(draw: st.DrawFn, body: bytes) -> Headers:
    name = draw(st.sampled_from([b"x-authorization", b"proxy-authorization", b"x-api-key"]))
    return [(name, b"Bearer " + SECRET)]


@st.composite
def _stale_signature(draw: st.DrawFn, body: bytes) -> Headers:
    # 30 s clear of the edge: a request is sent a moment after it is drawn (the edges
    # themselves: test_signature_age_decides_exactly_at_the_window, on a fixed clock).
    age_s = draw(st.integers(WINDOW_S + 30, 10**9)) * draw(st.sampled_from([1, -1]))
    return _signature(int(time.time()) - age_s, body)


@st.composite
def _signature_of_another_body(draw: st.DrawFn, body: bytes) -> Headers:
    return _signature(int(time.time()), body + draw(st.binary(min_size=1, max_size=8)))


@st.composite
def _signature_with_another_key(draw: st.DrawFn, body: bytes) -> Headers:
    key = draw(st.binary(min_size=16, max_size=32).filter(lambda k: k != HMAC_KEY.encode()))
    return _signature(int(time.time()), body, key)


@st.composite
def _random_signature(draw: st.DrawFn, body: bytes) -> Headers:
    return [(b"x-signature-timestamp", draw(_text_bytes)), (b"x-signature", draw(_text_bytes))]


@st.composite
def _signature_for_another_time(draw: st.DrawFn, body: bytes) -> Headers:
    now = int(time.time())
    timestamp, signature = _signature(now, body)
    return [(timestamp[0], str(now - draw(st.integers(1, 100))).encode()), signature]


REFUSED = (
    _wrong_bearer,
    _wrong_scheme,
    _non_ascii,
    _doubled,
    _elsewhere,
    _stale_signature,
    _signature_of_another_body,
    _signature_with_another_key,
    _random_signature,
    _signature_for_another_time,
)


def refused_headers(body: bytes) -> st.SearchStrategy[Headers]:
    """Headers that carry no valid credential for ``body``: none at all, or one of ``REFUSED``."""
    return st.one_of(st.just([]), *(make(body) for make in REFUSED))


@st.composite
def refused_requests(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, bytes]], str, str]:
    """(body, headers, content type, query string) of a request without valid credentials."""
    body = event_body(draw(st.integers(0, 9_999)))
    content_type = draw(st.sampled_from(["application/json", "text/plain", ""]))
    query = f"?access_token={BEARER}" if draw(st.booleans()) else ""  # never read from there
    return body, draw(refused_headers(body)), content_type, query


@pytest.mark.parametrize(("method", "path"), writing_operations())
def test_every_writing_operation_refuses_every_request_without_a_secret(
    app: ReceiverApp, fake_redis: aioredis.Redis, method: str, path: str
) -> None:
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")
    answers: list[tuple[int, str, list[tuple[bytes, bytes]]]] = []

    async def send(body: bytes, headers: list[tuple[bytes, bytes]], ctype: str, query: str) -> None:
        if ctype:
            headers = [*headers, (b"content-type", ctype.encode())]
        response = await client.request(method, path + query, content=body, headers=headers)
        error = response.json().get("error") if response.status_code == 401 else response.text
        answers.append((response.status_code, error, headers))

    @seed(20240607)
    @settings(FAST, max_examples=GENERATED)
    @given(case=refused_requests())
    def refuse(case: tuple[bytes, list[tuple[bytes, bytes]], str, str]) -> None:
        loop.run_until_complete(send(*case))

    try:
        refuse()
        keys = loop.run_until_complete(fake_redis.keys("*"))
        rejected = loop.run_until_complete(
            fake_redis.xrange("{sec}:rejected-unauthenticated", "-", "+")
        )
        # Control: the same kind of body with the secret is written, on this very operation.
        with_secret = event_body(1) if not path.endswith(":batch") else b"[" + event_body(1) + b"]"
        loop.run_until_complete(
            send(with_secret, [(b"authorization", b"Bearer " + SECRET)], "application/json", "")
        )
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    refused, control = answers[:-1], answers[-1]
    assert len(refused) == GENERATED
    assert [a for a in refused if a[:2] != (401, "unauthorized")] == []
    # Only the stream of unauthenticated refusals (and their count by reason, a hash of a
    # few fields): no pending, latest, watermark, audit, idempotency key, and not the
    # authenticated refusals' stream either.
    assert sorted(keys) == UNAUTHENTICATED_KEYS
    assert len(rejected) == GENERATED
    assert not [fields for _, fields in rejected if b"body" in fields]  # untrusted: not kept
    assert control[0] == 202


# -- signatures as properties -----------------------------------------------------------------


def signed(body: bytes, stamp: int, signed_body: bytes | None = None) -> tuple[bytes, bytes]:
    return str(stamp).encode(), sign(
        HMAC_KEY.encode(), stamp, body if signed_body is None else signed_body
    )


@settings(FAST, max_examples=400)
@given(age_s=st.integers(-(10**10), 10**10), body=st.binary(max_size=200))
@example(age_s=WINDOW_S, body=b"{}")
@example(age_s=WINDOW_S + 1, body=b"{}")
@example(age_s=-WINDOW_S, body=b"{}")
@example(age_s=-WINDOW_S - 1, body=b"{}")
def test_signature_age_decides_exactly_at_the_window(age_s: int, body: bytes) -> None:
    auth = Authenticator([], [HMAC_KEY.encode()], WINDOW_S)
    now = 2_000_000_000
    stamp = now - age_s
    if stamp < 0:
        return  # no negative epoch seconds on the wire
    timestamp, signature = signed(body, stamp)
    assert auth.signature_ok(signature, timestamp, body, now) is (abs(age_s) <= WINDOW_S)


@settings(FAST, max_examples=400)
@given(body=st.binary(max_size=300), other=st.binary(max_size=300))
def test_a_signature_never_admits_another_body(body: bytes, other: bytes) -> None:
    auth = Authenticator([], [HMAC_KEY.encode()], WINDOW_S)
    now = int(time.time())
    timestamp, signature = signed(body, now)
    assert auth.signature_ok(signature, timestamp, other, now) is (other == body)


async def test_replayed_signed_request_outside_the_window_is_refused_and_writes_nothing(
    app: ReceiverApp, fake_redis: aioredis.Redis
) -> None:
    body = event_body(7)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        then = int(time.time()) - WINDOW_S - 1
        timestamp, signature = signed(body, then)
        headers = {"X-Signature": signature.decode(), "X-Signature-Timestamp": timestamp.decode()}
        headers["Content-Type"] = "application/json"
        response = await http.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 401
    assert sorted(await fake_redis.keys("*")) == UNAUTHENTICATED_KEYS


# -- the comparison -------------------------------------------------------------------------------


@pytest.fixture
def spy() -> Iterator[mock.MagicMock]:
    """``hmac.compare_digest`` as ``receiver.auth`` sees it, recording calls."""
    real = hmac.compare_digest
    with mock.patch.object(receiver.auth.hmac, "compare_digest", side_effect=real) as patched:
        yield patched


def test_every_bearer_secret_is_compared_with_compare_digest_on_bytes(spy: mock.MagicMock) -> None:
    secrets = [b"first-secret-0123456789", b"second-secret-0123456789", b"third-secret-012345678"]
    auth = Authenticator(secrets, [], WINDOW_S)
    assert auth.bearer_ok(b"Bearer " + secrets[0]) is True
    assert spy.call_count == len(secrets)  # no early exit: the time does not tell which
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for (a, b), _ in spy.call_args_list)
    spy.reset_mock()
    assert auth.bearer_ok(b"Bearer \xff\xfe\x80 not ascii") is False
    assert spy.call_count == len(secrets)


def test_compare_digest_decides_the_bearer(spy: mock.MagicMock) -> None:
    auth = Authenticator([SECRET], [], WINDOW_S)
    spy.side_effect = lambda a, b: False
    assert auth.bearer_ok(b"Bearer " + SECRET) is False  # the right secret, refused
    spy.side_effect = lambda a, b: True
    assert auth.bearer_ok(b"Bearer anything-at-all") is True  # no other comparison decides


def test_compare_digest_decides_the_signature(spy: mock.MagicMock) -> None:
    keys = [HMAC_KEY.encode(), b"second-hmac-key-0123456789"]
    auth = Authenticator([], keys, WINDOW_S)
    now = int(time.time())
    timestamp, signature = signed(b"{}", now)
    assert auth.signature_ok(signature, timestamp, b"{}", now) is True
    assert spy.call_count == len(keys)
    spy.side_effect = lambda a, b: False
    assert auth.signature_ok(signature, timestamp, b"{}", now) is False
    spy.side_effect = lambda a, b: True
    assert auth.signature_ok(b"sha256=00", timestamp, b"{}", now) is True


async def test_non_ascii_credentials_are_refused_not_errors(app: ReceiverApp) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        for value in (b"Bearer \xff\xfe\xfd", b"\xc3\xa9\xc3\xa9", b"Bearer " + SECRET + b"\x80"):
            response = await http.post(
                "/v1/events",
                content=event_body(3),
                headers=[
                    (b"authorization", value),
                    (b"x-signature", b"sha256=\xff"),
                    (b"x-signature-timestamp", b"\xff\xfe"),
                ],
            )
            assert response.status_code == 401, value


# -- the leak scan ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secret_scan() -> Any:
    return importlib.import_module("reliability.secret_scan")


def test_the_leak_matcher_finds_what_it_must(secret_scan: Any) -> None:
    """The scanner can fail: plain, squeezed, URL-encoded, base64-pickled (as Prefect stores
    results, also JSON-escaped) and JWT-shaped leaks are all found; clean text is not."""
    ss = secret_scan
    needles = [ss.Needle("the secret", "secret", b"s3cret+value/0123456789")]
    needles += [ss.Needle("the secret", "secret", b"s3cret%2Bvalue%2F0123456789")]
    needles += ss.number_needles(["+1 (312) 555-0142"])
    matcher = ss.Matcher(needles)
    pickled = base64.encodebytes(pickle.dumps(RuntimeError("push of +13125550142 failed")))
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyOngifQ.c2lnbmF0dXJlLXBhcnQ"
    leaks = {
        b"token=s3cret%2Bvalue%2F0123456789": "the secret",
        b"call (312) 555-0142 now": "number ***0142",
        b"call 312.555.0142 now": "number ***0142",
        json.dumps({"result": pickled.decode()}).encode(): "number ***0142 (in base64)",
        b"x" + base64.b64encode(b"key=s3cret+value/0123456789"): "the secret (in base64)",
        f"Authorization: Bearer {token}".encode(): "JWT-shaped access token",
    }
    for text, what in leaks.items():
        assert what in {needle.what for needle, _ in matcher.find(text)}, text
    clean = b'{"ts": "2026-11-30T01:02:03Z", "number": "***0142", "id": "01a22a36-c2fc"}'
    assert list(matcher.find(clean)) == []


@pytest.mark.socket
@pytest.mark.redis
def test_leak_scan_of_the_local_stack_through_failing_pushes() -> None:
    """``reliability/secret_scan.py``: the whole stack, a failed sync, every number applied; no
    secret, token or full number in logs, Prefect's home and storage, or its API."""
    result = run_script("reliability.secret_scan", timeout_s=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    figures = json.loads(result.stdout.splitlines()[-1])
    assert (figures["secrets_found"], figures["numbers_found"]) == (0, 0)
    assert figures["sync_runs"].get("FAILED", 0) >= 1
    assert figures["files_scanned"] > 10 and figures["api_objects_scanned"] > 100
