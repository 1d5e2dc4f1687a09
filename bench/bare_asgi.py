"""A do-nothing ASGI app: reads the body and answers 202 with a fixed JSON body.

The ceiling of any receiver on this HTTP stack: ``BARE=1 make bench-peers`` runs it under the
same uvicorn (httptools, uvloop, 2 workers) in place of ours, beside the Go and FastAPI peers,
so the gap between it and ours is our own per-event work (auth, intake, Redis, logs).
"""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"queued"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI 3: drain the request body, answer 202 ``{"status":"queued"}``; other scopes end."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body", False))
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
