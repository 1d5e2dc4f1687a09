"""The OpenAPI 3.1 document of the receiver, served at ``GET /openapi.json``.

The request schema is generated from ``dnc.events.EventBody``, so the document cannot drift
from what is validated. Usable by schemathesis and by CXone integrators. Each route's
description is its own module's: ``receiver.event_openapi``, ``receiver.batch_openapi``,
``receiver.number_openapi``.
"""

from __future__ import annotations

from typing import Any

from dnc.events import EventBody
from receiver.batch_openapi import BATCH_SCHEMAS, batch_operation
from receiver.batch_payload import BATCH_PATH
from receiver.event_openapi import ACCEPTED_SCHEMA, ERROR_SCHEMA, event_operation
from receiver.number_openapi import NUMBER_HISTORY_SCHEMA, NUMBER_PATH, number_operation

__all__ = ["EVENT_PATHS", "NUMBER_PATH", "build_document"]

EVENT_PATHS = ("/v1/events", "/webhook")


def _plain_get(summary: str, media: str, *, unavailable: str | None = None) -> dict[str, Any]:
    """A ``get`` operation with no authentication: 200 with ``media``, 405 for any other
    method (the Allow header says GET), and 503 described by ``unavailable`` when given."""
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {media: {}}},
        "405": {"description": "Any method but GET or HEAD; the Allow header says GET, HEAD."},
    }
    if unavailable is not None:
        responses["503"] = {"description": unavailable, "content": {"application/json": {}}}
    return {"get": {"summary": summary, "security": [], "responses": responses}}


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document as a JSON-ready dict."""
    body_schema = EventBody.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = body_schema.pop("$defs", {})  # Action, JsonValue: where the $refs point
    paths: dict[str, Any] = {path: {"post": event_operation()} for path in EVENT_PATHS}
    paths[BATCH_PATH] = {"post": batch_operation()}
    paths[NUMBER_PATH] = {"get": number_operation()}
    paths["/healthz"] = _plain_get("Process is alive", "application/json")
    paths["/readyz"] = _plain_get(
        "Redis is reachable and will not evict keys",
        "application/json",
        unavailable="Redis unreachable (redis_unavailable, with Retry-After) or its eviction "
        "policy is not noeviction (redis_eviction_policy, unless DNC_REDIS_ALLOW_EVICTION).",
    )
    paths["/metrics"] = _plain_get("Prometheus metrics", "text/plain")
    paths["/openapi.json"] = _plain_get("This OpenAPI document", "application/json")
    return {
        "openapi": "3.1.0",
        "info": {"title": "cxone-dnc-sync receiver", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                **nested,
                "EventBody": body_schema,
                "Accepted": ACCEPTED_SCHEMA,
                "Error": ERROR_SCHEMA,
                "NumberHistory": NUMBER_HISTORY_SCHEMA,
                **BATCH_SCHEMAS,
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Signature"},
                "signatureTimestamp": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Signature-Timestamp",
                },
            },
        },
    }
