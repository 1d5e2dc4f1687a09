"""What the chaos scripts send and what they check it against.

The core check is ``history.check_history``: the sandbox's whole journal of writes (fetched
with ``fetch_journal``) against the events sent. The functions here are the cross-checks
beside it: the oracle over the events that got a 2xx (the latest event per number wins: event
time in UTC ms; at the same time an opt-out beats an opt-in), compared with the sandbox's
final DNC group (numbers written as E.164 digits without ``+``,
``DNC_CXONE_PHONE_FORMAT=e164-digits``) and with Redis (watermarks, dead letters, pending),
counting, per acknowledged event, whether Redis applied, superseded, dead-lettered or lost it.
Plain functions of plain data, so ``tests/chaos/`` checks them on broken states.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPT_OUT, OPT_IN = "optOut", "optIn"
_RANK = {OPT_IN: 0, OPT_OUT: 1}  # at the same event time an opt-out wins
NO_EXPIRY = 1 << 62
"""Above every expiry in UTC ms: an opt-out that never lapses protects longest."""
Order = tuple[int, int, int]


def order(event_ms: int, action: str, expires_ms: int | None = None) -> Order:
    """The receiver's order of one number's events as a sortable key: (event time UTC ms,
    opt-out over opt-in, protection: ``NO_EXPIRY`` for an opt-out without expiry, else its
    expiry in UTC ms; 0 for an opt-in): the later event wins; at the same time an opt-out
    beats an opt-in, and of two opt-outs the longer protection wins."""
    if action == OPT_OUT:
        return (event_ms, 1, NO_EXPIRY if expires_ms is None else expires_ms)
    return (event_ms, _RANK.get(action, -1), 0)


def numbers(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct valid E.164 numbers (+1 202 555 0000-9999; at most 10,000)."""
    if not 0 < count + offset <= 10_000:
        raise ValueError("at most 10,000 numbers")
    return [f"+1202555{n:04d}" for n in range(offset, offset + count)]


@dataclass
class Sent:
    """One event as sent, and what the receiver answered to its last attempt: ``status``
    (``None``: no answer, a transport error), the 202 body's ``outcome`` (queued / duplicate /
    superseded), when that attempt was sent and answered (``time.monotonic()`` seconds) and how
    many ``attempts`` it took. ``expires_ms``: when an opt-out lapses (UTC epoch ms, ``None``:
    never), sent as ``expiresAt``."""

    e164: str
    action: str
    event_ms: int
    event_id: str
    status: int | None = None
    outcome: str | None = None
    sent_at_s: float = 0.0
    answered_at_s: float = 0.0
    attempts: int = 0
    expires_ms: int | None = None

    @property
    def fingerprint(self) -> str:
        """What the receiver keeps under the event's idempotency key."""
        return f"{self.e164}|{self.action}|{self.event_ms}"

    @property
    def key(self) -> Order:
        """What orders two events of one number (``order``)."""
        return order(self.event_ms, self.action, self.expires_ms)

    @property
    def watermark(self) -> str:
        """The receiver's watermark value for this event: ``"<event ms>:<action>"``, with
        ``":<expiry ms>"`` for an opt-out that lapses."""
        if self.action == OPT_OUT and self.expires_ms is not None:
            return f"{self.event_ms}:{self.action}:{self.expires_ms}"
        return f"{self.event_ms}:{self.action}"

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def body(self) -> bytes:
        """The webhook body (JSON)."""
        body: dict[str, object] = {
            "phoneNumber": self.e164,
            "eventName": self.action,
            "timestamp": self.event_ms,
            "eventId": self.event_id,
        }
        if self.expires_ms is not None:
            body["expiresAt"] = self.expires_ms
        return json.dumps(body).encode()


