"""The shipped example replay file (examples/events.jsonl) and its expected outcome.

The generator and the file never drift (regenerating gives the same bytes); replaying the file
through the real receiver in process gives exactly what the generator's own simulation of the
rules says; and the file holds what it claims to (regions, written forms, retries, late and
invalid lines, retired number forms, Argentine opt-outs spread to both forms, unverified
numbers).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import phonenumbers
import pytest
import redis.asyncio as aioredis

from dnc.e164 import to_e164
from dnc.state import read_latest
from tests.conftest import make_app, make_client, make_store
from tests.stored import all_states

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EVENTS = EXAMPLES / "events.jsonl"
EXPECTED = EXAMPLES / "events.expected.json"
RAW_LINES = EVENTS.read_text(encoding="utf-8").splitlines()
BODIES: list[dict[str, Any]] = [json.loads(line) for line in RAW_LINES]
SUMMARY: dict[str, Any] = json.loads(EXPECTED.read_text(encoding="utf-8"))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_MS = (
    int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000),
)
EXTENSION = re.compile(r"(;ext=\d|\sext\.?\s?\d|\sx\d)", re.IGNORECASE)


def load_generator() -> ModuleType:
    """examples/generate_events.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "generate_events", EXAMPLES / "generate_events.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def generated(generator: ModuleType) -> list[Any]:
    """The generator's own labelled lines for the shipped seed and count."""
    lines: list[Any] = generator.generate(SUMMARY["seed"], SUMMARY["events"])
    return lines


def test_regenerating_gives_the_same_bytes(generator: ModuleType, tmp_path: Path) -> None:
    assert SUMMARY["phonenumbers"] == phonenumbers.__version__, (
        "phonenumbers metadata changed: regenerate with .venv/bin/python "
        "examples/generate_events.py and review the diff"
    )
    out = tmp_path / "events.jsonl"
    assert generator.main(["--out", str(out)]) == 0
    assert out.read_bytes() == EVENTS.read_bytes()
    assert (tmp_path / "events.expected.json").read_bytes() == EXPECTED.read_bytes()


async def replay(
    client_redis: aioredis.Redis,
) -> tuple[list[str], Counter[str], list[str | None], list[dict[str, str]], Any]:
    """POST every line in order; each line's status (``rejected`` for a 422), the refusal
    reasons as ``"<field>:<reason>"``, each line's warning as ``"<field>:<reason>"`` (a field
    dropped from an opt-out, or a note on how its number was read; ``None`` for none), each
    line's alias forms (E.164 -> status), and the store."""
    store = make_store(client_redis)
    statuses: list[str] = []
    reasons: Counter[str] = Counter()
    dropped: list[str | None] = []
    aliases: list[dict[str, str]] = []
    headers = {"Content-Type": "application/json"}
    async with make_client(make_app(store)) as client:
        for number, line in enumerate(RAW_LINES, 1):
            response = await client.post("/v1/events", content=line.encode(), headers=headers)
            payload = response.json()
            if response.status_code == 202:
                entries = [*payload.get("dropped", []), *payload.get("notes", [])]
                gone = [f"{d['field']}:{d['reason']}" for d in entries]
                # A sample line has at most one warning, and says only that.
                assert len(gone) <= 1 and len(payload["warnings"]) == len(gone), (number, payload)
                dropped.append(gone[0] if gone else None)
                statuses.append(payload["status"])
                aliases.append({a["e164"]: a["status"] for a in payload.get("aliases", [])})
                continue
            dropped.append(None)
            aliases.append({})
            assert response.status_code == 422, (number, line, response.status_code, payload)
            assert len(payload["problems"]) == 1, (number, line, payload)
            problem = payload["problems"][0]
            reasons[f"{problem['field']}:{problem['reason']}"] += 1
            statuses.append("rejected")
    return statuses, reasons, dropped, aliases, store


