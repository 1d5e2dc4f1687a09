"""ASGI plumbing: types, a capped body reader, and the one helper every response goes through.

Contract: ASGI 3.0 HTTP and lifespan scopes (asgi.readthedocs.io, "HTTP & WebSocket" spec).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from pydantic_core import to_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body is longer than the cap (declared or as streamed)."""


class ClientGone(Exception):
    """The client disconnected before the whole body arrived."""


class BodyTimeout(Exception):
    """The whole body did not arrive within the body timeout (a slow or stalled client)."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes) in ``scope``, or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def collect_headers(scope: Scope, names: frozenset[bytes]) -> tuple[dict[bytes, bytes], set[bytes]]:
    """One pass over the request headers: the first value of each header in ``names``
    (lower-case bytes), and the set of those that appear more than once."""
    found: dict[bytes, bytes] = {}
    repeated: set[bytes] = set()
    for key, value in scope["headers"]:
        if key in names:
            if key in found:
                repeated.add(key)
            else:
                found[key] = bytes(value)
    return found, repeated


async def read_body(
    scope: Scope, receive: Receive, max_bytes: int, timeout_s: float | None = None
) -> bytes:
    """Read the whole request body, refusing more than ``max_bytes`` bytes or a body that has
    not arrived in full ``timeout_s`` seconds after this call (one deadline for the whole body,
    so a client trickling a byte at a time is cut off too; ``None``: no deadline).

    A ``Content-Length`` over the cap is refused before reading; a chunked body is counted
    while it streams. Raises ``BodyTooLarge``, ``BodyTimeout`` or ``ClientGone``.
    """
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_chunks(receive, max_bytes)
    except TimeoutError:
        raise BodyTimeout from None


async def _read_chunks(receive: Receive, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(
    send: Send, status: int, payload: object, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send ``payload`` as a complete JSON response with ``status`` and extra ``headers``."""
    await send_bytes(send, status, to_json(payload), b"application/json", headers)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send ``body`` as a complete response of ``content_type``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
