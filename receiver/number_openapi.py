"""The OpenAPI description of ``GET /v1/numbers/{number}`` (``receiver.numbers``), added to the
document ``receiver.openapi.build_document`` serves: the ``NumberHistory`` schema and the
operation. Its refusals use the ``Error`` schema of ``receiver.event_openapi``."""

from __future__ import annotations

from typing import Any

from receiver.event_openapi import json_content, ref

NUMBER_PATH = "/v1/numbers/{number}"

_MS = {"type": "integer", "description": "UTC epoch milliseconds."}
_MAYBE_MS = {"type": ["integer", "null"], "description": "UTC epoch milliseconds, or null."}
_ROW = {"type": "object", "description": "An audit-store row: its columns by name."}
_TIMELINE_ENTRY = {
    "type": "object",
    "required": ["at_ms", "at", "kind", "number", "summary", "detail"],
    "properties": {
        "at_ms": {
            **_MS,
            "description": "When (UTC ms): an event's or a rejection's receipt, "
            "an application's settling.",
        },
        "at": {"type": "string", "description": "at_ms as RFC 3339 UTC."},
        "kind": {"enum": ["event", "rejection", "application"]},
        "number": {"type": "string", "description": "E.164."},
        "summary": {"type": "string", "description": "One line for humans."},
        "detail": {
            **_ROW,
            "description": "The record's columns (an event's JSON and a "
            "rejection's fields parsed).",
        },
    },
}
_GAP = {
    "type": "object",
    "required": [
        "stream",
        "after_id",
        "through_id",
        "missing",
        "from_ms",
        "from",
        "found_ms",
        "found",
    ],
    "properties": {
        "stream": {"type": "string", "description": "events, rejected, unauthenticated..."},
        "after_id": {"type": "string", "description": "Lost entries' ids are after this one."},
        "through_id": {"type": "string", "description": "...and before this one."},
        "missing": {
            "type": ["integer", "null"],
            "description": "Entries lost; null: an unknown number.",
        },
        "from_ms": {"type": "integer", "description": "Start of the period (UTC ms)."},
        "from": {"type": "string", "description": "from_ms as RFC 3339 UTC."},
        "found_ms": {"type": "integer", "description": "When the archive found it (UTC ms)."},
        "found": {"type": "string", "description": "found_ms as RFC 3339 UTC."},
    },
}
NUMBER_HISTORY_SCHEMA = {
    "type": "object",
    "required": [
        "number",
        "state",
        "last_application",
        "timeline",
        "truncated",
        "unarchived",
        "gaps",
        "purged_before_ms",
        "purged_before",
    ],
    "properties": {
        "number": {"type": "string", "description": "The number read, E.164."},
        "state": {
            "type": "object",
            "required": ["latest_event", "pending_since_ms", "retry", "dead_letter"],
            "properties": {
                "latest_event": {"type": ["object", "null"], "description": "Latest event."},
                "pending_since_ms": {
                    **_MAYBE_MS,
                    "description": "Receipt of the oldest "
                    "change not yet applied to CXone (UTC ms); null: none.",
                },
                "retry": {
                    "type": ["object", "null"],
                    "description": "Waiting out a backoff after temporary failures.",
                    "properties": {
                        "attempts": {"type": ["integer", "null"]},
                        "waiting_since_ms": _MAYBE_MS,
                        "first_failure_ms": _MAYBE_MS,
                        "deferred_until_ms": _MAYBE_MS,
                    },
                },
                "dead_letter": {
                    "type": ["object", "null"],
                    "description": "CXone refused the number for good: reason, event, deadAtMs.",
                },
            },
        },
        "last_application": {
            **_ROW,
            "type": ["object", "null"],
            "description": "What CXone was last asked for the number and answered (audit store).",
        },
        "timeline": {
            "type": "array",
            "items": _TIMELINE_ENTRY,
            "description": "The newest records, oldest first.",
        },
        "truncated": {"type": "boolean", "description": "Older records were left out."},
        "unarchived": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "Per stream, entries of all numbers not yet copied to the audit "
            "store: the newest records may be missing from the timeline while any is not 0.",
        },
        "gaps": {
            "type": "array",
            "items": _GAP,
            "description": "Stream entries of all numbers lost before the archive copied them, "
            "in a period reaching the timeline's first record or later (every gap when the "
            "timeline is empty), oldest first: the timeline may miss records of that period.",
        },
        "purged_before_ms": {
            **_MAYBE_MS,
            "description": "The latest retention purge's cutoff (UTC ms): records of all numbers "
            "received (applications: settled) before it were deleted, except each number's "
            "last queued event and last acknowledged application; null: nothing was purged.",
        },
        "purged_before": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "purged_before_ms as RFC 3339 UTC; null: nothing was purged.",
        },
    },
}
_NUMBER_ERRORS = {
    "401": "Missing or wrong credentials (an intake or a read bearer secret; needed even with "
    "DNC_RECEIVER_AUTH_DISABLED=true).",
    "405": "Any method but GET; the Allow header says GET.",
    "422": "The number (or region, limit) cannot be read; problems name it with the reason. "
    "Kept in the rejected stream, like every refusal.",
    "503": "Redis or the audit store cannot be read, or the store is not migrated; retry "
    "after Retry-After seconds.",
}


def number_operation() -> dict[str, Any]:
    """The ``get`` operation of ``NUMBER_PATH``: its parameters, security and every answer."""
    responses: dict[str, Any] = {
        "200": {
            "description": "The number's history.",
            "content": json_content(ref("NumberHistory")),
        }
    }
    for code, text in _NUMBER_ERRORS.items():
        responses[code] = {"description": text, "content": json_content(ref("Error"))}
    responses["405"]["headers"] = {
        "Allow": {"description": "The methods the path answers: GET.", "schema": {"const": "GET"}}
    }
    query = [
        (
            "region",
            {"type": "string"},
            "Region of a number without a country code (ISO "
            "3166-1 alpha-2, or none); default DNC_INTAKE_DEFAULT_REGION.",
        ),
        (
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200},
            "Newest timeline records returned.",
        ),
    ]
    return {
        "summary": "One number's current state and timeline",
        "description": "Read by intake bearer secrets (DNC_RECEIVER_BEARER_SECRETS) and "
        "DNC_AUDIT_READ_SECRETS only, whatever DNC_RECEIVER_AUTH_DISABLED says: it is personal "
        "data. The number in any form intake accepts (URL-encoded), read as intake reads it.",
        "security": [{"bearer": []}],
        "parameters": [
            {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}},
            *(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": schema,
                    "description": text,
                }
                for name, schema, text in query
            ),
        ],
        "responses": responses,
    }
