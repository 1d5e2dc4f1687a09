"""The history checker (``reliability/faults/history.py``) catches each bug it is for, planted in an
otherwise clean history, and passes the clean one; then a real write history, taken over a
loopback socket from the sandbox's journal as the real ``DncGroupsTarget`` writes with
``send_trace`` on, is listed in order with its event times and judged.

Events are fixed UTC epoch ms (``T``); no test reads the clock or asserts a timing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from dnc.cxone.dnc_groups import DncGroupsTarget
from dnc.cxone.factory import build_http_client
from dnc.events import Action
from dnc.settings import CxoneSettings
from dnc.target import DncChange
from reliability.faults import history, oracle
from reliability.faults.history import (
    LOST,
    REORDERED,
    UNEXPECTED_DEAD_LETTER,
    UNKNOWN_EVENT,
    UNTRACED,
    check_history,
)

T = 1_790_000_000_000  # UTC epoch ms, 2026-09-21
A, B, C = "+12025550001", "+12025550002", "+12025550003"
TARGET = "dnc-group:1001"
REFUSED = "Invalid phone number."


def event(
    e164: str, action: str, ms: int, status: int | None = 202, expires_ms: int | None = None
) -> oracle.Sent:
    sent = oracle.Sent(e164, action, ms, f"id-{e164}-{action}-{ms}", expires_ms=expires_ms)
    sent.status = status
    return sent


class Journal:
    """Builds journal entries as ``GET /_sandbox/journal`` lists them, numbered in order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def write(
        self,
        e164: str,
        action: str,
        event_ms: int | None,
        *,
        changed: bool = True,
        expired: str | None = None,
    ) -> Journal:
        self.entries.append(
            {
                "seq": len(self.entries) + 1,
                "atMs": T + 10_000 + len(self.entries),
                "target": TARGET,
                "method": "POST" if action == "optOut" else "DELETE",
                "phoneNumber": e164.removeprefix("+"),
                "action": action,
                "expiredDate": expired,
                "changed": changed,
                "eventMs": event_ms,
            }
        )
        return self


def letter(e164: str, action: str, ms: int, reason: str = REFUSED) -> dict[str, Any]:
    """A dead letter as Redis holds it (``dnc.pending.DeadLetter`` JSON)."""
    stored = {"eventId": "x", "eventIdDerived": False, "e164": e164, "action": action}
    return {"reason": reason, "event": stored | {"eventMs": ms, "receivedMs": ms}, "deadAtMs": ms}


# A: opt-out, then a later opt-in, then a later opt-out: three writes in order.
# B: an opt-in and an opt-out at the same time (the opt-out wins), written once; then the
#    opt-out pushed again (a retry: "already exists", no change) still stands for it.
# C: refused for good, dead-lettered with an expected reason.
# An event the receiver answered 503 and one never answered are not required anywhere.
EVENTS = [
    event(A, "optOut", T),
    event(A, "optIn", T + 1),
    event(A, "optOut", T + 2),
    event(B, "optIn", T + 5),
    event(B, "optOut", T + 5),
    event(C, "optOut", T + 7),
    event(A, "optIn", T + 1000, status=503),
    event(B, "optIn", T + 1000, status=None),
]


def clean() -> Journal:
    return (
        Journal()
        .write(A, "optOut", T)
        .write(B, "optOut", T + 5)
        .write(A, "optIn", T + 1)
        .write(A, "optOut", T + 2)
        .write(B, "optOut", T + 5, changed=False)
    )


DEAD = {C: letter(C, "optOut", T + 7)}


def check(journal: Journal, dead: dict[str, Any] | None = None) -> history.HistoryResult:
    return check_history(journal.entries, EVENTS, DEAD if dead is None else dead, [REFUSED])


def only(result: history.HistoryResult, name: str, count: int = 1) -> None:
    """``result`` shows ``count`` violations of class ``name`` and none of any other."""
    assert result.violations == dict.fromkeys(history.VIOLATIONS, 0) | {name: count}
    assert not result.ok and len(result.examples[name]) == count


def test_a_clean_history_passes() -> None:
    result = check(clean())
    assert result.ok, result.as_json()
    assert (result.writes, result.changed, result.numbers) == (5, 4, 3)
    assert (result.reflected, result.dead_lettered) == (2, 1)
    assert result.failures() == []


D = "+12025550004"


