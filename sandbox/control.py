"""The control API, for tests and developers: no authentication (a loopback dev tool; do not
expose the port).

``GET /_sandbox/state`` the whole state and the current fault config;
``GET /_sandbox/journal?after=<seq>&limit=<n>`` the write journal (``sandbox.journal``) page by
page; ``POST /_sandbox/reset`` clears records, contacts, the journal, tokens and counters
(``{"config": true}`` also restores the start-up fault config); ``POST /_sandbox/faults``
changes any ``FaultConfig`` fields given in a JSON object and answers the new config (400
naming every bad field, nothing changed); ``POST /_sandbox/dnc-groups/{groupId}/records``
changes a DNC group out of band (below); ``GET /healthz``.

Out-of-band changes stand for what a CXone admin or another integration does to a DNC group
behind this service's back (what a reconciliation must notice). The body is
``{"add": [{"phoneNumber", "expiredDate"?}], "delete": [phone, ...], "expire": [phone, ...]}``
(each list optional, at most ``MAX_OUT_OF_BAND`` items in all, in a body of at most
``app.CONTROL_MAX_BODY_BYTES``: 1,000,000 records are seeded in 10 calls), applied in that
order: ``add`` makes the number active (an active one gets the new expiry: ``updated``), with an
``expiredDate`` (ISO 8601 / RFC 3339, in the future) or none; ``delete`` removes the number
from the group, active or expired, as if it had never been there; ``expire`` sets an active
record's expiry to now, so it lapses (kept as expired, as a ``DELETE`` through the API
does). Numbers are read as the API reads them (``formattedPhone`` digits); the failing
numbers of the fault config do not apply. Anything unreadable is a 400 and nothing is
changed; an unknown group is a 404. The answer is 200 with the counts ``{"added",
"updated", "deleted", "expired", "unchanged"}`` (``unchanged``: a delete or expire of a
number not in the group). These changes are not journaled: the journal holds this
service's writes only (it has no notion of another source), so a history checker sees
them only through the state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from sandbox.context import Sandbox
from sandbox.dnc_records import parse_expiry, phone_digits
from sandbox.http import BadRequest, Request, Response, error
from sandbox.settings import FaultConfig
from sandbox.state import DncGroup, DncRecord


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


JOURNAL_PAGE = 1000
"""Most journal entries one ``GET /_sandbox/journal`` answers."""


def journal(sandbox: Sandbox, request: Request) -> Response:
    """Journal entries with a sequence number above ``after`` (default 0), oldest first, at
    most ``limit`` (default and most ``JOURNAL_PAGE``): ``{"entries", "firstSeq", "nextSeq",
    "dropped", "more"}``. ``more``: entries beyond this page exist (ask again with ``after`` =
    the last ``seq``). Entries were lost to the reader when the first one's ``seq`` is above
    ``after + 1`` (dropped as the journal outgrew its cap, or cleared by a reset)."""
    after = request.query_int("after", 0, 0, 1 << 53)
    limit = request.query_int("limit", JOURNAL_PAGE, 1, JOURNAL_PAGE)
    kept = sandbox.state.journal
    page = kept.page(after, limit)
    last = page[-1].seq if page else after
    return Response(
        200,
        {
            "entries": [entry.as_json() for entry in page],
            "firstSeq": kept.first_seq,
            "nextSeq": kept.next_seq,
            "dropped": kept.dropped,
            "more": last < kept.next_seq - 1,
        },
    )


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


MAX_OUT_OF_BAND = 100_000
"""Most items (adds, deletes and expiries together) one out-of-band change may hold: 1,000,000
records are seeded in 10 calls (the route's body cap, ``app.CONTROL_MAX_BODY_BYTES``, fits
100,000 adds with an ``expiredDate`` each)."""
_OUT_OF_BAND_KEYS = frozenset({"add", "delete", "expire"})


def change_records(sandbox: Sandbox, request: Request) -> Response:
    """Change a DNC group out of band (see the module docstring): 200 with the counts."""
    group = sandbox.state.groups.get(request.params["group_id"])
    if group is None:
        return error(404, "not_found", f"DNC group {request.params['group_id']} does not exist")
    body = request.json()
    if not isinstance(body, dict) or not set(body) <= _OUT_OF_BAND_KEYS:
        raise BadRequest('body must be an object with only "add", "delete" and "expire"')
    lists = {key: body.get(key, []) for key in sorted(_OUT_OF_BAND_KEYS)}
    if not all(isinstance(items, list) for items in lists.values()):
        raise BadRequest('"add", "delete" and "expire" must each be a list')
    if sum(len(items) for items in lists.values()) > MAX_OUT_OF_BAND:
        raise BadRequest(f"at most {MAX_OUT_OF_BAND} items in one change")
    now_s = sandbox.now()
    adds = [_out_of_band_add(item, i, now_s) for i, item in enumerate(lists["add"])]
    deletes = [_out_of_band_phone(item, "delete", i) for i, item in enumerate(lists["delete"])]
    expiries = [_out_of_band_phone(item, "expire", i) for i, item in enumerate(lists["expire"])]
    group.sweep(now_s)
    counts = dict.fromkeys(("added", "updated", "deleted", "expired", "unchanged"), 0)
    for digits, expires_at_s in adds:
        record = group.active.get(digits)
        if record is None:
            group.active[digits] = DncRecord(digits, expires_at_s, now_s)
            counts["added"] += 1
        else:
            group.active[digits] = replace(record, expires_at_s=expires_at_s)
            counts["updated"] += 1
    deleted = _delete(group, deletes)
    counts["deleted"] += deleted
    counts["unchanged"] += len(deletes) - deleted
    for digits in expiries:
        if digits in group.active:
            group.expire(digits, now_s)
            counts["expired"] += 1
        else:
            counts["unchanged"] += 1
    return Response(200, counts)


def _out_of_band_add(item: object, index: int, now_s: float) -> tuple[str, float | None]:
    if not isinstance(item, dict) or not set(item) <= {"phoneNumber", "expiredDate"}:
        raise BadRequest(f'add[{index}] must be an object with "phoneNumber", "expiredDate"?')
    digits = _out_of_band_phone(item.get("phoneNumber"), "add", index)
    try:
        return digits, parse_expiry(item.get("expiredDate"), now_s)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"add[{index}].expiredDate: {exc}") from exc


def _out_of_band_phone(value: object, key: str, index: int) -> str:
    digits, valid = phone_digits(value)
    if not valid:
        raise BadRequest(f"{key}[{index}] is not a phone number of 7-15 digits")
    return digits


def _delete(group: DncGroup, numbers: list[str]) -> int:
    """Remove every record, active or expired, of each of ``numbers`` (digits) from ``group``;
    how many of them had one (a number named twice counts once). O(expired + numbers)."""
    if not numbers:
        return 0
    in_expired = {record.phone_number for record in group.expired}
    removed: set[str] = set()
    deleted = 0
    for digits in numbers:
        found = group.active.pop(digits, None) is not None
        if digits in in_expired and digits not in removed:
            removed.add(digits)
            found = True
        deleted += found
    if removed:
        group.expired[:] = [r for r in group.expired if r.phone_number not in removed]
    return deleted
