"""Generate a deterministic replay file of realistic webhook events and what it must produce.

Usage, from the repository root::

    .venv/bin/python examples/generate_events.py [--seed 20260901] [--count 3000]
        [--out examples/events.jsonl]

Writes ``--out`` (one ``POST /v1/events`` JSON body per line) and, beside it,
``<stem>.expected.json``: the statuses, refusal reasons and final state per number that
replaying the lines in order into an empty store must give. The expectation is computed here by
simulating the documented rules (README "Sending events", ``dnc/lua/record_events.lua``), not by
calling the receiver or the store.

Every number is built from ``phonenumbers``' own example numbers (last digits varied, kept only
when ``phonenumbers.is_valid_number`` accepts them), so its E.164 is known by construction; every
written form is checked through ``dnc.e164.to_e164`` and a disagreement stops the generator.
Every invalid line has exactly one problem, with its reason known by construction. A few opt-outs
carry one bad optional field (metadata over the cap, an expiry at or before the event time or not
a time at all, an unknown region hint beside a number written with its country code): they are
accepted with a warning naming it (``accepted_with_warnings`` in the summary); the same problems
on an opt-in are invalid lines.

Numbering plans (issue 11, rules 3 and 4; docs/numbering-plans.md): a few lines write a number in
a form its country has retired (Mexico's ``+52 1`` and ``044``, a Brazilian 8-digit mobile),
accepted with a ``phoneNumber:plan_change`` warning under today's number; an opt-out for a
number of a possible length that the metadata does not know (``+1 211 ...``) is accepted with
a ``phoneNumber:unverified_number`` warning (the same number on an opt-in is an invalid line,
``invalid_number``); and an opt-out for a number whose subscriber has another E.164 form
(Argentina's mobile ``+54 9 ...`` and SMS ``+54 ...``, for every Argentine number in the file)
is recorded under both forms, so both are in the expected final state, while an opt-in changes
only the form it names.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import phonenumbers as pn
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType, ValidationResult

from dnc.e164 import PhoneNumberProblem, to_e164
from dnc.numbering_plans import aliases_of

GENERATOR = "examples/generate_events.py"
DEFAULT_SEED = 20260901
DEFAULT_COUNT = 3000
DEFAULT_OUT = Path(__file__).resolve().parent / "events.jsonl"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_START_MS = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1000)
WINDOW_END_MS = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
INVALID_SHARE = 0.065
WARNED_SHARE = 0.025  # of opt-out bodies: one bad optional field, dropped with a warning
LOWERCASE_SHARE = 0.04  # of ISO times with Z: written "2026-09-01t10:00:00z" (RFC 3339 allows it)
METADATA_MAX_BYTES = 4096  # the receiver's default DNC_INTAKE_METADATA_MAX_BYTES

OPT_OUT, OPT_IN = "optOut", "optIn"
# Region -> weight of its share of numbers; every region gets at least two numbers.
REGIONS = {
    "US": 8, "CA": 3, "GB": 4, "IE": 1, "FR": 2, "DE": 2, "NL": 1, "BE": 1, "ES": 2, "PT": 1,
    "IT": 2, "CH": 1, "AT": 1, "SE": 1, "NO": 1, "DK": 1, "FI": 1, "PL": 1, "CZ": 1, "HU": 1,
    "RO": 1, "GR": 1, "TR": 1, "IL": 1, "AE": 1, "SA": 1, "EG": 1, "ZA": 1, "NG": 1, "KE": 1,
    "MA": 1, "IN": 2, "PK": 1, "BD": 1, "CN": 1, "HK": 1, "JP": 1, "KR": 1, "SG": 1, "MY": 1,
    "TH": 1, "PH": 2, "ID": 1, "VN": 1, "AU": 2, "NZ": 1, "BR": 2, "MX": 2, "AR": 1, "CL": 1,
    "CO": 1, "PE": 1, "RU": 1, "UA": 1, "JM": 1, "PR": 1,
}  # fmt: skip
NUMBER_TYPES = ((PhoneNumberType.MOBILE, 6), (PhoneNumberType.FIXED_LINE, 3),
                (PhoneNumberType.TOLL_FREE, 1))  # fmt: skip
NANP_CC = 1
# International call prefix of a few regions callers dial from (the ``idd`` form).
IDD = {"US": "011", "CA": "011", "GB": "00", "DE": "00", "FR": "00", "AU": "0011", "JP": "010",
       "RU": "810", "KE": "000", "NG": "009"}  # fmt: skip
# Regions where "+44 (0)20 ..." (the trunk prefix in parentheses) is a common way to write.
TRUNK_ZERO = frozenset({"GB", "IE", "DE", "AT", "CH", "NL", "BE", "FR", "SE", "FI", "AU", "NZ",
                        "ZA"})  # fmt: skip
# Decimal digits people of a region may type: their script's, or full-width forms (CJK input).
SCRIPTS = {"AE": "arabic", "SA": "arabic", "EG": "arabic", "MA": "arabic", "PK": "persian",
           "IN": "devanagari", "BD": "bengali", "TH": "thai", "JP": "fullwidth",
           "CN": "fullwidth", "KR": "fullwidth", "HK": "fullwidth"}  # fmt: skip
ZERO = {"arabic": 0x0660, "persian": 0x06F0, "devanagari": 0x0966, "bengali": 0x09E6,
        "thai": 0x0E50, "fullwidth": 0xFF10}  # fmt: skip
FORMS = {
    "e164": 14, "international": 14, "national": 14, "punctuated": 11, "trunk_prefix": 3,
    "tel_uri": 8, "tel_local": 2, "unicode_digits": 8, "missing_plus": 6, "idd": 4,
    "nbsp": 5, "national_digits": 4, "vanity": 3,
}  # fmt: skip
EXTENSION_FORMS = frozenset({"e164", "international", "national", "punctuated", "tel_uri"})
VANITY = {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS", "8": "TUV",
          "9": "WXYZ"}  # fmt: skip
OFFSETS_MIN = (-300, -240, -180, 0, 60, 120, 180, 240, 330, 480, 540, 600)
SKILLS = ("Collections", "Customer Care", "Retention", "Sales Outbound", "Billing", "Surveys")
SOURCES = (("studio", 6), ("dataAction", 3), ("ivr", 1), ("agent", 1))
ACTION_SPELLINGS = {OPT_OUT: ("optOut", "optout", "OPTOUT", "OptOut", " optOut"),
                    OPT_IN: ("optIn", "optin", "OPTIN", "OptIn", "optIn ")}  # fmt: skip


class GeneratorError(RuntimeError):
    """A written form did not normalise as built, or the rules were broken: a bug to report."""


@dataclass(frozen=True, slots=True)
class Number:
    """A valid number: ``e164``, the region it belongs to, and the parsed form."""

    e164: str
    region: str
    parsed: PhoneNumber


@dataclass(frozen=True, slots=True)
class Event:
    """One opt-in/opt-out of a number at ``ms`` (UTC epoch ms), with the caller's id if any."""

    number: Number
    action: str
    ms: int
    event_id: str | None
    source: str
    metadata: dict[str, Any] | None


