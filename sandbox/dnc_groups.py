"""Adapter 1: the CXone Admin API's DNC group records, ``/inContactAPI/services/vNN.0/...``.

``POST .../dnc-groups/{groupId}/records`` adds (opt-out), ``DELETE`` on the same path expires
(opt-in), both with ``{"dncGroupRecords": [{"phoneNumber", "expiredDate"?}]}`` (at most
``MAX_RECORDS``), and both answer 200 even when records fail: one ``recordResults`` entry per
record, in order, with ``success`` and one of the error texts below.

``GET`` lists the active records as ``{"totalRecords", "dncGroupRecords"}``, each record
``{"phoneNumber", "expiredDate", "createdAt"}``, with the query parameters:

- ``skip`` (default 0) and ``top`` (default 100, at most ``MAX_PAGE``): the page;
- ``phoneNumber``: only that number (matched as digits);
- ``orderBy``: ``<field>[ asc|desc]``, comma-separated for more than one key, the first most
  significant; fields ``phoneNumber``, ``expiredDate`` (no expiry sorts last ascending),
  ``createdAt``. The default, and the final tie-break under any order, is ``phoneNumber asc``,
  so the order is total and paging with ``skip``/``top`` visits every record exactly once
  while nothing changes (a write between pages can shift the rest, as on any offset paging);
- ``fields``: a comma-separated subset of the record keys to return (always in the order
  above); ``totalRecords`` counts every record matched, not the page.

An unknown ``orderBy`` field or direction, or an unknown ``fields`` name, is a 400
``{"error": "invalid_request", "message", "parameter": "orderBy"|"fields"}``. The listing
gets the same latency, rate limit, injected errors and lost replies as the writes. Each
ordering is sorted once and kept until the group next changes (an add, an expiry, a lapse, an
out-of-band change), so paging an unchanged group costs about a page per call; the first page
after a change pays one sort of the group (about half a second at 1,000,000 records).

``POST .../dnc-groups/search?phoneNumber=<number>`` looks one number up across every group:
200 ``{"dncGroupRecords": [{"dncGroupId", "phoneNumber", "expiredDate", "createdAt"}]}``, the
active record of that number (matched as digits, exactly: no +1 reading) in each group that
holds one, in the order the groups are configured, ``[]`` when none does; a lapsed or expired
record is not shown. A missing, repeated or invalid ``phoneNumber`` is a 400 with
``"parameter": "phoneNumber"``. It gets the bearer check, latency, rate limit, injected
errors and lost replies of the records calls, and is counted as ``dnc_search``.

Assumed about the real listing (the public docs show ``skip``, ``top``, ``orderBy``, ``fields``
and ``totalRecords`` on Admin API list calls, not every detail): the ``orderBy`` syntax
(field, a space, ``asc``/``desc``; comma-separated keys), the field names accepted, where
records without an expiry sort, phone numbers compared as digit strings (not numerically),
the default order (the real one is not documented; a client should always send ``orderBy``
when it pages), ``top``'s cap and default, and the 400 shape (CXone's own error body differs;
the sandbox adds ``parameter``). Of the search, the public docs show the path, the method and
the ``phoneNumber`` parameter, not the answer: its shape (a ``dncGroupRecords`` list of listed
records with ``dncGroupId``, given as the sandbox's configured group id, a string), that only
active records are shown, the group order, and the 400 when ``phoneNumber`` is missing are
the sandbox's guesses.

A phone number is valid when it is a string of digits, optionally with ``+ - ( ) .`` and
spaces, holding 7-15 digits; it is stored and matched as those digits (``formattedPhone``).

Every record written is journaled (``sandbox.journal``), with the event the request's
``X-Dnc-Sync-Trace`` header says it stood for: a success (state changed) and an add of an
active number or an expiry of an absent one (``ALREADY_EXISTS``/``DOES_NOT_EXIST``: the
state already was the one asked, unchanged). Refused records are not journaled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sandbox.context import Sandbox
from sandbox.http import BadRequest, Request, Response, error
from sandbox.journal import OPT_IN, OPT_OUT, TRACE_HEADER, Trace, group_target
from sandbox.state import DncGroup, DncRecord, iso_ms

# The per-record error texts (fixed: clients may match them).
ALREADY_EXISTS = "Phone number already exists in the DNC group."
DOES_NOT_EXIST = "Phone number does not exist in the DNC group."
INVALID_PHONE = "Invalid phone number."
TEMPORARY_FAILURE = "Temporary failure processing record; try again."
INVALID_EXPIRED_DATE = "Invalid expiration date."

MAX_RECORDS = 1000
MAX_PAGE = 1000
_DIGITS = frozenset("0123456789")
_FORMATTING = frozenset(" +-().")


def add_records(sandbox: Sandbox, request: Request) -> Response:
    """Add each record to the group (opt-out); per-record results, always 200."""
    group = _group(sandbox, request)
    if group is None:
        return _no_group(request)
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
    group = _group(sandbox, request)
    if group is None:
        return _no_group(request)
    now_s = sandbox.now()
    group.sweep(now_s)
    records = _records(request)
    trace = Trace.parse(request.header(TRACE_HEADER))
    results = [
        _expire_one(sandbox, group, record, now_s, trace.event_for(i, record.get("phoneNumber")))
        for i, record in enumerate(records)
    ]
    return _result_set(results)


def list_records(sandbox: Sandbox, request: Request) -> Response:
    """``{"totalRecords", "dncGroupRecords"}``: active records, filtered, ordered, paged and
    cut to ``fields`` (see the module docstring); 400 naming ``orderBy`` or ``fields`` when
    either is not understood."""
    group = _group(sandbox, request)
    if group is None:
        return _no_group(request)
    skip = request.query_int("skip", 0, 0, 1_000_000_000)
    top = request.query_int("top", 100, 1, MAX_PAGE)
    wanted = request.query_value("phoneNumber")
    try:
        order = _order_by(request.query_value("orderBy"))
    except BadRequest as exc:
        return _bad_parameter("orderBy", str(exc))
    try:
        fields = _fields(request.query_value("fields"))
    except BadRequest as exc:
        return _bad_parameter("fields", str(exc))
    group.sweep(sandbox.now())
    records: Sequence[DncRecord]
    if wanted is not None:
        digits, valid = phone_digits(wanted)
        if not valid:
            raise BadRequest("phoneNumber must hold 7-15 digits")
        found = group.active.get(digits)
        records = [] if found is None else [found]
    else:
        key = tuple(order)
        records = group.ordered(key, partial(_arrange, key))
    page = [_cut(record.as_json(), fields) for record in records[skip : skip + top]]
    return Response(200, {"totalRecords": len(records), "dncGroupRecords": page})


def search_records(sandbox: Sandbox, request: Request) -> Response:
    """``{"dncGroupRecords": [{"dncGroupId", "phoneNumber", "expiredDate", "createdAt"}]}``:
    the active record of the ``phoneNumber`` query parameter (matched as digits) in each
    group holding one, groups in configured order; an empty list when none does. 400 naming
    ``phoneNumber`` when it is missing, repeated or not a phone number of 7-15 digits."""
    try:
        wanted = request.query_value("phoneNumber")
    except BadRequest as exc:
        return _bad_parameter("phoneNumber", str(exc))
    digits, valid = phone_digits(wanted)
    if not valid:
        return _bad_parameter(
            "phoneNumber", "phoneNumber is required: a phone number of 7-15 digits"
        )
    now_s = sandbox.now()
    found = []
    for group in sandbox.state.groups.values():
        group.sweep(now_s)
        record = group.active.get(digits)
        if record is not None:
            found.append({"dncGroupId": group.group_id} | record.as_json())
    return Response(200, {"dncGroupRecords": found})


def _arrange(order: tuple[tuple[str, bool], ...], records: list[DncRecord]) -> None:
    """Sort ``records`` in place by ``order`` ((field, descending) pairs, most significant
    first), ties broken by ``phoneNumber asc``: a total order, so pages are stable."""
    records.sort(key=_SORT_KEYS["phoneNumber"])
    for name, descending in reversed(order):
        records.sort(key=_SORT_KEYS[name], reverse=descending)  # stable, ties kept


RECORD_FIELDS = ("phoneNumber", "expiredDate", "createdAt")
"""The keys of a listed record, in the order they are shown; what ``fields`` may name."""
_NEVER = float("inf")  # a record without expiry sorts as expiring last
_SORT_KEYS: dict[str, Callable[[DncRecord], Any]] = {
    "phoneNumber": lambda r: r.phone_number,
    "expiredDate": lambda r: _NEVER if r.expires_at_s is None else r.expires_at_s,
    "createdAt": lambda r: r.created_at_s,
}
_DIRECTIONS = {"asc": False, "desc": True}


def _order_by(value: str | None) -> list[tuple[str, bool]]:
    """``orderBy`` as (field, descending) pairs, most significant first; ``BadRequest``
    (its text names no parameter) when a field or direction is unknown."""
    if value is None:
        return []
    order = []
    for part in value.split(","):
        words = part.split()
        if not 1 <= len(words) <= 2 or words[0] not in _SORT_KEYS:
            raise BadRequest(
                f"orderBy: cannot order by {part.strip()!r}; use one or more of "
                f"{', '.join(_SORT_KEYS)}, each optionally followed by asc or desc"
            )
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in _DIRECTIONS:
            raise BadRequest(f"orderBy: direction {words[1]!r} is neither asc nor desc")
        order.append((words[0], _DIRECTIONS[direction]))
    return order


def _fields(value: str | None) -> tuple[str, ...] | None:
    """``fields`` as the record keys to show (``None``: all); ``BadRequest`` when one is
    blank or unknown."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    unknown = [name for name in names if name not in RECORD_FIELDS]
    if unknown:
        raise BadRequest(
            f"fields: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(RECORD_FIELDS)}"
        )
    return tuple(name for name in RECORD_FIELDS if name in names)


