"""The history checker: the whole ordered history of CXone writes judged against the events
the receiver accepted, as Jepsen-style checkers judge a history rather than a final state.

Input, plain data: the sandbox's write ``journal`` (``GET /_sandbox/journal`` entries: every
DNC write it applied, in order, each naming the event time it stood for, sent by the client in
``X-Dnc-Sync-Trace`` with ``DNC_CXONE_SEND_TRACE=true``), the events ``sent`` to the receiver
with its answers (``oracle.Sent``), the ``dead_letters`` Redis holds (E.164 -> the dead
letter's JSON: ``reason``, ``event`` with ``eventMs`` and ``action``) and the dead-letter
reasons the scenario expects (e.g. a number the sandbox always refuses).

The receiver's order of two events of one number (``order``): the later event time (UTC ms)
wins; at the same time an opt-out beats an opt-in; two opt-outs at the same time: the longer
protection wins (no expiry beats an expiry, a later expiry beats an earlier one). An event is
*accepted* when the receiver answered it 2xx, *indeterminate* when no answer came (it may have
been recorded), *refused* otherwise. A journal entry *stands for* the sent event of its
number with the entry's event time and action (the accepted one first, then an indeterminate
one; among those, the one whose expiry the entry asked for). A write that did not change the
state (an add of an active record, an expiry of an absent one) still stands for its event.

Violations, each counted with up to ``examples`` examples (numbers masked):

- ``reordered`` (a): per number, a write standing for an event ordered before the event an
  earlier write of that number stood for: CXone's state moved back in the receiver's order.
- ``lost`` (b): a number's latest accepted event is not reflected: the number's last write
  does not stand for that event or a later-ordered one (so the final state is not its
  action, or holds it only by accident), and no dead letter with an expected reason names
  that event by event time *and* action. An opt-in needs no write when no record of this
  service's is there to remove (the number's last state-changing write is not an add: the
  sync sends an opt-in only for a record it created, ``dnc.ownership``).
- ``unexpected_dead_letter`` (c): a dead letter whose reason is not expected, or that does
  not name its number's latest accepted event by (event time, action).
- ``unknown_event`` (d): a write standing for an event the receiver never accepted (never
  sent, or refused).
- ``untraced``: a write naming no event (the client sent no trace): the history cannot be
  judged, so it is never taken for a pass.

Imports nothing that does I/O; ``tests/chaos/test_history.py`` shows each violation caught.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dnc.masking import mask_number
from reliability.faults.oracle import NO_EXPIRY, Order, Sent, group_digits, order

REORDERED = "reordered"
LOST = "lost"
UNEXPECTED_DEAD_LETTER = "unexpected_dead_letter"
UNKNOWN_EVENT = "unknown_event"
UNTRACED = "untraced"
VIOLATIONS = (REORDERED, LOST, UNEXPECTED_DEAD_LETTER, UNKNOWN_EVENT, UNTRACED)
__all__ = ["NO_EXPIRY", "VIOLATIONS", "HistoryResult", "check_history", "event_order", "order"]


def event_order(event: Sent) -> Order:
    """``oracle.order`` of a sent event: its place in the receiver's order."""
    return order(event.event_ms, event.action, event.expires_ms)


@dataclass
class HistoryResult:
    """What ``check_history`` found. Counts: ``writes`` (journal entries judged), ``changed``
    (of which changed the state), ``numbers`` (numbers with an accepted event), ``reflected``
    (whose latest accepted event the last write stands for, or a later one),
    ``dead_lettered`` (whose latest accepted event an expected dead letter names instead);
    ``violations``: count per class (every class of ``VIOLATIONS``, 0 when clean);
    ``examples``: up to N per class, numbers masked."""

    writes: int = 0
    changed: int = 0
    numbers: int = 0
    reflected: int = 0
    dead_lettered: int = 0
    violations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VIOLATIONS, 0))
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    limit: int = 5

    @property
    def ok(self) -> bool:
        """No violation of any class."""
        return not any(self.violations.values())

    def failures(self) -> list[str]:
        """One line per violated class, e.g. ``"history: 2 reordered"``."""
        return [f"history: {n} {name}" for name, n in self.violations.items() if n]

    def as_json(self) -> dict[str, Any]:
        """The counts, violations and examples as JSON-ready data."""
        return {
            "writes": self.writes,
            "changed": self.changed,
            "numbers": self.numbers,
            "reflected": self.reflected,
            "dead_lettered": self.dead_lettered,
            "violations": dict(self.violations),
            "examples": {k: v for k, v in self.examples.items() if v},
        }

    def _violate(self, name: str, example: dict[str, Any]) -> None:
        self.violations[name] += 1
        shown = self.examples.setdefault(name, [])
        if len(shown) < self.limit:
            shown.append(example)


