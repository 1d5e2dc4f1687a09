"""The control API, for tests and developers: no authentication (a loopback dev tool; do not
expose the port).

``GET /_sandbox/state`` the whole state and the current fault config;
``GET /_sandbox/journal?after=<seq>&limit=<n>`` the write journal (``sandbox.journal``) page by
page; ``POST /_sandbox/reset`` clears records, contacts, the journal, tokens and counters
(``{"config": true}`` also restores the start-up fault config); ``POST /_sandbox/faults``
changes any ``FaultConfig`` fields given in a JSON object and answers the new config (400
naming every bad field, nothing changed); ``GET /healthz``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sandbox.context import Sandbox
from sandbox.http import BadRequest, Request, Response
from sandbox.settings import FaultConfig


def healthz(sandbox: Sandbox, request: Request) -> Response:
    """``{"status": "alive"}``."""
    return Response(200, {"status": "alive"})


def state(sandbox: Sandbox, request: Request) -> Response:
    """The whole state (``SandboxState.snapshot``) plus ``config``, ``tenantId``,
    ``apiVersion``."""
    body = sandbox.state.snapshot(sandbox.now())
    body["config"] = sandbox.config.model_dump(mode="json")
    body["tenantId"] = sandbox.settings.tenant_id
    body["apiVersion"] = f"v{sandbox.settings.api_version}.0"
    return Response(200, body)


JOURNAL_PAGE = 1000
"""Most journal entries one ``GET /_sandbox/journal`` answers."""


def journal(sandbox: Sandbox, request: Request) -> Response:
    """Journal entries with a sequence number above ``after`` (default 0), oldest first, at
    most ``limit`` (default and most ``JOURNAL_PAGE``): ``{"entries", "firstSeq", "nextSeq",
    "dropped", "more"}``. ``more``: entries beyond this page exist (ask again with ``after`` =
    the last ``seq``). Entries were lost to the reader when the first one's ``seq`` is above
    ``after + 1`` (dropped as the journal outgrew its cap, or cleared by a reset)."""
    after = request.query_int("after", 0, 0, 1 << 53)
    limit = request.query_int("limit", JOURNAL_PAGE, 1, JOURNAL_PAGE)
    kept = sandbox.state.journal
    page = kept.page(after, limit)
    last = page[-1].seq if page else after
    return Response(
        200,
        {
            "entries": [entry.as_json() for entry in page],
            "firstSeq": kept.first_seq,
            "nextSeq": kept.next_seq,
            "dropped": kept.dropped,
            "more": last < kept.next_seq - 1,
        },
    )


def reset(sandbox: Sandbox, request: Request) -> Response:
    """Clear the state; the optional body ``{"config": true}`` restores the config too."""
    body: Any = request.json() if request.body.strip() else {}
    if not isinstance(body, dict) or not isinstance(body.get("config", False), bool):
        raise BadRequest('body must be empty or {"config": true|false}')
    sandbox.reset(config=body.get("config", False))
    return Response(200, {"status": "reset", "config": sandbox.config.model_dump(mode="json")})


def faults(sandbox: Sandbox, request: Request) -> Response:
    """Merge the JSON object into the fault config; 400 with ``problems`` when invalid."""
    changes = request.json()
    if not isinstance(changes, dict):
        raise BadRequest("body must be a JSON object of fault settings")
    try:
        config = FaultConfig.model_validate(sandbox.config.model_dump() | changes)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        return Response(400, {"error": "invalid_config", "problems": problems})
    sandbox.configure(config)
    return Response(200, {"config": config.model_dump(mode="json")})
