"""Adapter 1: the CXone Admin API's DNC group records, ``/inContactAPI/services/vNN.0/...``:
the writes.

``POST .../dnc-groups/{groupId}/records`` adds (opt-out), ``DELETE`` on the same path expires
(opt-in), both with ``{"dncGroupRecords": [{"phoneNumber", "expiredDate"?}]}`` (at most
``MAX_RECORDS``), and both answer 200 even when records fail: one ``recordResults`` entry per
record, in order, with ``success`` and one of the error texts below.

Listing a group and searching a number (``GET`` on the same path, ``POST .../search``), and
what is assumed of them where the public docs are silent: ``sandbox.dnc_listing``. How a
phone number and an expiry are read: ``sandbox.dnc_records``.

Every record written is journaled (``sandbox.journal``), with the event the request's
``X-Dnc-Sync-Trace`` header says it stood for: a success (state changed) and an add of an
active number or an expiry of an absent one (``ALREADY_EXISTS``/``DOES_NOT_EXIST``: the
state already was the one asked, unchanged). Refused records are not journaled.
"""

from __future__ import annotations

from typing import Any

from sandbox.context import Sandbox
from sandbox.dnc_listing import MAX_PAGE, RECORD_FIELDS, list_records, search_records
from sandbox.dnc_records import (
    find_group,
    is_failing,
    listed,
    no_group,
    parse_expiry,
    phone_digits,
)
from sandbox.http import BadRequest, Request, Response
from sandbox.journal import OPT_IN, OPT_OUT, TRACE_HEADER, Trace, group_target
from sandbox.state import DncGroup, DncRecord, iso_ms

__all__ = [
    "ALREADY_EXISTS",
    "DOES_NOT_EXIST",
    "INVALID_EXPIRED_DATE",
    "INVALID_PHONE",
    "MAX_PAGE",
    "MAX_RECORDS",
    "RECORD_FIELDS",
    "TEMPORARY_FAILURE",
    "add_records",
    "expire_records",
    "is_failing",
    "list_records",
    "listed",
    "parse_expiry",
    "phone_digits",
    "search_records",
]

# The per-record error texts (fixed: clients may match them).
ALREADY_EXISTS = "Phone number already exists in the DNC group."
DOES_NOT_EXIST = "Phone number does not exist in the DNC group."
INVALID_PHONE = "Invalid phone number."
TEMPORARY_FAILURE = "Temporary failure processing record; try again."
INVALID_EXPIRED_DATE = "Invalid expiration date."

MAX_RECORDS = 1000


def add_records(sandbox: Sandbox, request: Request) -> Response:
    """Add each record to the group (opt-out); per-record results, always 200."""
    group = find_group(sandbox, request)
    if group is None:
        return no_group(request)
    now_s = sandbox.now()
    group.sweep(now_s)
    records = _records(request)
    trace = Trace.parse(request.header(TRACE_HEADER))
    results = [
        _add_one(sandbox, group, record, now_s, trace.event_for(i, record.get("phoneNumber")))
        for i, record in enumerate(records)
    ]
    return _result_set(results)


def expire_records(sandbox: Sandbox, request: Request) -> Response:
    """Expire each record of the group now (opt-in); per-record results, always 200."""
    group = find_group(sandbox, request)
    if group is None:
        return no_group(request)
    now_s = sandbox.now()
    group.sweep(now_s)
    records = _records(request)
    trace = Trace.parse(request.header(TRACE_HEADER))
    results = [
        _expire_one(sandbox, group, record, now_s, trace.event_for(i, record.get("phoneNumber")))
        for i, record in enumerate(records)
    ]
    return _result_set(results)


def _add_one(
    sandbox: Sandbox,
    group: DncGroup,
    record: dict[str, Any],
    now_s: float,
    event_ms: int | None,
) -> dict[str, Any]:
    digits, valid = phone_digits(record.get("phoneNumber"))
    problem = _number_problem(sandbox, digits, valid)
    if problem is None and digits in group.active:
        problem = ALREADY_EXISTS
    expires_at_s = None
    if problem is None:
        try:
            expires_at_s = parse_expiry(record.get("expiredDate"), now_s)
        except (ValueError, OverflowError):  # out-of-range dates overflow
            problem = INVALID_EXPIRED_DATE
        else:
            group.active[digits] = DncRecord(digits, expires_at_s, now_s)
    elif problem == ALREADY_EXISTS:
        expires_at_s = _asked_expiry(record.get("expiredDate"), now_s)
    if problem in (None, ALREADY_EXISTS):
        _journal(sandbox, group, "POST", digits, OPT_OUT, expires_at_s, problem, event_ms, now_s)
    return _result(record, digits, problem)


def _expire_one(
    sandbox: Sandbox,
    group: DncGroup,
    record: dict[str, Any],
    now_s: float,
    event_ms: int | None,
) -> dict[str, Any]:
    digits, valid = phone_digits(record.get("phoneNumber"))
    problem = _number_problem(sandbox, digits, valid)
    if problem is None and digits not in group.active:
        problem = DOES_NOT_EXIST
    if problem is None:
        group.expire(digits, now_s)
    if problem in (None, DOES_NOT_EXIST):
        _journal(sandbox, group, "DELETE", digits, OPT_IN, None, problem, event_ms, now_s)
    return _result(record, digits, problem)


def _journal(
    sandbox: Sandbox,
    group: DncGroup,
    method: str,
    digits: str,
    action: str,
    expires_at_s: float | None,
    problem: str | None,
    event_ms: int | None,
    now_s: float,
) -> None:
    """Journal one record written (``problem`` ``None``: it changed the state)."""
    sandbox.state.journal.append(
        now_s=now_s,
        target=group_target(group.group_id),
        method=method,
        phone_number=digits,
        action=action,
        expired_date=None if expires_at_s is None else iso_ms(expires_at_s),
        changed=problem is None,
        event_ms=event_ms,
    )


def _asked_expiry(value: object, now_s: float) -> float | None:
    """The expiry an add asked for (epoch seconds), ``None`` when none or unreadable."""
    try:
        return parse_expiry(value, now_s)
    except (ValueError, OverflowError):
        return None


def _number_problem(sandbox: Sandbox, digits: str, valid: bool) -> str | None:
    if not valid or listed(sandbox.config.rejected_numbers, digits):
        return INVALID_PHONE
    if is_failing(sandbox, digits):
        return TEMPORARY_FAILURE
    return None


def _result(record: dict[str, Any], digits: str, problem: str | None) -> dict[str, Any]:
    return {
        "phoneNumber": record.get("phoneNumber"),
        "formattedPhone": digits,
        "success": problem is None,
        "error": problem,
    }


def _result_set(results: list[dict[str, Any]]) -> Response:
    errors = sum(1 for result in results if not result["success"])
    return Response(200, {"resultSet": {"errorCount": errors, "recordResults": results}})


def _records(request: Request) -> list[dict[str, Any]]:
    body = request.json()
    records = body.get("dncGroupRecords") if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise BadRequest("body must be an object with a dncGroupRecords list")
    if len(records) > MAX_RECORDS:
        raise BadRequest(f"at most {MAX_RECORDS} dncGroupRecords per request")
    if not all(isinstance(record, dict) for record in records):
        raise BadRequest("each of dncGroupRecords must be an object")
    return records