@dataclass(slots=True)
class Line:
    """One line of the file: the body and the generator's labels for it.

    ``kind``: ``original``, ``studio_retry`` (the same body again), ``resend`` (the same event
    written differently) or ``invalid``; ``form``: how the number is written (for an invalid
    line: what is wrong); ``problem``: ``"<field>:<reason>"`` of an invalid line; ``warning``:
    ``"<field>:<reason>"`` of the optional field an accepted opt-out is kept without, or of
    the note on its number (``phoneNumber:plan_change``, ``phoneNumber:unverified_number``);
    ``late``: delivered hours to days after its event time; ``tie``: another line has the other
    action for the same number and time; ``status``: what the replay must answer
    (``simulate``); ``aliases``: for an opt-out, what recording it under each other E.164 form
    of its subscriber must give (E.164 -> status).
    """

    body: dict[str, Any]
    kind: str
    form: str
    event: Event | None = None
    problem: str | None = None
    warning: str | None = None
    late: bool = False
    tie: bool = False
    status: str = field(default="")
    aliases: dict[str, str] = field(default_factory=dict)


# -- numbers ----------------------------------------------------------------------------------


def build_numbers(rng: random.Random, count: int) -> list[Number]:
    """``count`` distinct valid numbers: two per region first, then by region weight."""
    regions = list(REGIONS)
    plan = regions + regions
    plan += rng.choices(regions, weights=list(REGIONS.values()), k=max(0, count - len(plan)))
    numbers: dict[str, Number] = {}
    for region in plan:
        for _ in range(20):  # a few draws may repeat a number already taken
            number = _vary_example(rng, region)
            if number is not None and number.e164 not in numbers:
                numbers[number.e164] = number
                break
    return list(numbers.values())


def _vary_example(rng: random.Random, region: str) -> Number | None:
    kinds = [t for t, _ in NUMBER_TYPES if pn.example_number_for_type(region, t) is not None]
    weights = [w for t, w in NUMBER_TYPES if t in kinds]
    example = pn.example_number_for_type(region, rng.choices(kinds, weights=weights)[0])
    if example is None:
        return None
    nsn = pn.national_significant_number(example)
    # NANP examples are 555-01XX fiction numbers: vary only the last two digits.
    changed = 2 if example.country_code == NANP_CC else rng.randint(1, 3)
    for _ in range(30):
        tail = "".join(str(rng.randint(0, 9)) for _ in range(changed))
        parsed = pn.parse(f"+{example.country_code}{nsn[:-changed]}{tail}", None)
        if pn.is_valid_number(parsed) and pn.region_code_for_number(parsed) == region:
            return Number(pn.format_number(parsed, PhoneNumberFormat.E164), region, parsed)
    return None


# -- written forms ----------------------------------------------------------------------------


def render_number(rng: random.Random, number: Number) -> tuple[str, str | None, str]:
    """Write ``number`` as people and systems do: (raw text, region field or None, form).

    Checks the text through ``dnc.e164.to_e164`` and raises ``GeneratorError`` when it does not
    give back ``number.e164``.
    """
    for _ in range(20):
        form = rng.choices(list(FORMS), weights=list(FORMS.values()))[0]
        written = _RENDERERS[form](rng, number)
        if written is None:  # the form does not apply to this number
            continue
        raw, region = written
        if form in EXTENSION_FORMS and rng.random() < 0.07:
            raw, form = _with_extension(rng, raw, form), f"{form}+ext"
        region = _decorate_region(rng, raw, region)
        check_written(raw, region, number.e164, form)
        return raw, region, form
    raise GeneratorError(f"no written form applies to {number.e164}")


def check_written(raw: str, region: str | None, e164: str, form: str) -> None:
    """Raise ``GeneratorError`` unless the project's normaliser reads ``raw`` as ``e164``, as
    written today (no numbering-plan change: that would add a warning)."""
    hint = region.upper() if region else None
    try:
        number = to_e164(raw, hint)
        got = e164 + " (a retired form)" if number.plan_change else number.e164
    except PhoneNumberProblem as exc:
        got = f"refused ({exc.reason})"
    if got != e164:
        raise GeneratorError(
            f"to_e164({raw!r}, {hint!r}) gave {got}, built as {e164} (form {form})"
        )


def _international(number: Number) -> str:
    return pn.format_number(number.parsed, PhoneNumberFormat.INTERNATIONAL)


def _national(number: Number) -> str:
    return pn.format_number(number.parsed, PhoneNumberFormat.NATIONAL)


def _groups(number: Number) -> list[str]:
    """The digit groups of the international format after the country code."""
    text = _international(number).split(" ", 1)[1]
    return text.replace("-", " ").split()


def _form_e164(rng: random.Random, number: Number) -> tuple[str, str | None]:
    return number.e164, None


def _form_international(rng: random.Random, number: Number) -> tuple[str, str | None]:
    return _international(number), None


def _form_national(rng: random.Random, number: Number) -> tuple[str, str | None]:
    return _national(number), number.region


def _form_punctuated(rng: random.Random, number: Number) -> tuple[str, str | None]:
    groups = _groups(number)
    sep = rng.choice([".", "-", " ", "-"])
    if len(groups) > 2 and rng.random() < 0.5:
        groups[0] = f"({groups[0]})"
        head = f"+{number.parsed.country_code} {groups[0]} "
        return head + sep.join(groups[1:]), None
    return f"+{number.parsed.country_code}{sep}" + sep.join(groups), None