@dataclass(frozen=True, slots=True)
class _Write:
    """One judged journal entry: its ``entry``, the event it stands for and that event's
    ``key`` (both ``None`` when untraced or standing for no accepted or indeterminate
    event: such a write is a violation of its own and takes no part in the order)."""

    entry: Mapping[str, Any]
    event: Sent | None
    key: Order | None


def check_history(
    journal: Iterable[Mapping[str, Any]],
    sent: Iterable[Sent],
    dead_letters: Mapping[str, Any],
    expected_dead_reasons: Collection[str] = (),
    *,
    target: str | None = None,
    stored: Callable[[str], str] = group_digits,
    examples: int = 5,
) -> HistoryResult:
    """Judge the write history (see the module docstring). ``journal``: the sandbox's
    entries (``seq``, ``phoneNumber``, ``action``, ``eventMs``, ``expiredDate``, ``changed``,
    ``target``), only those of ``target`` when given (``dnc-group:1001``); ``stored`` maps
    an E.164 number to the journal's ``phoneNumber`` (default: E.164 digits without ``+``,
    ``DNC_CXONE_PHONE_FORMAT=e164-digits``; the identity for outbound contacts). A dead
    letter's reason is expected when it contains one of ``expected_dead_reasons``
    (case-insensitive). At most ``examples`` examples per class."""
    result = HistoryResult(limit=examples)
    by_number: dict[str, list[Sent]] = {}
    for event in sent:
        number = stored(event.e164)
        by_number.setdefault(number, []).append(event)
    latest: dict[str, Sent] = {}
    for number, events in by_number.items():
        accepted = [e for e in events if e.acknowledged]
        if accepted:
            latest[number] = max(accepted, key=event_order)
    result.numbers = len(latest)

    entries = [e for e in journal if target is None or e.get("target") == target]
    last = _replay(entries, target, by_number, result)
    ours = _holding_ours(entries)
    used_letters = _judge_latest(latest, last, ours, dead_letters, expected_dead_reasons, result)
    for e164, letter in sorted(dead_letters.items()):
        if e164 not in used_letters:
            result._violate(UNEXPECTED_DEAD_LETTER, _letter_example(e164, letter, latest, stored))
    return result


def _holding_ours(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    """The numbers (as stored) whose last state-changing write is an add (an opt-out): a
    record this service created is there at the end of the history."""
    last_change: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: int(e["seq"])):
        if entry.get("changed"):
            last_change[str(entry["phoneNumber"])] = str(entry.get("action"))
    return {number for number, action in last_change.items() if action == "optOut"}


def _replay(
    journal: Iterable[Mapping[str, Any]],
    target: str | None,
    by_number: Mapping[str, list[Sent]],
    result: HistoryResult,
) -> dict[str, _Write]:
    """Walk the journal in ``seq`` order: invariants (a) and (d) and untraced writes; the
    last write of each number."""
    highest: dict[str, tuple[Order, Mapping[str, Any]]] = {}
    last: dict[str, _Write] = {}
    entries = [e for e in journal if target is None or e.get("target") == target]
    for entry in sorted(entries, key=lambda e: int(e["seq"])):
        result.writes += 1
        result.changed += bool(entry.get("changed"))
        number = str(entry["phoneNumber"])
        write = _judge_write(entry, by_number.get(number, []), result)
        last[number] = write
        if write.key is None:
            continue
        before = highest.get(number)
        if before is not None and write.key < before[0]:
            result._violate(
                REORDERED,
                {
                    "number": mask_number(number),
                    "seq": entry["seq"],
                    "stood_for": _describe(entry),
                    "after_seq": before[1]["seq"],
                    "after_write_for": _describe(before[1]),
                },
            )
        if before is None or write.key > before[0]:
            highest[number] = (write.key, entry)
    return last