def _cut(record: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    return record if fields is None else {name: record[name] for name in fields}


def _bad_parameter(name: str, message: str) -> Response:
    """400 for a query parameter not understood: ``{"error", "message", "parameter"}``."""
    return Response(400, {"error": "invalid_request", "message": message, "parameter": name})


def phone_digits(value: object) -> tuple[str, bool]:
    """The digits of ``value`` (``formattedPhone``) and whether it is a valid number."""
    text = value if isinstance(value, str) else ""
    digits = "".join(c for c in text if c in _DIGITS)
    valid = isinstance(value, str) and set(text) <= _DIGITS | _FORMATTING
    return digits, valid and 7 <= len(digits) <= 15


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


_LAST_YEAR = 9998


def _number_problem(sandbox: Sandbox, digits: str, valid: bool) -> str | None:
    if not valid or listed(sandbox.config.rejected_numbers, digits):
        return INVALID_PHONE
    if is_failing(sandbox, digits):
        return TEMPORARY_FAILURE
    return None


def is_failing(sandbox: Sandbox, digits: str) -> bool:
    """Whether ``digits`` are one of ``failing_numbers`` (see ``listed``)."""
    return listed(sandbox.config.failing_numbers, digits)


def listed(numbers: list[str], digits: str) -> bool:
    """Whether ``digits`` are one of ``numbers``, reading 10 digits also as the +1 national
    form (``2025550123`` matches ``+12025550123`` and the reverse)."""
    if digits in numbers:
        return True
    if len(digits) == 10:
        return "1" + digits in numbers
    return len(digits) == 11 and digits.startswith("1") and digits[1:] in numbers


def parse_expiry(value: object, now_s: float) -> float | None:
    """``None`` (no expiry) or the epoch seconds of a future ISO 8601 date (no zone: UTC);
    ``ValueError`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expiredDate is not a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() <= now_s:
        raise ValueError("expiredDate is not in the future")
    if moment.astimezone(UTC).year > _LAST_YEAR:  # listable as RFC 3339 UTC, year <= 9999
        raise ValueError("expiredDate is too far in the future")
    return moment.timestamp()


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


def _group(sandbox: Sandbox, request: Request) -> DncGroup | None:
    return sandbox.state.groups.get(request.params["group_id"])


def _no_group(request: Request) -> Response:
    return error(404, "not_found", f"DNC group {request.params['group_id']} does not exist")