def _form_trunk_prefix(rng: random.Random, number: Number) -> tuple[str, str | None] | None:
    if number.region not in TRUNK_ZERO:
        return None
    return f"+{number.parsed.country_code} (0)" + " ".join(_groups(number)), None


def _form_tel_uri(rng: random.Random, number: Number) -> tuple[str, str | None]:
    scheme = "TEL:" if rng.random() < 0.1 else "tel:"
    return f"{scheme}+{number.parsed.country_code}-" + "-".join(_groups(number)), None


def _form_tel_local(rng: random.Random, number: Number) -> tuple[str, str | None]:
    local = "-".join(_national(number).replace("(", "").replace(")", "").split())
    return f"tel:{local};phone-context=+{number.parsed.country_code}", None


def _form_unicode_digits(rng: random.Random, number: Number) -> tuple[str, str | None] | None:
    script = SCRIPTS.get(number.region)
    if script is None:
        return None
    national = rng.random() < 0.4
    text = _national(number) if national else _international(number)
    zero = ZERO[script]
    out = "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)
    if script == "fullwidth":
        out = out.replace("+", "\uff0b").replace("-", "\uff0d").replace(" ", "\u3000")
    elif script in ("arabic", "persian") and rng.random() < 0.5:
        out = "\u200e" + out  # left-to-right mark, as copied from right-to-left text
    return out, number.region if national else None


def _form_missing_plus(rng: random.Random, number: Number) -> tuple[str, str | None] | None:
    if plus_needed(number):
        return None
    text = _international(number)[1:]
    if rng.random() < 0.5:
        text = text.replace(" ", "").replace("-", "")
    return text, number.region


def plus_needed(number: Number) -> bool:
    """Whether the number's country code and digits written without ``+`` (with its region)
    do not read back as the number in ``phonenumbers`` itself, so the ``missing_plus`` form
    is not used for it. Two causes: the digits are also a valid national number of the region
    (``4915123456789`` in DE is +49 4915123456789 too: the string means two numbers), or they
    fit the region's national pattern, so ``phonenumbers`` keeps them national and finds that
    invalid (``55800123456`` in BR)."""
    digits = f"{number.parsed.country_code}{pn.national_significant_number(number.parsed)}"
    try:
        read = pn.parse(digits, number.region)
    except pn.NumberParseException:
        return True
    return bool(pn.format_number(read, PhoneNumberFormat.E164) != number.e164)


def _form_idd(rng: random.Random, number: Number) -> tuple[str, str | None]:
    origin = rng.choice(list(IDD))
    return f"{IDD[origin]} " + _international(number)[1:], origin


def _form_nbsp(rng: random.Random, number: Number) -> tuple[str, str | None]:
    space = rng.choice(["\u00a0", "\u202f"])
    return _international(number).replace(" ", space), None


def _form_national_digits(rng: random.Random, number: Number) -> tuple[str, str | None]:
    return pn.national_significant_number(number.parsed), number.region


def _form_vanity(rng: random.Random, number: Number) -> tuple[str, str | None] | None:
    nsn = pn.national_significant_number(number.parsed)
    toll_free = pn.number_type(number.parsed) == PhoneNumberType.TOLL_FREE
    if number.parsed.country_code != NANP_CC or not toll_free or not set(nsn[-4:]) <= set(VANITY):
        return None
    word = "".join(rng.choice(VANITY[d]) for d in nsn[-4:])
    return f"1-{nsn[:3]}-{nsn[3:6]}-{word}", number.region


_RENDERERS: dict[str, Callable[[random.Random, Number], tuple[str, str | None] | None]] = {
    "e164": _form_e164,
    "international": _form_international,
    "national": _form_national,
    "punctuated": _form_punctuated,
    "trunk_prefix": _form_trunk_prefix,
    "tel_uri": _form_tel_uri,
    "tel_local": _form_tel_local,
    "unicode_digits": _form_unicode_digits,
    "missing_plus": _form_missing_plus,
    "idd": _form_idd,
    "nbsp": _form_nbsp,
    "national_digits": _form_national_digits,
    "vanity": _form_vanity,
}


def _with_extension(rng: random.Random, raw: str, form: str) -> str:
    ext = str(rng.randint(1, 9999))
    if form == "tel_uri":
        return f"{raw};ext={ext}"
    return raw + rng.choice([f";ext={ext}", f" ext. {ext}", f" x{ext}", f" ext {ext}"])


def _decorate_region(rng: random.Random, raw: str, region: str | None) -> str | None:
    """A number written with its country code may still come with a region field: its own, the
    caller's default (``US``), or an empty one (an unset Studio variable)."""
    if region is not None:
        return region.lower() if rng.random() < 0.05 else region
    roll = rng.random()
    if roll < 0.1:
        return "US"
    if roll < 0.13:
        return ""
    return None


# -- events and timestamps --------------------------------------------------------------------


def build_story(rng: random.Random, number: Number) -> list[Event]:
    """A number's events in time order: opt-outs and opt-ins, repeats, sometimes a same-time
    opt-in/opt-out pair."""
    size = rng.choices([1, 2, 3, 4, 5, 6], weights=[25, 30, 20, 13, 8, 4])[0]
    times = sorted(_event_ms(rng) for _ in range(size))
    action = OPT_OUT if rng.random() < 0.75 else OPT_IN
    events: list[Event] = []
    for ms in times:
        events.append(_event(rng, number, action, ms))
        if rng.random() < 0.6:
            action = OPT_IN if action == OPT_OUT else OPT_OUT
    return events


def _event_ms(rng: random.Random) -> int:
    ms = rng.randrange(WINDOW_START_MS, WINDOW_END_MS)
    return ms - ms % 1000 if rng.random() < 0.5 else ms  # Studio often sends whole seconds


