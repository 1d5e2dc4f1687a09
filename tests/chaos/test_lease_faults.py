"""The lease-takeover fault suite (``reliability/faults/lease_takeover.py``) in its short CI
size, and the checks of it and of the stuck numbers of ``reliability/faults/cxone_faults.py``
shown able to fail.

The script runs as its own process against real ones: Redis, the sandbox with slow DELETEs,
the receiver, the shared Prefect server (``conftest.py``) and two ``dnc-sync sync run``
processes, the first of which loses its lease mid-push. Its JSON must show a write history
that never moved a number back and the first run Failed with ``LeaseLost``. The short
``cxone_faults`` run with its stuck numbers is in ``test_faults.py``.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from reliability.faults import cxone_faults, lease_takeover
from reliability.faults.oracle import OPT_IN, OPT_OUT, Sent
from tests.chaos.conftest import PrefectServer
from tests.chaos.test_faults import chaos

# -- the lease link cuts lease calls only ----------------------------------------------------------


@pytest.mark.redis
@pytest.mark.socket
async def test_the_link_cuts_a_runs_lease_calls_and_nothing_else(
    real_redis: aioredis.Redis, namespace: str, prefect: PrefectServer
) -> None:
    # ``prefect`` only starts the shared server now, so that its start overlaps this module.
    lease_key, other = f"{{{namespace}}}:sync-lease", f"{{{namespace}}}:other"
    port = real_redis.connection_pool.connection_kwargs["port"]
    link = lease_takeover.LeaseLink(port, lease_key.encode())
    await link.start()
    client = aioredis.Redis.from_url(link.url)
    try:
        await client.set(lease_key, "run-a")
        await client.set(other, "1")
        link.cut()
        with pytest.raises(redis_errors.ConnectionError):
            await client.pexpire(lease_key, 5000)  # a renewal: its connection is dropped
        assert await client.get(other) == b"1"  # the rest goes through
        history = f"{{{namespace}}}:sync-lease-history"  # not the lease key itself
        assert await client.hset(history, "holder", "run-a") == 1
        with pytest.raises(redis_errors.ConnectionError):
            await client.get(lease_key)
        assert link.dropped == 2 and link.forwarded >= 4
        assert await real_redis.pttl(lease_key) == -1  # the renewal never reached Redis
    finally:
        await client.aclose()
        await link.stop()


async def test_a_command_split_across_reads_is_parsed_whole() -> None:
    reader = asyncio.StreamReader()
    wire = b"*3\r\n$7\r\nEVALSHA\r\n$4\r\nab\r\n\r\n$1\r\n1\r\n"
    for i in range(0, len(wire), 3):
        reader.feed_data(wire[i : i + 3])
    reader.feed_eof()
    raw, args = await lease_takeover.read_command(reader)
    assert raw == wire and args == [b"EVALSHA", b"ab\r\n", b"1"]


# -- a takeover round is judged strictly --------------------------------------------------------

GOOD_ROUND: dict[str, Any] = {
    "round": 1,
    "a": {
        "exit_code": 1,
        "state": "FAILED",
        "message": "Flow run encountered an exception: LeaseLost: the sync lease was lost",
        "completed_ever": False,
        "deletes_in_flight_at_cut": 2,
        "writes_landed": 40,
        "lease_calls_cut": 20,
    },
    "b": {
        "exit_code": 0,
        "writes": 20,
        "first_write_after_fence_s": 0.2,
        "first_write_after_a_expiry_s": 3.2,
    },
}


def test_a_good_takeover_round_passes() -> None:
    assert lease_takeover.round_violations(GOOD_ROUND) == []


@pytest.mark.parametrize(
    ("side", "field", "value", "caught"),
    [
        ("a", "exit_code", 0, "run A exited 0"),
        ("a", "state", "COMPLETED", "not FAILED"),
        ("a", "message", "Flow run encountered an exception: StoreUnavailable", "LeaseLost"),
        ("a", "completed_ever", True, "Completed at some point"),
        ("b", "exit_code", 1, "run B exited 1"),
        ("b", "writes", 0, "run B wrote nothing"),
        ("b", "first_write_after_fence_s", -0.1, "before its takeover fence"),
        ("b", "first_write_after_a_expiry_s", 0.4, "within the takeover grace"),
        ("a", "deletes_in_flight_at_cut", 0, "the fault missed"),
        ("a", "writes_landed", 0, "the fault missed"),
        ("a", "lease_calls_cut", 0, "the fault missed"),
    ],
)
def test_a_bad_takeover_round_is_caught(side: str, field: str, value: object, caught: str) -> None:
    bad = copy.deepcopy(GOOD_ROUND)
    bad[side][field] = value
    [violation] = lease_takeover.round_violations(bad)
    assert caught in violation


# -- stuck numbers: starvation and their end are judged -------------------------------------------


def entry(seq: int, e164: str, action: str, event_ms: int, at_ms: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "atMs": at_ms,
        "phoneNumber": e164.removeprefix("+"),
        "action": action,
        "eventMs": event_ms,
        "method": "POST" if action == OPT_OUT else "DELETE",
    }


def gave_up(event: Sent) -> dict[str, Any]:
    return {
        "reason": "gave up after 4 temporary failures: Temporary failure processing record",
        "event": {"eventMs": event.event_ms, "action": event.action},
    }


S1, S2, S3, BEHIND = "+12025559001", "+12025559002", "+12025559003", "+12025559100"
LIFT_MS = 5_000


def stuck_case() -> cxone_faults.Stuck:
    events = [
        Sent(S1, OPT_OUT, 100, "s1"),
        Sent(S2, OPT_IN, 100, "s2"),
        Sent(S3, OPT_OUT, 100, "s3"),
    ]
    return cxone_faults.Stuck(events, [Sent(BEHIND, OPT_OUT, 200, "b1")], lifted_ms=LIFT_MS)


def test_stuck_numbers_reflected_or_given_up_and_no_starvation_pass() -> None:
    stuck = stuck_case()
    journal = [
        entry(1, BEHIND, OPT_OUT, 200, 1_000),  # applied while the stuck ones failed
        entry(2, S1, OPT_OUT, 100, 6_000),  # reflected after the lift
        entry(3, S2, OPT_IN, 100, 6_100),
    ]
    judged = cxone_faults.judge_stuck(stuck, journal, {S3: gave_up(stuck.events[2])})
    assert (judged["reflected"], judged["dead_lettered"], judged["lost"]) == (2, 1, 0)
    assert judged["behind_applied_while_stuck"] == 1
    assert cxone_faults.stuck_violations(judged, retried=3) == []


def test_starvation_a_lost_stuck_number_and_a_stray_dead_letter_are_caught() -> None:
    stuck = stuck_case()
    journal = [
        entry(1, S1, OPT_OUT, 100, 6_000),
        entry(2, BEHIND, OPT_OUT, 200, 6_500),  # only after the lift: it waited behind them
    ]
    dead = {
        S2: {"reason": "refused for good", "event": {"eventMs": 100, "action": OPT_IN}},
        "+12025550007": gave_up(Sent("+12025550007", OPT_OUT, 1, "x")),  # never stuck
    }
    judged = cxone_faults.judge_stuck(stuck, journal, dead)
    assert judged["behind_applied_while_stuck"] == 0
    assert (judged["reflected"], judged["lost"]) == (1, 2)  # S2: wrong reason; S3: nothing
    violations = cxone_faults.stuck_violations(judged, retried=0)
    assert len(violations) == 4
    assert any("(starved)" in v for v in violations)
    assert any("neither reflected nor dead-lettered" in v for v in violations)
    assert any("not stuck" in v for v in violations)
    assert any("the fault missed" in v for v in violations)


def test_a_stuck_number_written_while_refused_is_caught() -> None:
    stuck = stuck_case()
    journal = [entry(1, BEHIND, OPT_OUT, 200, 1_000), entry(2, S1, OPT_OUT, 100, 2_000)]
    journal += [entry(3, S2, OPT_IN, 100, 6_000), entry(4, S3, OPT_OUT, 100, 6_000)]
    judged = cxone_faults.judge_stuck(stuck, journal, {})
    assert judged["written_while_failing"] == 1
    [violation] = cxone_faults.stuck_violations(judged, retried=3)
    assert "while the sandbox refused them" in violation


# -- the script, short ---------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.socket
def test_a_run_that_lost_its_lease_mid_push_never_undoes_its_successor(
    prefect: PrefectServer,
) -> None:
    report = chaos("lease_takeover", "--prefect-api-url", prefect.url())
    assert report["reordered"] == 0 and report["pending_after"] == 0
    assert report["extra_applications"] == 0 and report["dead_letters"] == 0
    [judged] = report["rounds"]
    a, b = judged["a"], judged["b"]
    assert a["exit_code"] != 0 and a["state"] == "FAILED" and "LeaseLost" in a["message"]
    assert not a["completed_ever"]
    # the fault landed: A's lease calls were cut while its slow DELETEs were under way, and
    # those DELETEs did land (after the client gave up on them)
    assert a["lease_calls_cut"] > 0 and a["deletes_in_flight_at_cut"] > 0
    assert a["writes_landed"] > 0
    # B took over, waited out the grace (3 s by the timing rule) and pushed every opt-out
    assert b["exit_code"] == 0 and b["writes"] == judged["numbers"]
    assert b["grace_s"] == pytest.approx(3.0, abs=0.01)
    assert b["first_write_after_a_expiry_s"] >= 3.0 and b["first_write_after_fence_s"] >= 0
