"""The OpenAPI description of ``POST /v1/events:batch`` (``receiver.batch``), added to the
document ``receiver.openapi.build_document`` serves. Refers to its ``EventBody``,
``Accepted``, ``Error`` and ``Problem``-shaped schemas by ``$ref``."""

from __future__ import annotations

import json
from typing import Any

from receiver.batch_payload import NDJSON_TYPES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_PROBLEMS = {
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
}
_INDEX = {"type": "integer", "minimum": 0, "description": "Position of the event in the request."}

BATCH_SCHEMAS: dict[str, Any] = {
    "BatchAccepted": {
        "allOf": [
            _ref("Accepted"),
            {"type": "object", "required": ["index"], "properties": {"index": _INDEX}},
        ],
        "description": "A recorded event: the body POST /v1/events answers with 202, plus "
        "its index.",
    },
    "BatchRejected": {
        "type": "object",
        "required": ["index", "status", "httpStatus", "error", "message", "problems"],
        "properties": {
            "index": _INDEX,
            "status": {"const": "rejected"},
            "httpStatus": {
                "enum": [409, 422],
                "description": "What POST /v1/events would have answered for this event alone.",
            },
            "error": {"enum": ["invalid_event", "id_conflict"]},
            "message": {"type": "string"},
            "problems": _PROBLEMS,
        },
        "description": "A refused event, kept in the rejected stream with its own JSON.",
    },
    "BatchResult": {
        "type": "object",
        "required": ["results", "accepted", "rejected"],
        "properties": {
            "results": {
                "type": "array",
                "items": {"oneOf": [_ref("BatchAccepted"), _ref("BatchRejected")]},
                "description": "One entry per event, in request order.",
            },
            "accepted": {"type": "integer", "description": "Events recorded."},
            "rejected": {"type": "integer", "description": "Events refused."},
        },
    },
}

_EXAMPLE_EVENTS = [
    {"phoneNumber": "(202) 555-0123", "eventName": "optOut", "timestamp": 1767225600000},
    {"phoneNumber": "73827", "eventName": "optOut", "timestamp": "2026-01-01T00:00:00Z"},
]
_EXAMPLE_QUEUED = {
    "index": 0, "status": "queued", "eventId": "d-1f0c3a9e5b7d4c2a8e6f0b1d3c5a7e9f",
    "warnings": [],
}  # fmt: skip
_EXAMPLE_207 = {
    "results": [
        _EXAMPLE_QUEUED,
        {"index": 1, "status": "rejected", "httpStatus": 422, "error": "invalid_event",
         "message": "one or more fields are missing or invalid",
         "problems": [{"field": "phoneNumber", "reason": "too_short",
                       "message": "phoneNumber has too few digits for its country"}]},
    ],
    "accepted": 1,
    "rejected": 1,
}  # fmt: skip
_ERRORS = {
    "400": "Not a JSON array of objects / not NDJSON of objects (the message names the "
    "element or line).",
    "401": "Missing or wrong credentials (a bearer secret, or X-Signature over the whole body).",
    "405": "Any method but POST.",
    "408": "The body did not arrive within DNC_RECEIVER_BODY_TIMEOUT_S; the connection is closed.",
    "413": "body_too_large: over DNC_RECEIVER_MAX_BATCH_BODY_BYTES; too_many_events: more than "
    "DNC_RECEIVER_MAX_BATCH_EVENTS events (default 1000), with limit and events in the body.",
    "415": "Content type is not application/json or application/x-ndjson, an unknown "
    "charset, or a Content-Encoding.",
    "422": "empty_batch: no event in the body.",
    "431": "Request line and headers over the cap; the connection is closed.",
    "503": "Redis unavailable (for an event or for keeping a refusal): nothing is answered "
    "per event; resend the whole batch after Retry-After seconds (what was recorded comes "
    "back as duplicate).",
}


def batch_operation() -> dict[str, Any]:
    """The ``post`` operation of ``/v1/events:batch``."""
    results = {"application/json": {"schema": _ref("BatchResult"), "example": _EXAMPLE_207}}
    responses: dict[str, Any] = {
        "202": {
            "description": "Every event recorded (queued, duplicate or superseded).",
            "content": {
                "application/json": {
                    "schema": _ref("BatchResult"),
                    "example": {
                        "results": [_EXAMPLE_QUEUED],
                        "accepted": 1,
                        "rejected": 0,
                    },
                }
            },
        },
        "207": {
            "description": "Some events refused (each with its httpStatus and problems, kept "
            "in the rejected stream); the others recorded.",
            "content": results,
        },
    }
    for code, text in _ERRORS.items():
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return {
        "summary": "Record many opt-in / opt-out events in one request",
        "description": "Each event is judged exactly as POST /v1/events judges one (the same "
        "rules, warnings, dropped optional fields, alias forms, eventId conflicts) and "
        "recorded in request order: an opt-out and an opt-in of one number in one batch end "
        "as they would sent one after the other. The answer comes once Redis holds every "
        "recorded event and every refusal. Authenticated as POST /v1/events (an HMAC "
        "signature covers the whole body).",
        "security": [{"bearer": []}, {"signature": [], "signatureTimestamp": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "description": "An event, shaped as EventBody. One that breaks "
                            "EventBody is refused on its own (its entry in a 207), not the "
                            "batch: the request is valid whatever its events hold.",
                        },
                        "description": "At most DNC_RECEIVER_MAX_BATCH_EVENTS events (default "
                        "1000; more: 413 too_many_events).",
                    },
                    "example": _EXAMPLE_EVENTS,
                },
                **{
                    media: {
                        "schema": {"type": "string"},
                        "description": "One event object per line; blank lines are ignored.",
                        "example": "\n".join(json.dumps(e) for e in _EXAMPLE_EVENTS) + "\n",
                    }
                    for media in sorted(NDJSON_TYPES)
                },
            },
        },
        "responses": responses,
    }
