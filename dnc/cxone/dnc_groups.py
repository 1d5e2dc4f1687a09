"""Adapter 1 (default): CXone DNC groups, the real CXone Admin API.

Contract (NICE CXone developer docs, Admin API "DNC Groups"; behaviour verified by clients run
against live tenants):

- token: ``POST {token_endpoint}``, form ``grant_type=password&username=<access key id>&
  password=<access key secret>``, client id and secret as HTTP Basic; ``access_token``,
  ``expires_in`` (~3600 s); no refresh grant.
- opt-out: ``POST {api}/inContactAPI/services/v{N}.0/dnc-groups/{groupId}/records`` with
  ``{"dncGroupRecords": [{"phoneNumber": ..., "expiredDate": ...?}]}``; opt-in: ``DELETE`` on
  the same path with the same body (CXone expires the records).
- the answer is 2xx even when numbers fail: ``{"resultSet": {"errorCount": n,
  "recordResults": [{"phoneNumber", "formattedPhone", "success", "error"}]}}``. Each record
  result is mapped on its own; a record that already exists (or does not exist, for an opt-in)
  is ``already_applied``.

CXone stores digits without ``+``; +1 numbers go as the national 10 digits by default.

With ``DNC_CXONE_SEND_TRACE`` (test stacks only) every write also carries ``X-Dnc-Sync-Trace``:
``<phoneNumber as sent>=<event time, UTC ms>`` per record, in record order, comma-separated,
so the sandbox's write journal knows which event each write stood for. CXone ignores it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from dnc.cxone.discovery import discover_api_endpoint, discover_token_endpoint, tenant_id_from_token
from dnc.cxone.http_errors import parse_token_response, send_plain
from dnc.cxone.transport import Sleep, build_transport
from dnc.cxone_settings import CxoneSettings
from dnc.events import Action
from dnc.masking import redact
from dnc.target import LATEST_MS, ChangeOutcome, DncChange, OutcomeKind, check_batch
from dnc.timestamps import TimestampProblem, iso_utc, parse_event_time

_ALREADY = {  # record errors meaning "the group already holds the requested state"
    Action.OPT_OUT: ("already exist",),
    Action.OPT_IN: ("already expired", "does not exist", "not exist", "not found"),
}
# record errors meaning "try again later"
_TRANSIENT = ("temporar", "try again", "timeout", "timed out", "unavailable")
AMBIGUOUS = (
    "ambiguous in CXone's 10-digit format (it would name a +1 number): set "
    "DNC_CXONE_PHONE_FORMAT=e164-digits"
)
TRACE_HEADER = "X-Dnc-Sync-Trace"


def trace_headers(sent: Sequence[tuple[str, DncChange]], enabled: bool) -> dict[str, str] | None:
    """``{TRACE_HEADER: "<number as sent>=<event ms>,..."}`` for the records of one write
    (``sent``: each record's number as sent beside its change, in record order), or ``None``
    when tracing is off (``DNC_CXONE_SEND_TRACE``). Event times are UTC epoch ms."""
    if not enabled:
        return None
    return {TRACE_HEADER: ",".join(f"{phone}={change.event_ms}" for phone, change in sent)}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Discovered URLs (non-secret, cacheable): ``token_endpoint`` and ``api_endpoint``."""

    token_endpoint: str
    api_endpoint: str | None = None


def group_phone(e164: str, phone_format: str) -> str:
    """The number as CXone stores it: digits without ``+``; for +1 the national 10 digits
    unless ``phone_format`` is ``e164-digits``."""
    digits = e164.lstrip("+")
    if phone_format == "auto" and e164.startswith("+1") and len(digits) == 11:
        return digits[1:]
    return digits


def is_ambiguous(e164: str, phone_format: str) -> bool:
    """Whether ``e164`` would be sent as 10 digits that CXone reads as a +1 national number
    (``+2025550123``, an Egyptian number, versus ``+12025550123``)."""
    return phone_format == "auto" and not e164.startswith("+1") and len(e164) == 11


def record_outcome(change: DncChange, result: dict[str, Any] | None) -> ChangeOutcome:
    """Map one ``recordResults`` entry (or its absence) to an outcome."""
    if result is None:
        return ChangeOutcome(change.e164, OutcomeKind.RETRYABLE, "no result for this record")
    if result.get("success") is True:
        return ChangeOutcome(change.e164, OutcomeKind.APPLIED)
    reason = redact(str(result.get("error") or "failed without a reason"))
    lowered = reason.lower()
    if any(marker in lowered for marker in _ALREADY[change.action]):
        return ChangeOutcome(change.e164, OutcomeKind.ALREADY_APPLIED, reason)
    if any(marker in lowered for marker in _TRANSIENT):
        return ChangeOutcome(change.e164, OutcomeKind.RETRYABLE, reason)
    return ChangeOutcome(change.e164, OutcomeKind.REJECTED, reason)


class DncGroupsTarget:
    """``DncTarget`` over one CXone DNC group. ``client`` is the process's shared httpx client;
    ``endpoints`` may carry discovery answers cached elsewhere (e.g. by Prefect)."""

    name = "dnc-groups"

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: CxoneSettings,
        *,
        endpoints: Endpoints | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not settings.dnc_group_id:
            raise ValueError("DNC_CXONE_DNC_GROUP_ID is required for the dnc-groups adapter")
        self._client = client
        self._settings = settings
        self._endpoints = endpoints
        self._discovery_lock = asyncio.Lock()
        self.transport = build_transport(client, self._mint, settings, sleep=sleep, rng=rng)
        self.tokens = self.transport.tokens

    @property
    def batch_size(self) -> int:
        """Numbers per API call (``DNC_CXONE_BATCH_SIZE``)."""
        return self._settings.batch_size

    @property
    def settings(self) -> CxoneSettings:
        """The CXone settings this target was built with."""
        return self._settings

    async def apply(self, changes: Sequence[DncChange]) -> list[ChangeOutcome]:
        """Opt-outs by POST, opt-ins by DELETE; one outcome per change, in order. Raises
        ``ValueError`` for a batch over ``batch_size`` or naming a number twice."""
        check_batch(changes, self.batch_size)
        outcomes: dict[int, ChangeOutcome] = {}
        phone_format = self._settings.phone_format
        for action, method in ((Action.OPT_OUT, "POST"), (Action.OPT_IN, "DELETE")):
            indexed = [(i, c) for i, c in enumerate(changes) if c.action is action]
            for i, change in indexed:
                if is_ambiguous(change.e164, phone_format):
                    outcomes[i] = ChangeOutcome(change.e164, OutcomeKind.REJECTED, AMBIGUOUS)
            indexed = [(i, c) for i, c in indexed if i not in outcomes]
            if indexed:
                results = await self._send(method, [c for _, c in indexed])
                outcomes.update(zip((i for i, _ in indexed), results, strict=True))
        return [outcomes[i] for i in range(len(changes))]

    def adopt_endpoints(self, endpoints: Endpoints) -> None:
        """Use discovery answers found elsewhere (e.g. cached by Prefect)."""
        self._endpoints = endpoints

    async def endpoints(self) -> Endpoints:
        """Token and API endpoints, discovered once however many callers ask at once (the API
        one needs a token)."""
        async with self._discovery_lock:
            if self._endpoints is None:
                token_endpoint = await discover_token_endpoint(
                    self._client, self._settings.issuer_url
                )
                self._endpoints = Endpoints(token_endpoint)
            if self._endpoints.api_endpoint is None:
                tenant = tenant_id_from_token(await self.tokens.get())
                api = await discover_api_endpoint(self._client, self._settings.issuer_url, tenant)
                self._endpoints = Endpoints(self._endpoints.token_endpoint, api)
            return self._endpoints

    async def records_url(self) -> str:
        """The DNC group's records URL (``.../dnc-groups/{groupId}/records``), discovering
        the API host first if needed."""
        api = (await self.endpoints()).api_endpoint
        settings = self._settings
        return (
            f"{api}/inContactAPI/services/v{settings.api_version}.0/dnc-groups/"
            f"{settings.dnc_group_id}/records"
        )

    async def _send(self, method: str, changes: list[DncChange]) -> list[ChangeOutcome]:
        records = [self._record(change) for change in changes]
        url = await self.transport.retrying(self.records_url)  # discovery and first mint
        trace = trace_headers(
            [(r["phoneNumber"], c) for r, c in zip(records, changes, strict=True)],
            self._settings.send_trace,
        )
        reply = await self.transport.request(
            method, url, json_body={"dncGroupRecords": records}, headers=trace
        )
        results = _record_results(reply.response)
        by_phone = {str(r.get("phoneNumber")): r for r in results if isinstance(r, dict)}
        outcomes = []
        for index, (change, record) in enumerate(zip(changes, records, strict=True)):
            result = results[index] if index < len(results) else None
            if (
                not isinstance(result, dict)
                or str(result.get("phoneNumber")) != record["phoneNumber"]
            ):
                result = by_phone.get(record["phoneNumber"])
            outcome = record_outcome(change, result)
            outcomes.append(
                replace(
                    outcome,
                    http_status=reply.response.status_code,
                    record_id=record["phoneNumber"],
                    after_lost_reply=reply.after_timeout,
                )
            )
        checks = (self._verified(c, o, url) for c, o in zip(changes, outcomes, strict=True))
        return list(await asyncio.gather(*checks))  # the pacer bounds the look-ups

    async def _verified(self, change: DncChange, outcome: ChangeOutcome, url: str) -> ChangeOutcome:
        """An opt-out that "already exists" is only held if the existing record lasts at least
        as long as asked: a record that expires earlier would let the number lapse."""
        if change.action is not Action.OPT_OUT or outcome.kind is not (OutcomeKind.ALREADY_APPLIED):
            return outcome
        phone = group_phone(change.e164, self._settings.phone_format)
        reply = await self.transport.request("GET", url, params={"phoneNumber": phone})
        existing = _find_record(reply.response, phone)
        if existing is None:
            return replace(
                outcome,
                kind=OutcomeKind.RETRYABLE,
                reason="already exists, but the record was not found",
            )
        lapses_ms = record_time_ms(existing.get("expiredDate"))
        wanted_ms = change.expires_at_ms
        if lapses_ms is not None and (wanted_ms is None or lapses_ms < wanted_ms):
            return replace(
                outcome,
                kind=OutcomeKind.REJECTED,
                reason=f"an existing record expires at {existing.get('expiredDate')}, before "
                "the requested opt-out ends: extend it in CXone, then requeue",
            )
        return outcome

    def _record(self, change: DncChange) -> dict[str, str]:
        record = {"phoneNumber": group_phone(change.e164, self._settings.phone_format)}
        if change.expires_at_ms is not None and change.action is Action.OPT_OUT:
            record["expiredDate"] = iso_utc(change.expires_at_ms)
        return record

    async def _mint(self) -> tuple[str, float]:
        endpoints = self._endpoints or Endpoints(
            await discover_token_endpoint(self._client, self._settings.issuer_url)
        )
        self._endpoints = endpoints
        settings = self._settings
        response = await send_plain(
            self._client,
            "POST",
            endpoints.token_endpoint,
            data={
                "grant_type": "password",
                "username": settings.access_key_id,
                "password": settings.access_key_secret.get_secret_value(),
            },
            auth=(settings.client_id, settings.client_secret.get_secret_value()),
            headers={"Accept": "application/json"},
        )
        return parse_token_response(response)


def _find_record(response: httpx.Response, phone: str) -> dict[str, Any] | None:
    """The active record for ``phone`` in a records listing (``dncGroupRecords``)."""
    try:
        records = response.json()["dncGroupRecords"]
    except (ValueError, KeyError, TypeError):
        return None
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and str(record.get("phoneNumber")) == phone:
            return record
    return None


def record_time_ms(value: object) -> int | None:
    """A record's ``expiredDate`` (or ``createdAt``) as UTC epoch ms; ``None`` when absent (a
    record that never expires). An unreadable date reads as 0, the epoch: for an expiry,
    already past, the cautious reading."""
    if value in (None, ""):
        return None
    try:
        return parse_event_time(value, now_ms=LATEST_MS, max_future_skew_s=0).epoch_ms
    except TimestampProblem:
        return 0


def _record_results(response: httpx.Response) -> list[Any]:
    try:
        body = response.json()
        results = body["resultSet"]["recordResults"]
    except (ValueError, KeyError, TypeError):
        return []  # every record then reports "no result": retryable, never applied
    return results if isinstance(results, list) else []