@dataclass
class EventFactory:
    """Random events over ``pool`` numbers: ``opt_out_share`` opt-outs, event times up to
    ``spread_ms`` before now (so late, older events arrive and are superseded), and
    ``tie_share`` of them at exactly the time of that number's previous event with the other
    action (the opt-out-wins-ties rule). Event ids are ``<prefix>-<serial>``."""

    pool: list[str]
    rng: random.Random
    prefix: str = "chaos"
    opt_out_share: float = 0.6
    spread_ms: int = 30_000
    tie_share: float = 0.05
    serial: int = 0
    _last: dict[str, tuple[int, str]] = field(default_factory=dict)

    def make(self) -> Sent:
        """The next event."""
        self.serial += 1
        e164 = self.rng.choice(self.pool)
        previous = self._last.get(e164)
        if previous is not None and self.rng.random() < self.tie_share:
            event_ms, action = previous[0], OPT_IN if previous[1] == OPT_OUT else OPT_OUT
        else:
            event_ms = int(time.time() * 1000) - self.rng.randrange(self.spread_ms)
            action = OPT_OUT if self.rng.random() < self.opt_out_share else OPT_IN
        self._last[e164] = (event_ms, action)
        return Sent(e164, action, event_ms, f"{self.prefix}-{self.serial}")


def expected_state(events: Iterable[Sent]) -> dict[str, Sent]:
    """The oracle: per number, the winning event among the acknowledged ones."""
    best: dict[str, Sent] = {}
    for event in events:
        if event.acknowledged:
            current = best.get(event.e164)
            if current is None or event.key > current.key:
                best[event.e164] = event
    return best


def group_digits(e164: str) -> str:
    """How the sandbox's DNC group names a number in the ``e164-digits`` format."""
    return e164.removeprefix("+")


def active_numbers(snapshot: Mapping[str, Any], group_id: str = "1001") -> set[str]:
    """The digits of the active records of ``group_id`` in a ``/_sandbox/state`` answer."""
    return {r["phoneNumber"] for r in snapshot["dncGroups"][group_id]["active"]}


def wrongly_applied(
    expected: Mapping[str, Sent], active: set[str], dead: Mapping[str, Any] | None = None
) -> list[str]:
    """Numbers whose DNC state in the sandbox differs from the oracle (opt-out: an active
    record; opt-in: none), plus active records of numbers never acknowledged. A number in
    ``dead`` (dead letters by E.164) is not judged here: ``account`` counts it."""
    dead = dead or {}
    wrong = [
        e164
        for e164, event in expected.items()
        if e164 not in dead and (group_digits(e164) in active) != (event.action == OPT_OUT)
    ]
    known = {group_digits(e164) for e164 in expected}
    return sorted(wrong) + sorted(f"+{digits}" for digits in active - known)


def account(
    events: Iterable[Sent], watermarks: Mapping[str, str], dead: Mapping[str, Any]
) -> Counter[str]:
    """Every acknowledged event's fate against Redis: ``applied`` (it is the number's
    watermark), ``superseded`` (the watermark is a winning later event), ``dead_lettered``
    (its number is a dead letter with a reason, for this very event: its event time and
    action) or ``lost`` (Redis holds
    an older state, or none: the event is gone). Two events of a number at the same time with
    the same action are both ``applied``: either one is the state held. ``watermarks``:
    E.164 -> ``"<ms>:<action>[:<expiry ms>]"``; ``dead``: E.164 -> the dead letter's JSON object
    (``reason``, ``event``)."""
    fates: Counter[str] = Counter()
    for event in events:
        if event.acknowledged:
            fates[_fate(event, watermarks.get(event.e164), dead.get(event.e164))] += 1
    return fates


def _fate(event: Sent, watermark: str | None, letter: Any) -> str:
    if watermark is None:
        return "lost"
    watermark = watermark.partition(" ")[0]  # a state value: its watermark part (dnc.state)
    ms, _, rest = watermark.partition(":")
    action, _, expiry = rest.partition(":")
    held = order(int(ms), action, int(expiry) if expiry else None)
    if held < event.key:
        return "lost"
    if held > event.key:
        return "superseded"
    if letter is not None:
        named = letter.get("event", {})
        ok = bool(letter.get("reason")) and (named.get("eventMs"), named.get("action")) == (
            event.event_ms,
            event.action,
        )
        return "dead_lettered" if ok else "lost"
    return "applied"


def phantoms(events: Iterable[Sent], watermarks: Mapping[str, str]) -> list[str]:
    """Numbers whose watermark is no event that was sent for them (Redis invented a state)."""
    sent: dict[str, set[str]] = {}
    for event in events:
        sent.setdefault(event.e164, set()).add(event.watermark)
    return sorted(n for n, w in watermarks.items() if w.partition(" ")[0] not in sent.get(n, set()))


