"""The control API, for tests and developers: no authentication (a loopback dev tool; do not
expose the port).

``GET /_sandbox/state`` the whole state and the current fault config;
``POST /_sandbox/reset`` clears records, contacts, tokens and counters (``{"config": true}``
also restores the start-up fault config); ``POST /_sandbox/faults`` changes any
``FaultConfig`` fields given in a JSON object and answers the new config (400 naming every bad
field, nothing changed); ``GET /healthz``.
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