def _judge_write(entry: Mapping[str, Any], events: list[Sent], result: HistoryResult) -> _Write:
    """The event ``entry`` stands for and its order key; counts ``untraced`` and
    ``unknown_event`` writes."""
    event_ms, action = entry.get("eventMs"), str(entry.get("action"))
    number = str(entry["phoneNumber"])
    if event_ms is None:
        result._violate(UNTRACED, {"number": mask_number(number), "seq": entry["seq"]})
        return _Write(entry, None, None)
    asked = _expiry_ms(entry.get("expiredDate"))
    candidates = [e for e in events if e.event_ms == event_ms and e.action == action]
    # accepted before indeterminate before refused; then the expiry the write asked for
    candidates.sort(key=lambda e: (_standing(e), e.expires_ms != asked))
    event = candidates[0] if candidates else None
    if event is None or _standing(event) == 2:
        why = "never sent" if event is None else f"receiver answered {event.status}"
        result._violate(
            UNKNOWN_EVENT,
            {"number": mask_number(number), "seq": entry["seq"], "stood_for": _describe(entry)}
            | {"why": why},
        )
        return _Write(entry, None, None)  # no place in the receiver's order
    return _Write(entry, event, event_order(event))


def _judge_latest(
    latest: Mapping[str, Sent],
    last: Mapping[str, _Write],
    ours: Collection[str],
    dead_letters: Mapping[str, Any],
    expected_reasons: Collection[str],
    result: HistoryResult,
) -> set[str]:
    """Invariant (b) per number; returns the E.164 numbers whose dead letter is expected
    (an expected reason, naming the latest accepted event by event time and action)."""
    used: set[str] = set()
    for number, event in sorted(latest.items()):
        letter = dead_letters.get(event.e164)
        covered = letter is not None and _expected_letter(letter, event, expected_reasons)
        if covered:
            used.add(event.e164)
        final = last.get(number)
        if (
            final is not None
            and final.event is not None
            and final.key is not None
            and final.key >= event_order(event)
        ) or (event.action == "optIn" and number not in ours):
            result.reflected += 1
        elif covered:
            result.dead_lettered += 1
        else:
            result._violate(
                LOST,
                {
                    "number": mask_number(event.e164),
                    "latest": f"{event.action}@{event.event_ms}",
                    "last_write": None
                    if final is None
                    else {"seq": final.entry["seq"], "stood_for": _describe(final.entry)},
                    "dead_letter": None if letter is None else _letter_summary(letter),
                },
            )
    return used


def _expected_letter(letter: Any, event: Sent, expected_reasons: Collection[str]) -> bool:
    """Whether ``letter`` has an expected reason and names ``event`` by (time, action)."""
    summary = _letter_summary(letter)
    reason = str(summary["reason"] or "").lower()
    if not reason or not any(r.lower() in reason for r in expected_reasons if r):
        return False
    return (summary["eventMs"], summary["action"]) == (event.event_ms, event.action)


def _letter_summary(letter: Any) -> dict[str, Any]:
    """A dead letter's ``reason``, ``eventMs`` and ``action`` (``None`` where missing)."""
    body = letter if isinstance(letter, Mapping) else {}
    event = body.get("event")
    event = event if isinstance(event, Mapping) else {}
    return {
        "reason": body.get("reason"),
        "eventMs": event.get("eventMs"),
        "action": event.get("action"),
    }


def _letter_example(
    e164: str, letter: Any, latest: Mapping[str, Sent], stored: Callable[[str], str]
) -> dict[str, Any]:
    summary = _letter_summary(letter)
    event = latest.get(stored(e164))
    return {
        "number": mask_number(e164),
        "reason": summary["reason"],
        "names": f"{summary['action']}@{summary['eventMs']}",
        "latest": None if event is None else f"{event.action}@{event.event_ms}",
    }


def _standing(event: Sent) -> int:
    """0 accepted (2xx), 1 indeterminate (no answer), 2 refused."""
    if event.acknowledged:
        return 0
    return 1 if event.status is None else 2


def _describe(entry: Mapping[str, Any]) -> str:
    """``optOut@<event ms>`` (``+exp`` when the write asked for an expiry)."""
    text = f"{entry.get('action')}@{entry.get('eventMs')}"
    return text + "+exp" if entry.get("expiredDate") else text


def _expiry_ms(value: object) -> int | None:
    """An ISO 8601 ``expiredDate`` as UTC epoch ms (``None``: none or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
