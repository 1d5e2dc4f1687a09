"""The OpenAPI description of ``POST /v1/events`` (alias ``/webhook``), added to the document
``receiver.openapi.build_document`` serves: the ``Accepted`` and ``Error`` schemas, the
operation, and the ``$ref`` helpers the other routes' descriptions share."""

from __future__ import annotations

from typing import Any

_PROBLEM = {
    "type": "object",
    "required": ["field", "reason", "message"],
    "properties": {
        "field": {"type": "string", "description": "The body field, as the caller spelled it."},
        "reason": {"type": "string", "description": "Stable snake_case code."},
        "message": {"type": "string"},
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Stable snake_case code."},
        "message": {"type": "string"},
        "problems": {"type": "array", "items": _PROBLEM},
    },
}
ACCEPTED_SCHEMA = {
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
    "409": "An opt-in's eventId was already used for a different event (an opt-out is "
    "recorded without it instead: 202 with a warning).",
    "413": "Body over the size cap.",
    "405": "Any method but POST; the Allow header says POST.",
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


def ref(name: str) -> dict[str, str]:
    """A ``$ref`` to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """A ``content`` map with ``schema`` as its one ``application/json`` body."""
    return {"application/json": {"schema": schema}}


def event_operation() -> dict[str, Any]:
    """The ``post`` operation of each event path: its body, security and every answer."""
    responses: dict[str, Any] = {
        "202": {
            "description": "Recorded (queued, duplicate or superseded); an opt-out possibly "
            "without a bad optional field, named in warnings and dropped; a number read with "
            "an adjustment, named in warnings and notes; an opt-out's other E.164 forms in "
            "aliases.",
            "content": json_content(ref("Accepted")),
        },
    }
    for code, text in _ERROR_CODES.items():
        responses[code] = {"description": text, "content": json_content(ref("Error"))}
    return {
        "summary": "Record an opt-in or opt-out event",
        "description": _DESCRIPTION,
        "security": [{"bearer": []}, {"signature": [], "signatureTimestamp": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref("EventBody")},
                "application/x-www-form-urlencoded": {"schema": ref("EventBody")},
            },
        },
        "responses": responses,
    }