async def test_replay_through_the_receiver_gives_the_expected_outcome(
    fake_redis: aioredis.Redis, generated: list[Any]
) -> None:
    statuses, reasons, dropped, aliases, store = await replay(fake_redis)
    differ = [
        f"line {n}: receiver {got}, simulation {line.status}: {RAW_LINES[n - 1]}"
        for n, (got, line) in enumerate(zip(statuses, generated, strict=True), 1)
        if got != line.status
    ]
    assert differ[:10] == []
    assert dict(Counter(statuses)) == {k: v for k, v in SUMMARY["statuses"].items() if v}
    assert dict(reasons) == SUMMARY["rejected_by_reason"]
    # Opt-outs kept without a bad optional field, numbers read in today's form or kept
    # unverified: the warning the generator put in, line by line.
    assert dropped == [line.warning for line in generated]
    assert Counter(d for d in dropped if d) == SUMMARY["accepted_with_warnings"]
    # Opt-outs also recorded under their subscriber's other form, line by line.
    assert aliases == [line.aliases for line in generated]
    assert sum(bool(a) for a in aliases) == SUMMARY["line_kinds"]["alias_opt_out"] >= 3
    assert await fake_redis.hgetall(store.keys.warnings)  # counted for dnc-sync status
    watermarks = await all_states(fake_redis, store.keys)
    # "<ms>:<action>" or "<ms>:optOut:<expiry ms>": the action is the second field
    final = {k: text(v).split(" ")[0].split(":")[1] for k, v in watermarks.items()}
    assert final == SUMMARY["final"]
    numbers = sorted(final)
    latest = await read_latest(fake_redis, store.keys, numbers)
    actions = {n: e.action.value for n, e in zip(numbers, latest, strict=True) if e}
    assert actions == SUMMARY["final"]
    assert await fake_redis.xlen(store.keys.rejected) == SUMMARY["statuses"]["rejected"]


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value


def event_ms(value: object) -> int | None:
    """A line's timestamp as UTC epoch ms (ISO 8601 with a zone, or ms), or None if unusable."""
    if isinstance(value, int):
        return value if value >= WINDOW_MS[0] else None
    text = str(value)
    try:  # RFC 3339 allows a lowercase "z"; fromisoformat does not
        delta = datetime.fromisoformat(text[:-1] + "Z" if text.endswith("z") else text) - EPOCH
    except (TypeError, ValueError):
        return None
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def number_of(body: dict[str, Any], opt_out: bool) -> str | None:
    """The E.164 a line names, or None when the receiver cannot identify it: an unknown region
    hint is no obstacle to an opt-out written with its country code (the hint is dropped)."""
    region = body.get("region") or "US"
    known = region.upper() in phonenumbers.SUPPORTED_REGIONS
    try:
        return (
            to_e164(body["phoneNumber"], region if known else None, allow_unverified=opt_out).e164
            if known or opt_out
            else None
        )
    except ValueError:
        return None


def valid_lines() -> list[tuple[dict[str, Any], str, int]]:
    """(body, E.164, event ms) of every line the receiver accepts: a usable number, action and
    time; an opt-in also needs clean optional fields (no expiry, metadata within the cap)."""
    found = []
    for body in BODIES:
        ms = event_ms(body["timestamp"])
        action = body["eventName"].strip().lower()
        opt_out = action == "optout"
        if ms is None or action not in ("optout", "optin"):
            continue
        metadata_bytes = len(json.dumps(body.get("metadata"), separators=(",", ":")).encode())
        if not opt_out and ("expiresAt" in body or metadata_bytes > 4096):
            continue
        number = number_of(body, opt_out)
        if number is not None:
            found.append((body, number, ms))
    assert len(found) == len(BODIES) - SUMMARY["statuses"]["rejected"]
    return found


def written_form(body: dict[str, Any], e164: str) -> set[str]:
    """The ways a line's number is written, told from the text alone."""
    raw = body["phoneNumber"]
    digits = "".join(str(int(ch)) for ch in raw if ch.isdigit())
    plus = "+" in raw or "\uff0b" in raw
    forms = set()
    if raw.lower().startswith("tel:"):
        forms.add("tel")
    if any(ch.isdigit() and not ch.isascii() for ch in raw):
        forms.add("unicode_digits")
    if EXTENSION.search(raw):
        forms.add("extension")
    if "\u00a0" in raw or "\u202f" in raw:
        forms.add("nbsp")
    if not plus and body.get("region") and digits == e164[1:]:
        forms.add("missing_plus")
    if not plus and body.get("region") and not digits.endswith(e164[1:]):
        forms.add("national")
    return forms