def _event(rng: random.Random, number: Number, action: str, ms: int) -> Event:
    source = rng.choices([s for s, _ in SOURCES], weights=[w for _, w in SOURCES])[0]
    event_id = None
    if source == "dataAction" or rng.random() < 0.1:
        event_id = f"{source}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    metadata = None
    if rng.random() < 0.8:
        metadata = {"source": source, "contactId": rng.randint(10**9, 10**10 - 1)}
        if source in ("studio", "agent"):
            metadata["skill"] = rng.choice(SKILLS)
    return Event(number, action, ms, event_id, source, metadata)


def render_time(rng: random.Random, ms: int) -> str | int:
    """``ms`` as ISO 8601 with ``Z`` or an offset, or as epoch milliseconds."""
    roll = rng.random()
    if roll < 0.25:
        return ms
    offset = 0 if roll < 0.7 else rng.choice(OFFSETS_MIN)
    zone = timezone(timedelta(minutes=offset))
    moment = (EPOCH + timedelta(milliseconds=ms)).astimezone(zone)
    with_ms = ms % 1000 != 0 or rng.random() < 0.2
    text = moment.isoformat(timespec="milliseconds" if with_ms else "seconds")
    if _iso_ms(text) != ms:
        raise GeneratorError(f"{text!r} is not {ms} ms")
    if offset == 0 and rng.random() < 0.8:
        text = text.replace("+00:00", "Z")
        if rng.random() < LOWERCASE_SHARE:
            text = text.replace("T", "t").replace("Z", "z")
    return text


def iso_z(ms: int) -> str:
    """``ms`` as RFC 3339 UTC with ``Z`` (seconds, or milliseconds when it has them)."""
    moment = EPOCH + timedelta(milliseconds=ms)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def _iso_ms(text: str) -> int:
    delta = datetime.fromisoformat(text) - EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def event_body(
    rng: random.Random, event: Event, *, warned: bool = True
) -> tuple[dict[str, Any], str, str | None]:
    """The JSON body of ``event`` in a freshly chosen written form, that form's label, and
    (an opt-out, ``warned``: sometimes) the ``"<field>:<reason>"`` of the one bad optional
    field it carries, which the receiver drops with a warning."""
    raw, region, form = render_number(rng, event.number)
    spelling = ACTION_SPELLINGS[event.action]
    body: dict[str, Any] = {
        "phoneNumber": raw,
        "eventName": spelling[0] if rng.random() < 0.85 else rng.choice(spelling[1:]),
        "timestamp": render_time(rng, event.ms),
    }
    if region is not None:
        body["region"] = region
    if event.event_id is not None:
        body["eventId"] = event.event_id
    elif rng.random() < 0.03:
        body["eventId"] = ""  # an unset Studio variable: the same as no eventId
    if event.metadata is not None:
        body["metadata"] = event.metadata
    warning = None
    if warned and event.action == OPT_OUT and rng.random() < WARNED_SHARE:
        kind = rng.choices([k for k, _ in BAD_OPTIONALS], weights=[w for _, w in BAD_OPTIONALS])
        warning = _BAD_OPTIONAL[kind[0]](rng, body, event)
    return body, form, warning


# -- bad optional fields: dropped from an opt-out with a warning, refused for an opt-in ------

NOT_TIMES = ("next year", "never", "31/12/2027", "2027-02-30T00:00:00Z", "until further notice")
BAD_REGIONS = ("UK", "XX", "EU")
BAD_OPTIONALS = (("metadata_too_large", 1), ("expiry_before_event", 1),
                 ("expiry_not_a_time", 1), ("region_unknown", 1))  # fmt: skip
WORDS = ("customer", "asked", "not", "to", "be", "called", "again", "about", "the", "offer",
         "and", "said", "stop", "calling", "this", "number", "please", "noted")  # fmt: skip


def _too_large_metadata(rng: random.Random, event: Event) -> dict[str, Any]:
    """The event's metadata with a call transcript pasted in: over the receiver's cap."""
    words: list[str] = []
    while sum(len(w) + 1 for w in words) <= METADATA_MAX_BYTES:
        words.append(rng.choice(WORDS))
    return {**(event.metadata or {"source": event.source}), "transcript": " ".join(words)}


def _bad_metadata(rng: random.Random, body: dict[str, Any], event: Event) -> str:
    body["metadata"] = _too_large_metadata(rng, event)
    return "metadata:too_large"


def _bad_expiry_before(rng: random.Random, body: dict[str, Any], event: Event) -> str:
    back = 0 if rng.random() < 0.3 else rng.randint(1, 400) * 86_400_000
    body["expiresAt"] = iso_z(event.ms - back)  # at (or before) the event time
    return "expiresAt:before_event_time"


def _bad_expiry_text(rng: random.Random, body: dict[str, Any], event: Event) -> str:
    body["expiresAt"] = rng.choice(NOT_TIMES)
    return "expiresAt:invalid"


def _bad_region(rng: random.Random, body: dict[str, Any], event: Event) -> str:
    """An unknown region hint beside the number written with its country code."""
    writer = _form_international if rng.random() < 0.5 else _form_e164
    body["phoneNumber"], _ = writer(rng, event.number)
    body["region"] = rng.choice(BAD_REGIONS)
    check_written(body["phoneNumber"], None, event.number.e164, "region_unknown")
    return "region:unknown_region"


_BAD_OPTIONAL: dict[str, Callable[[random.Random, dict[str, Any], Event], str]] = {
    "metadata_too_large": _bad_metadata,
    "expiry_before_event": _bad_expiry_before,
    "expiry_not_a_time": _bad_expiry_text,
    "region_unknown": _bad_region,
}


# -- deliveries -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Delivery:
    at_ms: int
    order: int
    line: Line
    retries: int = 0


def build_valid_lines(
    rng: random.Random, pool: Sequence[Number], target: int
) -> tuple[list[Line], list[Number]]:
    """The accepted-shape lines in delivery order, ``target`` of them, and the numbers used:
    numbers are taken from ``pool`` in order until their lines are enough."""
    deliveries: list[_Delivery] = []
    used: list[Number] = []
    total = 0
    for number in pool:
        if total >= target:
            break
        used.append(number)
        for event in _with_tie(rng, build_story(rng, number)):
            found = _deliveries_of(rng, event, len(deliveries))
            deliveries.extend(found)
            total += sum(1 + d.retries for d in found)
    if total < target:
        raise GeneratorError(f"{len(pool)} numbers give only {total} lines")
    deliveries.sort(key=lambda d: (d.at_ms, d.order))
    return _with_retries(rng, deliveries)[:target], used