def ids_missing(raw_client: Any, tag: str, acked: Iterable[Sent]) -> int:
    """Acked events with a caller's id that neither an idempotency bucket (``{tag}:ids:*``,
    ``dnc.state``) nor a legacy ``{tag}:event-id:<id>`` key holds with their fingerprint
    (``raw_client``: a client without ``decode_responses``: the buckets hold binary hashes).
    Events with a derived id (``d-...``) have no key: their state answers for them."""
    held: dict[bytes, bytes] = {}
    for bucket in raw_client.scan_iter(match=f"{tag}:ids:*", count=1_000):
        held.update(raw_client.hgetall(bucket))
    missing = 0
    for event in acked:
        if event.event_id.startswith("d-"):
            continue
        field = hashlib.blake2b(event.event_id.encode(), digest_size=16).digest()
        value = hashlib.blake2b(event.fingerprint.encode(), digest_size=16).digest()
        if (
            held.get(field) != value
            and raw_client.get(f"{tag}:event-id:{event.event_id}") != event.fingerprint.encode()
        ):
            missing += 1
    return missing


def applications(snapshot: Mapping[str, Any], group_id: str = "1001") -> dict[str, Counter[str]]:
    """Per number (digits), how many records the sandbox created (``added``: active and
    expired records) and how many it expired early (``expired``: an opt-in), from its state."""
    group = snapshot["dncGroups"][group_id]
    counts: dict[str, Counter[str]] = {}
    for record in group["active"]:
        counts.setdefault(record["phoneNumber"], Counter())["added"] += 1
    for record in group["expired"]:
        per = counts.setdefault(record["phoneNumber"], Counter())
        per["added"] += 1
        per["expired"] += 1
    return counts


def extra_applications(events: Iterable[Sent], snapshot: Mapping[str, Any]) -> dict[str, int]:
    """Numbers the sandbox changed more often than acknowledged events asked: more records
    added than opt-outs, or more expired than opt-ins. Each event can be applied once at
    most, and one the receiver answered ``superseded`` or ``duplicate`` never; a re-push that
    CXone answers "already exists" / "does not exist" changes nothing and is not counted.
    Returns digits -> how many changes too many."""
    asked: dict[str, Counter[str]] = {}
    for event in events:
        if event.acknowledged and event.outcome in (None, "queued"):
            kind = "added" if event.action == OPT_OUT else "expired"
            asked.setdefault(group_digits(event.e164), Counter())[kind] += 1
    extra = {}
    for digits, done in applications(snapshot).items():
        wanted = asked.get(digits, Counter())
        over = sum(max(0, done[k] - wanted[k]) for k in ("added", "expired"))
        if over:
            extra[digits] = over
    return extra


class JournalGap(RuntimeError):
    """The sandbox's journal no longer holds every write (dropped past its cap, or reset)."""


JournalCall = Callable[[str, str], Mapping[str, Any]]
"""``Stack.sandbox``: one control-API call (method, path) -> its JSON answer."""


def fetch_journal(call: JournalCall, target: str | None = None) -> list[dict[str, Any]]:
    """Every entry of the sandbox's write journal, page by page (``GET /_sandbox/journal``),
    in order; only those of ``target`` (``dnc-group:1001``) when given. Raises
    ``JournalGap`` when entries are missing: a history with a hole cannot be judged."""
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        answer = call("GET", f"/_sandbox/journal?after={after}")
        page = list(answer["entries"])
        first = page[0]["seq"] if page else int(answer["nextSeq"])
        if first != after + 1:
            raise JournalGap(f"journal entries {after + 1}..{first - 1} are gone")
        entries += page
        after = page[-1]["seq"] if page else after
        if not answer["more"]:
            break
    return [e for e in entries if target is None or e["target"] == target]


def statuses(events: Iterable[Sent]) -> dict[str, int]:
    """How many events got each status (``none``: no answer)."""
    counts = Counter("none" if e.status is None else str(e.status) for e in events)
    return dict(sorted(counts.items()))
