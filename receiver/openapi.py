"""The OpenAPI 3.1 document of the receiver, served at ``GET /openapi.json``.

The request schema is generated from ``dnc.events.EventBody``, so the document cannot drift
from what is validated. Usable by schemathesis and by CXone integrators.
"""

from __future__ import annotations

from typing import Any

from dnc.events import EventBody

EVENT_PATHS = ("/v1/events", "/webhook")

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Stable snake_case code."},
        "message": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_ACCEPTED = {
    "type": "object",
    "required": ["status", "eventId", "warnings"],
    "properties": {
        "status": {"enum": ["queued", "duplicate", "superseded"]},
        "eventId": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}
_ERROR_CODES = {
    "400": "Body is not valid JSON or form data.",
    "401": "Missing or wrong credentials.",
    "408": "The body (or the request head) did not arrive in time; the connection is closed.",
    "409": "eventId was already used for a different event.",
    "413": "Body over the size cap.",
    "415": "Content type is not JSON or form.",
    "422": "A field is missing or invalid; each is named with its reason.",
    "431": "Request line and headers over the cap; the connection is closed.",
    "503": "Redis unavailable; retry after Retry-After seconds.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _event_operation() -> dict[str, Any]:
    responses: dict[str, Any] = {
        "202": {
            "description": "Recorded (queued, duplicate or superseded).",
            "content": _json(_ref("Accepted")),
        },
    }
    for code, text in _ERROR_CODES.items():
        responses[code] = {"description": text, "content": _json(_ref("Error"))}
    return {
        "summary": "Record an opt-in or opt-out event",
        "security": [{"bearer": []}, {"signature": [], "signatureTimestamp": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref("EventBody")},
                "application/x-www-form-urlencoded": {"schema": _ref("EventBody")},
            },
        },
        "responses": responses,
    }


def _plain_get(summary: str, media: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": [],
            "responses": {"200": {"description": "OK", "content": {media: {}}}},
        }
    }


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document as a JSON-ready dict."""
    body_schema = EventBody.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = body_schema.pop("$defs", {})  # Action, JsonValue: where the $refs point
    paths: dict[str, Any] = {path: {"post": _event_operation()} for path in EVENT_PATHS}
    paths["/healthz"] = _plain_get("Process is alive", "application/json")
    paths["/readyz"] = _plain_get("Redis is reachable (503 when not)", "application/json")
    paths["/metrics"] = _plain_get("Prometheus metrics", "text/plain")
    return {
        "openapi": "3.1.0",
        "info": {"title": "cxone-dnc-sync receiver", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                **nested,
                "EventBody": body_schema,
                "Accepted": _ACCEPTED,
                "Error": _ERROR,
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