def _with_tie(rng: random.Random, events: list[Event]) -> list[Event]:
    """Sometimes add the other action at the very same time as one of the events."""
    if rng.random() < 0.07:
        twin = rng.choice(events)
        other = OPT_IN if twin.action == OPT_OUT else OPT_OUT
        events.append(_event(rng, twin.number, other, twin.ms))
    return events


def _deliveries_of(rng: random.Random, event: Event, order: int) -> list[_Delivery]:
    late = rng.random() < 0.1
    lag_ms = rng.randint(3_600_000, 10 * 86_400_000) if late else rng.randint(200, 90_000)
    body, form, warning = event_body(rng, event)
    line = Line(body, "original", form, event, warning=warning, late=late)
    first = _Delivery(event.ms + lag_ms, order, line)
    first.retries = _retry_count(rng)
    resend = _resend(rng, event, first) if rng.random() < 0.03 else None
    return [first] if resend is None else [first, resend]


def _resend(rng: random.Random, event: Event, first: _Delivery) -> _Delivery | None:
    """The same event again from another system, later, written differently."""
    for _ in range(5):
        body, form, warning = event_body(rng, event)
        if body != first.line.body:
            at_ms = first.at_ms + rng.randint(60_000, 6 * 3_600_000)
            line = Line(body, "resend", form, event, warning=warning)
            return _Delivery(at_ms, first.order + 1, line)
    return None


def _retry_count(rng: random.Random) -> int:
    """Studio retries a failed REST call up to twice with the very same body."""
    roll = rng.random()
    return 2 if roll < 0.02 else 1 if roll < 0.08 else 0


def _with_retries(rng: random.Random, deliveries: Sequence[_Delivery]) -> list[Line]:
    keyed: list[tuple[float, Line]] = []
    for index, delivery in enumerate(deliveries):
        keyed.append((index, delivery.line))
        for attempt in range(delivery.retries):
            at = index + rng.choice([0, 0, 1, 2, 3, 5]) + 0.5 + attempt * 0.01
            original = delivery.line
            retry = Line(
                original.body,
                "studio_retry",
                original.form,
                original.event,
                warning=original.warning,
            )
            keyed.append((at, retry))
    keyed.sort(key=lambda pair: pair[0])
    return [line for _, line in keyed]


def mark_ties(lines: Sequence[Line]) -> None:
    """Label the lines whose event shares number and time with an event of the other action."""
    actions: dict[tuple[str, int], set[str]] = {}
    for line in lines:
        if line.event is not None:
            key = (line.event.number.e164, line.event.ms)
            actions.setdefault(key, set()).add(line.event.action)
    for line in lines:
        if line.event is not None:
            line.tie = len(actions[(line.event.number.e164, line.event.ms)]) > 1


# -- invalid lines ----------------------------------------------------------------------------

SHORT_CODES = (("73827", "US", "too_short"), ("911", "US", "too_short"),
               ("999", "GB", "too_short"), ("112", "DE", "invalid_number"),
               ("55555", "US", "too_short"), ("*611", "US", "too_short"))  # fmt: skip
NOT_NUMBERS = ("call me", "n/a", "N/A", "unknown", "none", "see notes", "-", "anonymous")
BAD_COUNTRY = ("+999 1234 5678", "+0 201 555 0123", "+28 123 456 789")
BAD_EVENT_NAMES = ("unsubscribe", "opt-out", "STOP", "optedOut", "subscribe", "opt_in")
BAD_TIMES = ("yesterday", "2026-13-01T09:00:00Z", "31/10/2026 14:05", "2026-10-05T25:00:00Z",
             "", "Tue, 06 Oct 2026 10:00:00 GMT")  # fmt: skip
INVALID_KINDS = (("short_code", 4), ("not_a_number", 3), ("too_long", 3), ("invalid_number", 4),
                 ("bad_country", 1), ("empty_phone", 1), ("bad_event_name", 2),
                 ("bad_time", 2), ("epoch_seconds", 1), ("bad_region", 1),
                 ("opt_in_metadata", 1), ("opt_in_expiry", 1),
                 ("opt_in_region", 1))  # fmt: skip


def build_invalid_line(rng: random.Random, numbers: Sequence[Number]) -> Line:
    """One line with exactly one problem, whose ``"<field>:<reason>"`` is known by construction."""
    kind = rng.choices([k for k, _ in INVALID_KINDS], weights=[w for _, w in INVALID_KINDS])[0]
    number = rng.choice(numbers)
    action = OPT_IN if kind.startswith("opt_in_") else rng.choice([OPT_OUT, OPT_IN])
    if kind == "invalid_number":
        action = OPT_IN  # an opt-out for a possible number the metadata lacks is kept
    event = _event(rng, number, action, _event_ms(rng))
    body, _, _ = event_body(rng, event, warned=False)
    body.pop("eventId", None)  # a refused line never reaches the id check
    if kind in _OPT_IN_INVALIDATORS:
        problem = _OPT_IN_INVALIDATORS[kind](rng, body, event)
    else:
        problem = _INVALIDATORS[kind](rng, body, numbers)
    if problem.startswith("phoneNumber:") and body["phoneNumber"]:
        reason = problem.split(":")[1]
        _check_refused(body["phoneNumber"], body.get("region"), reason, action == OPT_OUT)
    return Line(body, "invalid", kind, problem=problem)


def _check_refused(raw: str, region: str | None, reason: str, opt_out: bool) -> None:
    """Raise ``GeneratorError`` unless ``raw`` is refused for ``reason`` (as for an opt-out
    when ``opt_out``: a possible number the metadata does not know is then kept)."""
    try:
        got = to_e164(raw, region or None, allow_unverified=opt_out).e164
    except PhoneNumberProblem as exc:
        got = exc.reason
    if got != reason:
        raise GeneratorError(f"to_e164({raw!r}, {region!r}) gave {got}, built to be {reason}")