def test_an_opt_in_with_no_record_of_ours_to_remove_needs_no_write() -> None:
    """The sync sends an opt-in only for a record it created (``dnc.ownership``): never
    opted out here, or an add that found the record already there (someone else's)."""
    events = [*EVENTS, event(D, "optIn", T + 20)]
    result = check_history(clean().entries, events, DEAD, [REFUSED])
    assert result.ok and result.reflected == 3, result.as_json()
    someone_elses = clean().write(D, "optOut", T + 19, changed=False)
    events = [*EVENTS, event(D, "optOut", T + 19), event(D, "optIn", T + 20)]
    result = check_history(someone_elses.entries, events, DEAD, [REFUSED])
    assert result.ok and result.reflected == 3, result.as_json()


def test_an_opt_in_not_written_over_a_record_of_ours_is_lost() -> None:
    events = [*EVENTS, event(D, "optOut", T + 19), event(D, "optIn", T + 20)]
    ours = clean().write(D, "optOut", T + 19)  # our add created the record: it must go
    only(check_history(ours.entries, events, DEAD, [REFUSED]), LOST)
    # an add whose reply was lost, then "already exists" on the retry: still ours
    retried = clean().write(D, "optOut", T + 19).write(D, "optOut", T + 19, changed=False)
    only(check_history(retried.entries, events, DEAD, [REFUSED]), LOST)


def test_an_opt_in_reordered_after_a_newer_opt_out_is_caught() -> None:
    # A's old opt-in (T+1) lands after its newer opt-out (T+2): the state moved back. The final
    # write is then the opt-out again (a retry), so the final state alone looks right.
    journal = clean().write(A, "optIn", T + 1).write(A, "optOut", T + 2)
    result = check(journal)
    only(result, REORDERED)
    [example] = result.examples[REORDERED]
    assert example == {
        "number": "***0001",
        "seq": 6,
        "stood_for": f"optIn@{T + 1}",
        "after_seq": 4,
        "after_write_for": f"optOut@{T + 2}",
    }
    final = {"12025550001", "12025550002"}  # A and B active, C dead-lettered
    assert oracle.wrongly_applied(oracle.expected_state(EVENTS), final, DEAD) == []  # blind


def test_a_stale_write_that_changed_nothing_still_counts() -> None:
    # B's opt-in (T+5) is ordered before its opt-out at the same time; pushed after it, even a
    # write that CXone reports as no change is out of order.
    journal = clean().write(B, "optIn", T + 5).write(B, "optOut", T + 5, changed=False)
    only(check(journal), REORDERED)


def test_a_lost_final_write_is_caught() -> None:
    # A's last write (the opt-out at T+2) never happened: CXone holds the opt-in.
    journal = Journal().write(A, "optOut", T).write(B, "optOut", T + 5).write(A, "optIn", T + 1)
    result = check(journal)
    only(result, LOST)
    assert result.examples[LOST][0]["latest"] == f"optOut@{T + 2}"
    assert result.examples[LOST][0]["last_write"] == {"seq": 3, "stood_for": f"optIn@{T + 1}"}


def test_a_number_never_written_is_lost() -> None:
    journal = Journal().write(A, "optOut", T).write(A, "optIn", T + 1).write(A, "optOut", T + 2)
    only(check(journal), LOST)  # B


def test_a_dead_letter_matched_by_time_but_with_the_wrong_action_is_caught() -> None:
    # C's dead letter names the right event time and an expected reason, but an opt-in: it
    # does not stand for C's opt-out, which is then neither written nor dead-lettered.
    result = check(clean(), {C: letter(C, "optIn", T + 7)})
    assert result.violations[LOST] == 1 and result.violations[UNEXPECTED_DEAD_LETTER] == 1
    assert result.dead_lettered == 0
    # the Redis-side accounting is as strict now: a letter must name the action too
    marks = {C: f"{T + 7}:optOut"}
    assert oracle.account([EVENTS[5]], marks, {C: letter(C, "optIn", T + 7)}) == {"lost": 1}
    assert oracle.account([EVENTS[5]], marks, DEAD) == {"dead_lettered": 1}


def test_a_dead_letter_for_an_older_event_does_not_cover_the_latest() -> None:
    events = [*EVENTS, event(C, "optOut", T + 9, expires_ms=T + 86_400_000)]
    result = check_history(clean().entries, events, DEAD, [REFUSED])
    assert result.violations[LOST] == 1 and result.violations[UNEXPECTED_DEAD_LETTER] == 1


