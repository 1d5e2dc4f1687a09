"""uvicorn's httptools protocol with the limits it lacks on slow and oversized requests.

uvicorn (httptools parser) holds a connection that never finishes its request line and headers
for ever, buffers headers of any size, and, once the app has answered before reading a body
(a 401 to a caller without the secret), keeps reading and discarding that body for as long
as the client trickles it. This subclass adds, per connection:

- a head timeout: the request line and headers must arrive within ``header_timeout_s`` of the
  connection being made, or of the first byte of a next request on a kept-alive connection;
  otherwise ``408`` (a silent close when not a byte came) and the connection is closed;
- a head cap: more than ``max_header_bytes`` bytes before the headers end is ``431`` and
  close; the parser is never fed more than the cap, so memory stays bounded;
- a drain deadline: the rest of a body the app answered early must arrive within
  ``body_timeout_s`` of the answer, or the connection is closed;
- JSON bodies for these refusals and for uvicorn's own ``400`` on bytes that are not HTTP.

The app bounds the body it reads itself (``receiver.asgi.read_body``, 408). Limits come from
the app uvicorn loaded (``ReceiverApp.connection_limits``): settings are read once, by the
factory. Selected by ``uvicorn.run(..., http="receiver.protocol:GuardedHttpToolsProtocol")``.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

from pydantic_core import to_json
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from receiver.limits import ConnectionLimits

DEFAULT_LIMITS = ConnectionLimits(
    header_timeout_s=10.0, max_header_bytes=16_384, body_timeout_s=10.0
)


def refusal_bytes(status: int, error: str, message: str) -> bytes:
    """A complete HTTP/1.1 response: ``status`` with a JSON ``{"error", "message"}`` body and
    ``connection: close``."""
    body = to_json({"error": error, "message": message})
    phrase = http.HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus the head timeout and cap, the drain deadline, and JSON
    refusals."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = getattr(self.app, "connection_limits", DEFAULT_LIMITS)
        self._limits: ConnectionLimits = limits
        self._in_head = True  # waiting for (the rest of) a request line and headers
        self._head_bytes = 0  # bytes of the current head fed to the parser
        self._heads_done = 0  # heads completed on this connection
        self._message_open = False  # a request began and its body has not ended
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None  # head clock, or drain deadline

    # -- connection events -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection and start the clock on its first request's head."""
        super().connection_made(transport)
        self._start_timer(self._limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop any clock, then let uvicorn clean up."""
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, never more than the head cap while a head is incomplete."""
        while data and not self._refused and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            room = self._limits.max_header_bytes - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                super().data_received(data)
                return
            heads_before = self._heads_done
            self._head_bytes += room
            super().data_received(data[:room])
            if self._heads_done == heads_before and not self.transport.is_closing():
                cap = self._limits.max_header_bytes
                self._refuse(431, "headers_too_large", f"request head is over {cap} bytes")
                return
            data = data[room:]

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request starts: its head must be complete within the head timeout."""
        self._in_head = True
        self._message_open = True
        self._start_timer(self._limits.header_timeout_s)
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The head is complete: stop its clock; uvicorn starts the app."""
        self._stop_timer()
        self._in_head = False
        self._heads_done += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request ends: stop a drain deadline; the next bytes are a new head."""
        super().on_message_complete()
        self._message_open = False
        self._stop_timer()
        self._in_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        """The app answered; if the request's body is still coming, give it a deadline."""
        super().on_response_complete()
        if self._message_open and not self._in_head and not self.transport.is_closing():
            self._start_timer(self._limits.body_timeout_s)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, as JSON."""
        self._refuse(400, "malformed_request", "not a valid HTTP/1.1 request")

    # -- clocks and refusals ---------------------------------------------------------------

    def _start_timer(self, delay_s: float) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(delay_s, self._timed_out)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if not self._in_head or self._head_bytes == 0:
            # A body still trickling after its answer, or an idle connection: just close.
            self.transport.close()
            return
        timeout_s = self._limits.header_timeout_s
        self._refuse(408, "header_timeout", f"request head did not arrive within {timeout_s:g} s")

    def _refuse(self, status: int, error: str, message: str) -> None:
        self._refused = True
        self._stop_timer()
        self.transport.write(refusal_bytes(status, error, message))
        self.transport.close()
        hook = getattr(self.app, "connection_refused", None)
        if hook is not None:
            hook(status, error)