def _set_phone(body: dict[str, Any], raw: str, region: str | None) -> None:
    body["phoneNumber"] = raw
    body.pop("region", None)
    if region is not None:
        body["region"] = region


def _inv_short_code(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    raw, region, reason = rng.choice(SHORT_CODES)
    _set_phone(body, raw, region)
    return f"phoneNumber:{reason}"


def _inv_not_a_number(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    _set_phone(body, rng.choice(NOT_NUMBERS), None)
    return "phoneNumber:not_a_number"


def _inv_too_long(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    a, b = rng.choice(numbers), rng.choice(numbers)  # two numbers pasted into one field
    if rng.random() < 0.5:
        raw = f"{_international(a)} {pn.national_significant_number(b.parsed)}"
        region = None
    else:
        raw = str(rng.randint(2, 9)) + "".join(
            str(rng.randint(0, 9)) for _ in range(rng.randint(19, 23))
        )
        region = "US"
    if sum(ch.isdigit() for ch in raw) < 20:
        raw += " " + pn.national_significant_number(b.parsed)
    _set_phone(body, raw, region)
    return "phoneNumber:too_long"


def _inv_invalid_number(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    for _ in range(200):
        number = rng.choice(numbers)
        nsn = pn.national_significant_number(number.parsed)
        head = "".join(str(rng.randint(0, 9)) for _ in range(2))
        parsed = pn.parse(f"+{number.parsed.country_code}{head}{nsn[2:]}", None)
        possible = pn.is_possible_number_with_reason(parsed) == ValidationResult.IS_POSSIBLE
        if possible and not pn.is_valid_number(parsed):
            raw = pn.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)
            _set_phone(body, raw, number.region if rng.random() < 0.3 else None)
            return "phoneNumber:invalid_number"
    raise GeneratorError("found no invalid-but-possible number")


def _inv_bad_country(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    _set_phone(body, rng.choice(BAD_COUNTRY), None)
    return "phoneNumber:invalid_country_code"


def _inv_empty_phone(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    body["phoneNumber"] = ""  # an unset Studio variable
    return "phoneNumber:empty"


def _inv_event_name(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    body["eventName"] = rng.choice(BAD_EVENT_NAMES)
    return "eventName:unknown_event_name"


def _inv_time(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    body["timestamp"] = rng.choice(BAD_TIMES)
    return "timestamp:invalid"


def _inv_epoch_seconds(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    body["timestamp"] = _event_ms(rng) // 1000  # seconds sent where milliseconds belong
    return "timestamp:too_old"


def _inv_region(rng: random.Random, body: dict[str, Any], numbers: Sequence[Number]) -> str:
    gb = [n for n in numbers if n.region == "GB"] or list(numbers)
    _set_phone(body, _national(rng.choice(gb)), rng.choice(BAD_REGIONS))
    return "region:unknown_region"


def _inv_opt_in_expiry(rng: random.Random, body: dict[str, Any], event: Event) -> str:
    body["expiresAt"] = iso_z(event.ms + rng.randint(30, 400) * 86_400_000)
    return "expiresAt:not_for_opt_in"  # an opt-in never takes an expiry


# The problems an opt-out survives (dropped with a warning) refuse an opt-in.
_OPT_IN_INVALIDATORS: dict[str, Callable[[random.Random, dict[str, Any], Event], str]] = {
    "opt_in_metadata": _bad_metadata,
    "opt_in_expiry": _inv_opt_in_expiry,
    "opt_in_region": _bad_region,
}


_INVALIDATORS: dict[str, Callable[[random.Random, dict[str, Any], Sequence[Number]], str]] = {
    "short_code": _inv_short_code,
    "not_a_number": _inv_not_a_number,
    "too_long": _inv_too_long,
    "invalid_number": _inv_invalid_number,
    "bad_country": _inv_bad_country,
    "empty_phone": _inv_empty_phone,
    "bad_event_name": _inv_event_name,
    "bad_time": _inv_time,
    "epoch_seconds": _inv_epoch_seconds,
    "bad_region": _inv_region,
}


# -- numbering plans: retired forms, aliases, unverified numbers ------------------------------

NUMBERING_CASES = 8
"""Lines ``add_numbering_cases`` puts in, in place of as many valid lines: the count stays."""
UNVERIFIED_PREFIX = "+1211555"
"""+1 211 555 ....: the right length for the NANP, a range no metadata knows (N11 codes)."""


def add_numbering_cases(rng: random.Random, lines: list[Line], numbers: Sequence[Number]) -> None:
    """Put in issue 11's numbering-plan cases (rules 3 and 4, docs/numbering-plans.md) in place
    of the last ``NUMBERING_CASES`` valid lines, each case at random places in delivery order:
    a Mexican mobile written with the retired ``+52 1``, another with the domestic ``044`` and
    a Brazilian mobile written with 8 digits (``phoneNumber:plan_change``); an Argentine mobile
    opt-out (recorded under its SMS form too), its Studio retry and a later opt-in of the
    mobile form alone; an opt-out for an unverified ``+1 211`` number and its Studio retry
    (``phoneNumber:unverified_number``). Fresh numbers, none another's alias."""
    valid = [i for i, line in enumerate(lines) if line.event is not None]
    for index in sorted(valid[-NUMBERING_CASES:], reverse=True):
        del lines[index]
    taken = {n.e164 for n in numbers} | {a for n in numbers for a in aliases_of(n.e164)}
    mx_1 = _fresh(rng, "MX", taken, _mx_mobile_1, "MX-2019-mobile-1")
    mx_044 = _fresh(rng, "MX", taken, _mx_044, "MX-2019-044-045")
    br = _fresh(rng, "BR", taken, _br_8_digit, "BR-2016-ninth-digit")
    argentine = _fresh(rng, "AR", taken, lambda n: (_international(n), None), None)
    half = (WINDOW_START_MS + WINDOW_END_MS) // 2
    opt_out_ms = rng.randrange(WINDOW_START_MS, half)
    opt_out = _case(rng, argentine, OPT_OUT, opt_out_ms, (_international(argentine), None))
    opt_in_ms = rng.randrange(opt_out_ms + 3_600_000, WINDOW_END_MS)
    opt_in = _case(rng, argentine, OPT_IN, opt_in_ms, (argentine.e164, None))
    unverified = _case(rng, _unverified(rng, taken), OPT_OUT, _event_ms(rng))
    cases = [
        [_case(rng, mx_1, OPT_OUT, _event_ms(rng), _mx_mobile_1(mx_1), "MX-2019-mobile-1")],
        [_case(rng, mx_044, OPT_OUT, _event_ms(rng), _mx_044(mx_044), "MX-2019-044-045")],
        [_case(rng, br, OPT_OUT, _event_ms(rng), _br_8_digit(br), "BR-2016-ninth-digit")],
        [opt_out, _retry(opt_out), opt_in],
        [unverified, _retry(unverified)],
    ]
    if sum(map(len, cases)) != NUMBERING_CASES:
        raise GeneratorError("NUMBERING_CASES does not match the cases")
    for sequence in cases:
        spots = sorted(rng.randrange(len(lines) + 1) for _ in sequence)
        for shift, (spot, line) in enumerate(zip(spots, sequence, strict=True)):
            lines.insert(spot + shift, line)


Writer = Callable[[Number], tuple[str, str | None]]


def _mx_mobile_1(number: Number) -> tuple[str, str | None]:
    """Mexico before 2019: the mobile ``1`` after the country code."""
    return f"+52 1 {_national(number)}", None


def _mx_044(number: Number) -> tuple[str, str | None]:
    """Mexico before 2019: the domestic mobile prefix ``044``, read in region MX."""
    return f"044 {_national(number)}", "MX"


def _br_8_digit(number: Number) -> tuple[str, str | None]:
    """Brazil before 2016: the mobile without its leading ``9`` (area code + 8 digits)."""
    nsn = pn.national_significant_number(number.parsed)
    return f"+55 {nsn[:2]} {nsn[3:7]}-{nsn[7:]}", None


def _fresh(
    rng: random.Random, region: str, taken: set[str], writer: Writer, change: str | None
) -> Number:
    """A valid mobile of ``region`` (its example with the last two digits varied) that is not
    in ``taken`` and whose aliases are not either, and that ``writer`` writes as a form read
    back with the plan change ``change``; added to ``taken`` with its aliases."""
    example = pn.example_number_for_type(region, PhoneNumberType.MOBILE)
    if example is None:
        raise GeneratorError(f"no example mobile for {region}")
    nsn = pn.national_significant_number(example)
    for _ in range(200):
        parsed = pn.parse(f"+{example.country_code}{nsn[:-2]}{rng.randint(0, 99):02d}", None)
        e164 = pn.format_number(parsed, PhoneNumberFormat.E164)
        forms = {e164, *aliases_of(e164)}
        if not pn.is_valid_number(parsed) or forms & taken:
            continue
        number = Number(e164, region, parsed)
        raw, hint = writer(number)
        try:
            read = to_e164(raw, hint)
        except PhoneNumberProblem:
            continue
        if (read.e164, read.plan_change) == (e164, change):
            taken.update(forms)
            return number
    raise GeneratorError(f"no fresh {region} mobile written as {change}")


def _unverified(rng: random.Random, taken: set[str]) -> Number:
    """A ``UNVERIFIED_PREFIX`` number: possible, not valid by the installed metadata."""
    for _ in range(100):
        e164 = f"{UNVERIFIED_PREFIX}{rng.randint(0, 9999):04d}"
        parsed = pn.parse(e164, None)
        possible = pn.is_possible_number_with_reason(parsed) == ValidationResult.IS_POSSIBLE
        if possible and not pn.is_valid_number(parsed) and e164 not in taken:
            taken.add(e164)
            return Number(e164, "US", parsed)
    raise GeneratorError("no unverified number left")


def _case(
    rng: random.Random,
    number: Number,
    action: str,
    ms: int,
    written: tuple[str, str | None] | None = None,
    change: str | None = None,
) -> Line:
    """An original line for ``number`` written as ``written`` (default: its national form,
    region given), checked to read back as ``number`` with the plan change ``change``; its
    warning is that change's, or ``unverified_number`` for a number the metadata lacks."""
    event = _event(rng, number, action, ms)
    raw, region = written or (_national(number), number.region)
    read = to_e164(raw, region, allow_unverified=action == OPT_OUT)
    if (read.e164, read.plan_change) != (number.e164, change):
        raise GeneratorError(f"to_e164({raw!r}, {region!r}) gave {read}, built as {number.e164}")
    body: dict[str, Any] = {"phoneNumber": raw, "eventName": action}
    body["timestamp"] = render_time(rng, ms)
    if region is not None:
        body["region"] = region
    if event.event_id is not None:
        body["eventId"] = event.event_id
    if event.metadata is not None:
        body["metadata"] = event.metadata
    warning = "phoneNumber:plan_change" if change else None
    if read.unverified:
        warning = "phoneNumber:unverified_number"
    form = f"retired:{change}" if change else "unverified" if read.unverified else "international"
    return Line(body, "original", form, event, warning=warning)


def _retry(line: Line) -> Line:
    """A Studio retry of ``line``: the very same body."""
    return Line(line.body, "studio_retry", line.form, line.event, warning=line.warning)


# -- the whole file and its expectation -------------------------------------------------------


def generate(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> list[Line]:
    """The file's lines for ``seed``: ``count`` lines, about ``INVALID_SHARE`` of them invalid,
    each labelled and carrying the status a replay must give (``simulate``)."""
    rng = random.Random(seed)  # noqa: S311 - fictional test data, not a secret
    invalid = round(count * INVALID_SHARE)
    pool = build_numbers(rng, count // 2 + 2 * len(REGIONS))
    lines, numbers = build_valid_lines(rng, pool, count - invalid)
    for _ in range(invalid):
        lines.insert(rng.randrange(len(lines) + 1), build_invalid_line(rng, numbers))
    add_numbering_cases(rng, lines, numbers)
    mark_ties(lines)
    simulate(lines)
    return lines


def simulate(lines: Sequence[Line]) -> None:
    """Set each line's ``status`` as a replay in order into an empty store must give it.

    The documented rules: the idempotency key is the ``eventId``, or one derived from (E.164,
    action, event ms); a caller's ``eventId`` seen before for the same (E.164, action, ms) is
    ``duplicate`` (for another event it would be an id conflict, which this generator must
    never produce). A derived key is kept by no index (``dnc.state``): its event is
    ``duplicate`` while it is still the number's latest state, and judged like any other
    event once a newer one replaced it. Otherwise, against the number's watermark: an older
    time is ``superseded``, the same time is ``superseded`` unless an opt-out replaces an
    opt-in; else ``queued``, the new watermark. An opt-out is also an event of each other
    E.164 form of its subscriber (its aliases), with a key of its own, judged against that
    form's watermark the same way (``line.aliases``); a caller's key seen before is a
    duplicate under every form. An opt-in is not spread.
    """
    keys: dict[tuple[str, ...], tuple[str, str, int]] = {}
    watermark: dict[str, tuple[int, str]] = {}
    holder: dict[str, tuple[str, ...]] = {}  # the key of each number's latest state
    for line in lines:
        event = line.event
        if event is None:
            line.status = "rejected"
            continue
        fingerprint = (event.number.e164, event.action, event.ms)
        key = ("id", event.event_id) if event.event_id else ("derived", *map(str, fingerprint))
        forms = aliases_of(event.number.e164) if event.action == OPT_OUT else ()
        if key in keys and key[0] == "id":
            if keys[key] != fingerprint:
                raise GeneratorError(f"eventId {event.event_id} reused for another event")
            line.status = "duplicate"
            line.aliases = dict.fromkeys(forms, "duplicate")
            continue
        keys[key] = fingerprint
        line.status = _apply(watermark, holder, event.number.e164, key, event.ms, event.action)
        line.aliases = {
            form: _apply(watermark, holder, form, (*key, form), event.ms, event.action)
            for form in forms
        }


def _apply(
    watermark: dict[str, tuple[int, str]],
    holder: dict[str, tuple[str, ...]],
    e164: str,
    key: tuple[str, ...],
    ms: int,
    action: str,
) -> str:
    """``duplicate`` (a derived ``key`` that holds ``e164``'s latest state), ``queued``
    (``e164``'s watermark moved to ``(ms, action)``, held by ``key``) or ``superseded``."""
    if key[0] == "derived" and holder.get(e164) == key:
        return "duplicate"
    current = watermark.get(e164)
    if current is not None and not _replaces(ms, action, *current):
        return "superseded"
    watermark[e164] = (ms, action)
    holder[e164] = key
    return "queued"


def _replaces(ms: int, action: str, current_ms: int, current_action: str) -> bool:
    if ms != current_ms:
        return ms > current_ms
    return action == OPT_OUT and current_action == OPT_IN


def final_state(lines: Sequence[Line]) -> dict[str, str]:
    """The latest action per number after the replay: that of its last ``queued`` line."""
    final: dict[str, str] = {}
    for line in lines:
        if line.status == "queued" and line.event is not None:
            final[line.event.number.e164] = line.event.action
        for form, status in line.aliases.items():
            if status == "queued" and line.event is not None:
                final[form] = line.event.action
    return dict(sorted(final.items()))


def summarise(lines: Sequence[Line], seed: int) -> dict[str, Any]:
    """The content of ``events.expected.json`` for ``lines``."""
    final = final_state(lines)
    statuses = Counter(line.status for line in lines)
    rejected = Counter(line.problem for line in lines if line.problem is not None)
    warned = Counter(line.warning for line in lines if line.warning is not None)
    regions = {pn.region_code_for_number(pn.parse(e164, None)) for e164 in final} - {None}
    actions = Counter(final.values())
    return {
        "generator": GENERATOR,
        "seed": seed,
        "phonenumbers": pn.__version__,
        "events": len(lines),
        "statuses": {s: statuses[s] for s in ("queued", "duplicate", "superseded", "rejected")},
        "rejected_by_reason": dict(sorted(rejected.items())),
        "accepted_with_warnings": dict(sorted(warned.items())),
        "final": final,
        "opt_outs": actions[OPT_OUT],
        "opt_ins": actions[OPT_IN],
        "numbers": len(final),
        "regions": len(regions),
        "line_kinds": _line_kinds(lines),
        "written_forms": dict(sorted(Counter(ln.form for ln in lines if ln.event).items())),
    }


def _line_kinds(lines: Sequence[Line]) -> dict[str, int]:
    kinds = Counter(line.kind for line in lines)
    kinds["late"] = sum(line.late for line in lines)
    kinds["tie"] = sum(line.tie for line in lines)
    kinds["warned"] = sum(line.warning is not None for line in lines)
    kinds["lowercase_time"] = sum(
        isinstance(line.body["timestamp"], str) and line.body["timestamp"].endswith("z")
        for line in lines
    )
    kinds["with_event_id"] = sum(bool(line.body.get("eventId")) for line in lines)
    kinds["retired_form"] = sum(line.warning == "phoneNumber:plan_change" for line in lines)
    kinds["unverified"] = sum(line.warning == "phoneNumber:unverified_number" for line in lines)
    kinds["alias_opt_out"] = sum(bool(line.aliases) for line in lines)
    kinds["epoch_ms_timestamp"] = sum(
        isinstance(line.body["timestamp"], int) and line.event is not None for line in lines
    )
    return dict(sorted(kinds.items()))


def write(lines: Sequence[Line], summary: dict[str, Any], out: Path) -> Path:
    """Write the JSONL file at ``out`` and the summary beside it; return the summary's path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line.body, ensure_ascii=False) + "\n" for line in lines)
    out.write_text(text, encoding="utf-8")
    expected = expected_path(out)
    expected.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return expected


def expected_path(out: Path) -> Path:
    """``events.jsonl`` -> ``events.expected.json``, in the same directory."""
    return out.with_name(out.name.removesuffix(".jsonl") + ".expected.json")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate, write both files, print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="lines to write")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSONL file to write")
    args = parser.parse_args(argv)
    if args.count < 100:
        parser.error("--count must be at least 100")
    lines = generate(args.seed, args.count)
    summary = summarise(lines, args.seed)
    expected = write(lines, summary, args.out)
    print(f"{args.out}: {len(lines)} lines, {summary['statuses']}; {expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