def test_an_unexpected_dead_letter_is_caught() -> None:
    # A transient fault taken for a refusal: A is dead-lettered though its state was written.
    dead = DEAD | {A: letter(A, "optOut", T + 2, reason="Temporary failure; try again.")}
    result = check(clean(), dead)
    only(result, UNEXPECTED_DEAD_LETTER)
    assert result.examples[UNEXPECTED_DEAD_LETTER][0]["reason"] == "Temporary failure; try again."
    # with no reason expected (the chaos suites), C's letter is unexpected too, and C lost
    strict = check_history(clean().entries, EVENTS, DEAD, ())
    assert strict.violations[UNEXPECTED_DEAD_LETTER] == 1 and strict.violations[LOST] == 1


def test_a_write_for_an_event_the_receiver_never_accepted_is_caught() -> None:
    never_sent = clean().write(A, "optOut", T + 3).write(A, "optOut", T + 2, changed=False)
    result = check(never_sent)
    only(result, UNKNOWN_EVENT)
    assert result.examples[UNKNOWN_EVENT][0]["why"] == "never sent"
    # as A's last write it also leaves A's latest event unreflected (held only by accident)
    result = check(clean().write(A, "optOut", T + 3))
    assert result.violations[UNKNOWN_EVENT] == 1 and result.violations[LOST] == 1
    refused = clean().write(A, "optIn", T + 1000)  # the receiver answered 503
    result = check(refused)
    assert result.violations[UNKNOWN_EVENT] == 1 and result.violations[LOST] == 1
    assert result.examples[UNKNOWN_EVENT][0]["why"] == "receiver answered 503"
    # the wrong action at a known time is no known event either
    only(check(clean().write(A, "optIn", T + 2).write(A, "optOut", T + 2)), UNKNOWN_EVENT)


def test_an_event_never_answered_may_be_written() -> None:
    # B's opt-in at T+1000 got no answer (it may have been recorded): writing it is allowed,
    # and as the later event it stands in for B's latest acknowledged one.
    result = check(clean().write(B, "optIn", T + 1000))
    assert result.ok, result.as_json()


def test_an_untraced_write_is_never_a_pass() -> None:
    result = check(clean().write(A, "optOut", None, changed=False))
    assert result.violations[UNTRACED] == 1 and result.violations[LOST] == 1
    # a client that sends no trace at all fails every number
    untraced = Journal().write(A, "optOut", None).write(B, "optOut", None)
    assert check(untraced).violations[UNTRACED] == 2


def test_equal_times_both_opt_outs_the_longer_protection_wins() -> None:
    day = 86_400_000
    assert history.order(T, "optOut") > history.order(T, "optOut", T + 2 * day)
    assert history.order(T, "optOut", T + 2 * day) > history.order(T, "optOut", T + day)
    assert history.order(T, "optOut", T + day) > history.order(T, "optIn")
    assert history.order(T + 1, "optIn") > history.order(T, "optOut")
    events = [
        event(A, "optOut", T, expires_ms=T + day),
        event(A, "optOut", T, expires_ms=T + 2 * day),
    ]
    short, long = "2026-09-22T14:13:20.000Z", "2026-09-23T14:13:20.000Z"
    good = Journal().write(A, "optOut", T, expired=short).write(A, "optOut", T, expired=long)
    assert check_history(good.entries, events, {}, ()).ok
    bad = Journal().write(A, "optOut", T, expired=long).write(A, "optOut", T, expired=short)
    result = check_history(bad.entries, events, {}, ())
    assert result.violations[REORDERED] == 1 and result.violations[LOST] == 1


def test_the_redis_cross_checks_order_expiries_the_same_way() -> None:
    day = 86_400_000
    lapsing = event(A, "optOut", T, expires_ms=T + day)
    assert lapsing.watermark == f"{T}:optOut:{T + day}"  # as record_events.lua writes it
    assert json.loads(lapsing.body())["expiresAt"] == T + day
    assert oracle.account([lapsing], {A: lapsing.watermark}, {}) == {"applied": 1}
    assert oracle.account([lapsing], {A: f"{T}:optOut"}, {}) == {"superseded": 1}
    assert oracle.account([lapsing], {A: f"{T}:optOut:{T + 1}"}, {}) == {"lost": 1}
    permanent = event(A, "optOut", T)
    assert oracle.expected_state([lapsing, permanent])[A] is permanent


