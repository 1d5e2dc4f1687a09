"""The OpenAPI 3.1 document of the receiver, served at ``GET /openapi.json``.

The request schema is generated from ``dnc.events.EventBody``, so the document cannot drift
from what is validated. Usable by schemathesis and by CXone integrators.
"""

from __future__ import annotations

from typing import Any

from dnc.events import EventBody
from receiver.batch_openapi import BATCH_SCHEMAS, batch_operation
from receiver.batch_payload import BATCH_PATH

EVENT_PATHS = ("/v1/events", "/webhook")
NUMBER_PATH = "/v1/numbers/{number}"

_PROBLEM = {
    "type": "object",
    "required": ["field", "reason", "message"],
    "properties": {
        "field": {"type": "string", "description": "The body field, as the caller spelled it."},
        "reason": {"type": "string", "description": "Stable snake_case code."},
        "message": {"type": "string"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Stable snake_case code."},
        "message": {"type": "string"},
        "problems": {"type": "array", "items": _PROBLEM},
    },
}
_ACCEPTED = {
    "type": "object",
    "required": ["status", "eventId", "warnings"],
    "properties": {
        "status": {"enum": ["queued", "duplicate", "superseded"]},
        "eventId": {"type": "string"},
        "warnings": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Sentences: how a field was read (a number written in a form its "
            "country has retired, stored under today's number; an opt-out's number the "
            "installed numbering metadata does not know; no time zone; a time after receipt, "
            "recorded as the receipt time; a raw '+' in a form body; a JSON body sent as form) "
            "and each optional field dropped from an opt-out, with why.",
        },
        "notes": {
            "type": "array",
            "items": _PROBLEM,
            "description": "Present only when a field was read with an adjustment, one entry "
            "per note (its sentence is in warnings too). phoneNumber plan_change: written in a "
            "form its country has retired (Mexico's +52 1 and 044/045, Brazil's 8-digit "
            "mobiles, ...; docs/numbering-plans.md), recorded under the number the subscriber "
            "is dialled at today, the change named in the message. phoneNumber "
            "unverified_number (opt-outs only): a possible length for its country in a range "
            "the installed metadata does not know; kept and pushed, dead-lettered with "
            "CXone's reason if CXone refuses it (an opt-in with such a number is refused, "
            "invalid_number). timestamp after_receipt; timestamp / expiresAt no_time_zone.",
        },
        "aliases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["e164", "status"],
                "properties": {
                    "e164": {"type": "string", "description": "The other form, E.164."},
                    "status": {
                        "enum": ["queued", "duplicate", "superseded"],
                        "description": "What recording the opt-out under this form did "
                        "(superseded: the form has a newer event of its own, such as a "
                        "later opt-in naming it).",
                    },
                },
            },
            "description": "Present only for an opt-out whose subscriber is reached under "
            "other E.164 forms (Argentina: +54 9 <area> <number> for voice and +54 <area> "
            "<number> for SMS): the opt-out was recorded under each of them too, in the same "
            "atomic write, each form its own number for the sync. status is the event's own. "
            "An opt-in is never spread: it lifts protection only from the form it names.",
        },
        "dropped": {
            "type": "array",
            "items": _PROBLEM,
            "description": "Present only when an optional field was dropped from an opt-out "
            "(metadata, expiresAt, region, eventId): the reason and message an opt-in with "
            "the same problem is refused with. The opt-out is recorded without the field (no "
            "expiry: permanent) and the problem kept in its audit record.",
        },
    },
}
_ERROR_CODES = {
    "400": "Body is not valid JSON or form data.",
    "401": "Missing or wrong credentials.",
    "408": "The body (or the request head) did not arrive in time; the connection is closed.",
    "409": "eventId was already used for a different event.",
    "413": "Body over the size cap.",
    "415": "Content type is not JSON or form.",
    "422": "A field is missing or invalid; each is named with its reason. An opt-out is "
    "refused only when its number cannot be identified (phoneNumber: not a number, no country, "
    "wrong length, ambiguous, or possible only without its area code; region when the number "
    "has no country code), its eventName is unknown or its timestamp is unusable (not a time, "
    "before 2000). An opt-in is also refused for a number the installed numbering metadata "
    "does not know (invalid_number), for any bad optional field (metadata over the cap or not "
    "an object, any expiresAt, an unknown or malformed region, a malformed eventId) and for a "
    "timestamp more than DNC_INTAKE_MAX_FUTURE_SKEW_S ahead (in_future).",
    "431": "Request line and headers over the cap; the connection is closed.",
    "503": "Redis unavailable; retry after Retry-After seconds.",
}
_DESCRIPTION = (
    "Opt-outs are kept, opt-ins must be clean. An opt-out with a bad optional field "
    "(metadata over the cap or not an object; expiresAt not a time, at or before the event "
    "time, already past, before 2000 or after 9999; an unknown or malformed region for a "
    "number written with its country code; a malformed eventId) is recorded without it (no "
    "expiry: permanent, the stricter reading) and answered 202 with a warning and a 'dropped' "
    "entry per field; an opt-in with the same problem is refused (422). An event time later "
    "than receipt is recorded as the receipt time (the time sent kept, with a warning); an "
    "opt-in more than DNC_INTAKE_MAX_FUTURE_SKEW_S ahead is refused. A time without a zone is "
    "read in DNC_INTAKE_NAIVE_TIME_ZONE (UTC by default). A form body that is a JSON object "
    "is read as JSON. A number written in a form its country has retired is recorded under "
    "today's number, with a warning (notes: plan_change). An opt-out whose number has a "
    "possible length but a range the installed numbering metadata does not know is kept, with "
    "a warning (notes: unverified_number); an opt-in with it is refused (invalid_number). An "
    "opt-out is also recorded under every other E.164 form of its subscriber (aliases), all "
    "or none; an opt-in only under the form it names."
)


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
_NUMBER_HISTORY = {
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _event_operation() -> dict[str, Any]:
    responses: dict[str, Any] = {
        "202": {
            "description": "Recorded (queued, duplicate or superseded); an opt-out possibly "
            "without a bad optional field, named in warnings and dropped; a number read with "
            "an adjustment, named in warnings and notes; an opt-out's other E.164 forms in "
            "aliases.",
            "content": _json(_ref("Accepted")),
        },
    }
    for code, text in _ERROR_CODES.items():
        responses[code] = {"description": text, "content": _json(_ref("Error"))}
    return {
        "summary": "Record an opt-in or opt-out event",
        "description": _DESCRIPTION,
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


def _number_operation() -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "The number's history.", "content": _json(_ref("NumberHistory"))}
    }
    for code, text in _NUMBER_ERRORS.items():
        responses[code] = {"description": text, "content": _json(_ref("Error"))}
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


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document as a JSON-ready dict."""
    body_schema = EventBody.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = body_schema.pop("$defs", {})  # Action, JsonValue: where the $refs point
    paths: dict[str, Any] = {path: {"post": _event_operation()} for path in EVENT_PATHS}
    paths[BATCH_PATH] = {"post": batch_operation()}
    paths[NUMBER_PATH] = {"get": _number_operation()}
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
                "NumberHistory": _NUMBER_HISTORY,
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