def test_the_file_holds_what_it_claims() -> None:
    lines = valid_lines()
    total = len(BODIES)
    assert len(RAW_LINES) == SUMMARY["events"] >= 2000
    assert 0.05 <= SUMMARY["statuses"]["rejected"] / total <= 0.08
    regions = {phonenumbers.region_code_for_number(phonenumbers.parse(n)) for _, n, _ in lines}
    assert len(regions) >= 30 and SUMMARY["regions"] >= 30
    forms = Counter(form for body, number, _ in lines for form in written_form(body, number))
    for form in ("tel", "national", "unicode_digits", "extension", "missing_plus", "nbsp"):
        assert forms[form] >= 10, forms
    assert all(WINDOW_MS[0] <= ms < WINDOW_MS[1] for _, _, ms in lines)
    # Studio retries: the very same body again.
    repeats = sum(count - 1 for count in Counter(RAW_LINES).values())
    assert repeats >= 50 and repeats == SUMMARY["line_kinds"]["studio_retry"]
    # Late lines: a later line carrying an older time than one already seen for its number.
    newest: dict[str, int] = {}
    late = 0
    for _, number, ms in lines:
        late += ms < newest.get(number, ms)
        newest[number] = max(ms, newest.get(number, ms))
    assert late >= 20
    # Same-time opt-in/opt-out pairs, and caller eventIds that come again.
    actions: dict[tuple[str, int], set[str]] = {}
    for body, number, ms in lines:
        actions.setdefault((number, ms), set()).add(body["eventName"].strip().lower())
    assert sum(len(a) > 1 for a in actions.values()) >= 5
    ids = Counter(body["eventId"] for body, _, _ in lines if body.get("eventId"))
    assert sum(count > 1 for count in ids.values()) >= 10
    assert SUMMARY["statuses"]["superseded"] >= 20 and SUMMARY["statuses"]["duplicate"] >= 50
    # Opt-outs with one bad optional field (kept with a warning), and lowercase RFC 3339 times.
    warned = SUMMARY["accepted_with_warnings"]
    for reason in (
        "metadata:too_large",
        "expiresAt:before_event_time",
        "expiresAt:invalid",
        "region:unknown_region",
    ):
        assert warned[reason] >= 3, warned
    assert sum(warned.values()) == SUMMARY["line_kinds"]["warned"]
    lowercase = sum(str(body["timestamp"]).endswith("z") for body in BODIES)
    assert lowercase == SUMMARY["line_kinds"]["lowercase_time"] >= 10
    # The same problems on an opt-in are refused.
    refused = SUMMARY["rejected_by_reason"]
    assert refused["expiresAt:not_for_opt_in"] >= 3 and refused["metadata:too_large"] >= 3
    # Numbering plans (docs/numbering-plans.md): retired forms stored under today's number,
    # unverified numbers kept for an opt-out and refused for an opt-in.
    assert warned["phoneNumber:plan_change"] == SUMMARY["line_kinds"]["retired_form"] >= 3
    assert warned["phoneNumber:unverified_number"] == SUMMARY["line_kinds"]["unverified"] >= 1
    assert refused["phoneNumber:invalid_number"] >= 3
    retired = {body["phoneNumber"] for body in BODIES if body["phoneNumber"].startswith("+52 1 ")}
    assert retired and all(to_e164(raw, None).plan_change for raw in retired)
    assert any(body["phoneNumber"].startswith("044 ") for body in BODIES)


def test_an_argentine_opt_out_suppresses_both_forms_and_an_opt_in_only_its_own() -> None:
    """The sample's Argentine subscriber: opted out as +54 9 ..., then opted in under that
    form; the SMS form (+54 ..., no 9) keeps the opt-out."""
    final = SUMMARY["final"]
    mobiles = [n for n in final if n.startswith("+549")]
    assert mobiles
    both = [n for n in mobiles if "+54" + n[4:] in final]
    assert both, "no Argentine mobile whose SMS form is in the final state"
    split = [n for n in both if (final[n], final["+54" + n[4:]]) == ("optIn", "optOut")]
    assert split, "no Argentine subscriber opted in under one form only"