def test_only_the_target_asked_is_judged_and_examples_are_masked() -> None:
    journal = clean()
    journal.entries.append(journal.entries[0] | {"seq": 6, "target": "contacts", "eventMs": 1})
    assert check_history(journal.entries, EVENTS, DEAD, [REFUSED], target=TARGET).ok
    result = check_history(journal.entries, EVENTS, DEAD, [REFUSED], examples=0)
    assert result.violations[UNKNOWN_EVENT] == 1 and result.examples[UNKNOWN_EVENT] == []
    shown = json.dumps(check(Journal()).as_json())
    assert "2025550001" not in shown and "***0001" in shown


def test_a_journal_with_a_hole_is_refused() -> None:
    pages = {0: [{"seq": 1, "target": TARGET}], 1: [{"seq": 3, "target": TARGET}]}

    def call(method: str, path: str) -> dict[str, Any]:
        after = int(path.rsplit("=", 1)[1])
        return {"entries": pages[after], "nextSeq": 4, "more": after == 0}

    with pytest.raises(oracle.JournalGap, match=r"2\.\.2"):
        oracle.fetch_journal(call)

    def whole(method: str, path: str) -> dict[str, Any]:
        after = int(path.rsplit("=", 1)[1])
        entries = [{"seq": after + 1, "target": TARGET if after else "contacts"}]
        return {"entries": entries if after < 3 else [], "nextSeq": 4, "more": after < 2}

    assert [e["seq"] for e in oracle.fetch_journal(whole, TARGET)] == [2, 3]


# -- a real history, over a socket ----------------------------------------------------------------


@pytest.fixture
async def control(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        await client.post("/_sandbox/reset", json={"config": True})
        yield client


def groups_settings(url: str, **overrides: Any) -> CxoneSettings:
    values: dict[str, Any] = {
        "adapter": "dnc-groups",
        "issuer_url": url,
        "dnc_group_id": "1001",
        "client_id": "sandbox-cxone-client-id",
        "client_secret": "sandbox-cxone-client-secret-0123456789",
        "access_key_id": "SANDBOXACCESSKEYID000001",
        "access_key_secret": "sandbox-access-key-secret-0123456789",
        "phone_format": "e164-digits",
        "send_trace": True,
        "rate_limit_rps": 0,
    }
    return CxoneSettings(**(values | overrides))


@pytest.mark.socket
async def test_the_sandbox_journals_real_writes_in_order_with_their_events(
    sandbox_url: str, control: httpx.AsyncClient
) -> None:
    a_out, b_out, c_in = (
        DncChange(A, Action.OPT_OUT, T),
        DncChange(B, Action.OPT_OUT, T + 1),
        DncChange(C, Action.OPT_IN, T + 2),  # C has no record: no change, still journaled
    )
    a_in = DncChange(A, Action.OPT_IN, T + 3)
    settings = groups_settings(sandbox_url)
    async with build_http_client(settings) as http:
        target = DncGroupsTarget(http, settings)
        await target.apply([a_out, b_out, c_in])
        await target.apply([a_in])
        await target.apply([a_out])  # a stale opt-out pushed after the newer opt-in

    def call(method: str, path: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.request(method, sandbox_url + path).json()
        return body

    journal = oracle.fetch_journal(call, TARGET)
    listed = [
        (e["seq"], e["method"], e["phoneNumber"], e["action"], e["changed"], e["eventMs"])
        for e in journal
    ]
    assert listed == [
        (1, "POST", "12025550001", "optOut", True, T),
        (2, "POST", "12025550002", "optOut", True, T + 1),
        (3, "DELETE", "12025550003", "optIn", False, T + 2),
        (4, "DELETE", "12025550001", "optIn", True, T + 3),
        (5, "POST", "12025550001", "optOut", True, T),
    ]
    assert all(e["target"] == TARGET and e["expiredDate"] is None for e in journal)
    assert [e["atMs"] for e in journal] == sorted(e["atMs"] for e in journal)
    events = [event(c.e164, c.action.value, c.event_ms) for c in (a_out, b_out, c_in, a_in)]
    result = check_history(journal, events, {}, ())
    assert result.violations[REORDERED] == 1 and result.violations[LOST] == 1
    assert check_history(journal[:4], events, {}, ()).ok

    await control.post("/_sandbox/reset")
    untraced = groups_settings(sandbox_url, send_trace=False)  # the default
    async with build_http_client(untraced) as http:
        await DncGroupsTarget(http, untraced).apply([b_out])
    [entry] = oracle.fetch_journal(call)
    assert (entry["seq"], entry["phoneNumber"], entry["eventMs"]) == (1, "12025550002", None)
