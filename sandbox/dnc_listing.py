"""Reading the CXone Admin API's DNC groups back: listing a group's records and searching one
number across every group.

``GET .../dnc-groups/{groupId}/records`` lists the active records as ``{"totalRecords",
"dncGroupRecords"}``, each record ``{"phoneNumber", "expiredDate", "createdAt"}``, with the
query parameters:

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sandbox.context import Sandbox
from sandbox.dnc_records import find_group, no_group, phone_digits
from sandbox.http import BadRequest, Request, Response
from sandbox.state import DncRecord

MAX_PAGE = 1000
RECORD_FIELDS = ("phoneNumber", "expiredDate", "createdAt")
"""The keys of a listed record, in the order they are shown; what ``fields`` may name."""
_NEVER = float("inf")  # a record without expiry sorts as expiring last
_SORT_KEYS: dict[str, Callable[[DncRecord], Any]] = {
    "phoneNumber": lambda r: r.phone_number,
    "expiredDate": lambda r: _NEVER if r.expires_at_s is None else r.expires_at_s,
    "createdAt": lambda r: r.created_at_s,
}
_DIRECTIONS = {"asc": False, "desc": True}


def list_records(sandbox: Sandbox, request: Request) -> Response:
    """``{"totalRecords", "dncGroupRecords"}``: active records, filtered, ordered, paged and
    cut to ``fields`` (see the module docstring); 400 naming ``orderBy`` or ``fields`` when
    either is not understood."""
    group = find_group(sandbox, request)
    if group is None:
        return no_group(request)
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
