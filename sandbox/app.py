"""The sandbox as a plain ASGI callable: routing, faults, the bearer check, one answer.

Every request: match the path (unknown: 404), the method (wrong: 405 with Allow), read the
body (over the route's cap, ``MAX_BODY_BYTES`` but ``CONTROL_MAX_BODY_BYTES`` for out-of-band
changes: 413); for API and token calls, apply latency and faults
(``sandbox.faults``) before anything else; for API calls, check the bearer token (401); for a
DNC-group DELETE, sleep ``delete_latency_ms`` (whether or not the client still waits); then
call the handler, a plain function that cannot interleave with another request's; for an
API call (a write or a read) the answer may then be lost (``lost_reply_rate``: a hang and a
504). Answers are JSON. API, token and discovery requests are counted per endpoint and status.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from receiver.asgi import (
    BodyTooLarge,
    ClientGone,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_json,
)
from sandbox import contacts, control, dnc_groups, dnc_listing, persist, tokens
from sandbox.context import Sandbox
from sandbox.faults import fault_response, hang, lose_reply
from sandbox.http import BadRequest, Request, Response, error, parse_query

log = logging.getLogger("dnc.sandbox")

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest request body, bytes, on every route but the out-of-band change."""
CONTROL_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest out-of-band change body, bytes: ``control.MAX_OUT_OF_BAND`` adds with an
``expiredDate`` each are about 7 MB."""
SAVE_EVERY_S = 2.0
"""How often changed tenant data is written to the state file, seconds."""
Handler = Callable[[Sandbox, Request], Response]


class Guard(Enum):
    """What stands before a route's handler."""

    NONE = "none"  # discovery: counted, no faults
    CONTROL = "control"  # control API and health: not counted, no faults
    FAULTS = "faults"  # token endpoints: latency and faults
    CXONE = "cxone"  # adapter 1 API: faults, then a bearer token from /auth/token
    OUTBOUND = "outbound"  # adapter 2 API: faults, then a bearer token from /oauth/token


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint: its ``name`` (as counted), path ``pattern`` (named groups become
    ``Request.params``), handlers by method, its ``guard`` and its body cap, bytes."""

    name: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]
    guard: Guard
    max_body_bytes: int = MAX_BODY_BYTES


_API = r"(?i:/inContactAPI/services)/v(?P<version>[0-9]{1,3})\.0"
ROUTES = (
    Route(
        "openid_configuration",
        re.compile(r"/\.well-known/openid-configuration"),
        {"GET": tokens.openid_configuration},
        Guard.NONE,
    ),
    Route(
        "cxone_configuration",
        re.compile(r"/\.well-known/cxone-configuration"),
        {"GET": tokens.cxone_configuration},
        Guard.NONE,
    ),
    Route(
        tokens.AUTH_ENDPOINT,
        re.compile(r"/auth/token"),
        {"POST": tokens.auth_token},
        Guard.FAULTS,
    ),
    Route(
        tokens.OAUTH_ENDPOINT,
        re.compile(r"/oauth/token"),
        {"POST": tokens.oauth_token},
        Guard.FAULTS,
    ),
    Route(  # before dnc_records, though that one's path needs /records and cannot take it
        "dnc_search",
        re.compile(_API + r"/dnc-groups/search"),
        {"POST": dnc_listing.search_records},
        Guard.CXONE,
    ),
    Route(
        "dnc_records",
        re.compile(_API + r"/dnc-groups/(?P<group_id>[^/]+)/records"),
        {
            "GET": dnc_listing.list_records,
            "POST": dnc_groups.add_records,
            "DELETE": dnc_groups.expire_records,
        },
        Guard.CXONE,
    ),
    Route(
        "contacts",
        re.compile(r"/api/v2/outbound/contacts"),
        {"GET": contacts.list_contacts, "POST": contacts.upsert_contacts},
        Guard.OUTBOUND,
    ),
    Route("healthz", re.compile(r"/healthz"), {"GET": control.healthz}, Guard.CONTROL),
    Route("control_state", re.compile(r"/_sandbox/state"), {"GET": control.state}, Guard.CONTROL),
    Route(
        "control_journal", re.compile(r"/_sandbox/journal"), {"GET": control.journal}, Guard.CONTROL
    ),
    Route("control_reset", re.compile(r"/_sandbox/reset"), {"POST": control.reset}, Guard.CONTROL),
    Route(
        "control_faults", re.compile(r"/_sandbox/faults"), {"POST": control.faults}, Guard.CONTROL
    ),
    Route(
        "control_dnc_records",
        re.compile(r"/_sandbox/dnc-groups/(?P<group_id>[^/]+)/records"),
        {"POST": control.change_records},
        Guard.CONTROL,
        CONTROL_MAX_BODY_BYTES,
    ),
)
_BEARER_ISSUER = {Guard.CXONE: tokens.AUTH_ENDPOINT, Guard.OUTBOUND: tokens.OAUTH_ENDPOINT}
_API_GUARDS = (Guard.CXONE, Guard.OUTBOUND)
"""The API calls whose answer can be lost (``lost_reply_rate``): writes and reads alike."""


class SandboxApp:
    """The ASGI application around one ``Sandbox`` (``app.sandbox``: tests read and change
    it directly)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point: ``http`` and ``lifespan`` scopes; WebSockets are refused."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start-up and shutdown; with a state file, tenant data is saved every
        ``SAVE_EVERY_S`` while it changes, and once more at shutdown."""
        saver: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.sandbox.settings.state_file:
                    saver = asyncio.create_task(self._keep_saving())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if saver is not None:
                    saver.cancel()
                    self._save()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _keep_saving(self) -> None:
        saved: object = persist.changes(self.sandbox.state)
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            current = persist.changes(self.sandbox.state)
            if current != saved:
                self._save()
                saved = current

    def _save(self) -> None:
        try:
            persist.save(self.sandbox.state, Path(self.sandbox.settings.state_file))
        except OSError as exc:
            log.error("could not save the sandbox state file: %s", exc.strerror or exc)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, params = _match(scope["path"])
        if route is None:
            response = error(404, "not_found", "no such path")
        elif scope["method"] not in route.methods:
            allow = ", ".join(route.methods).encode()
            response = error(405, "method_not_allowed", "method not allowed", ((b"allow", allow),))
        else:
            try:
                body = await read_body(scope, receive, route.max_body_bytes)
            except ClientGone:
                return
            except BodyTooLarge:
                cap = route.max_body_bytes
                response = error(413, "body_too_large", f"body is over {cap} bytes")
            else:
                request = _request(scope, body, params)
                response = await self._guarded(route, request, receive)
        await send_json(send, response.status, response.body, response.headers)
        self._count(route, response.status)

    async def _guarded(self, route: Route, request: Request, receive: Receive) -> Response:
        if route.guard in (Guard.FAULTS, Guard.CXONE, Guard.OUTBOUND):
            refusal = await self._fault(receive)
            if refusal is not None:
                return refusal
        issuer = _BEARER_ISSUER.get(route.guard)
        if issuer is not None:
            refusal = tokens.bearer_refusal(self.sandbox, request, issuer)
            if refusal is not None:
                return refusal
        if route.name == "dnc_records" and request.method == "DELETE":
            await self._slow_delete()
        response = self._call(route.methods[request.method], request)
        if (
            route.guard in _API_GUARDS
            and response.status < 300
            and lose_reply(self.sandbox.injector, self.sandbox.config)
        ):
            await hang(receive, self.sandbox.config.hang_s)  # answered, but the answer is lost
            return error(504, "gateway_timeout", "injected lost reply")
        return response

    async def _fault(self, receive: Receive) -> Response | None:
        """Sleep the latency, then the fault that replaces this answer, if any."""
        config = self.sandbox.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        config = self.sandbox.config  # may have changed during the sleep
        now_s = self.sandbox.now()
        fault = self.sandbox.injector.draw(config, now_s)
        if fault is None:
            return None
        if fault.kind == "timeout":
            await hang(receive, config.hang_s)
        return fault_response(fault, config.retry_after_mode, now_s)

    async def _slow_delete(self) -> None:
        """Sleep ``delete_latency_ms`` before a DNC-group DELETE is applied. A client that
        gives up meanwhile does not cut it short: the expiry lands anyway, late, as a slow
        server's write would."""
        delay_ms = self.sandbox.config.delete_latency_ms
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)

    def _call(self, handler: Handler, request: Request) -> Response:
        try:
            return handler(self.sandbox, request)
        except BadRequest as exc:
            return error(400, "invalid_request", str(exc))
        except Exception:
            log.exception("internal error", extra={"fields": {"path": request.path}})
            return error(500, "internal_error", "internal error")

    def _count(self, route: Route | None, status: int) -> None:
        if route is None:
            self.sandbox.state.requests["unknown"][status] += 1
        elif route.guard is not Guard.CONTROL:
            self.sandbox.state.requests[route.name][status] += 1


def _match(path: str) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is not None:
            return route, found.groupdict()
    return None, {}


def _request(scope: Scope, body: bytes, params: dict[str, str]) -> Request:
    headers: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        headers.setdefault(bytes(key), bytes(value))
    host = header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}".encode()
    return Request(
        method=scope["method"],
        path=scope["path"],
        query=parse_query(scope.get("query_string", b"")),
        headers=headers,
        body=body,
        base_url="http://" + host.decode("latin-1"),
        params=params,
    )
