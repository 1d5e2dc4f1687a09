"""Replaying a JSONL file of webhook events through a running receiver, as CXone would send
them, and checking the outcome against what the file's generator says it holds.

Events go one at a time in file order: order decides which of two events for a number is
superseded, so the counts are only comparable to the generator's when nothing reorders them.
A 503 is retried after its Retry-After, as CXone Studio retries a failed REST call.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from dnc.events import Action
from dnc.keys import RedisKeys
from dnc.number_hash import states
from dnc.state import read_event
from dnc.store import convert_error

EVENTS_PATH = "/v1/events"
MAX_503_RETRIES = 5


class ReplayRefused(RuntimeError):
    """The receiver refused the caller itself (401/403) or kept answering 503; replaying the
    rest would only repeat it."""


@dataclass(slots=True)
class ReplayTally:
    """What the receiver answered: ``statuses`` (queued / duplicate / superseded / rejected,
    one per line), ``rejected_by_reason`` (``field:reason`` of the first problem a 422
    names, or the error name of another 4xx) and ``accepted_with_warnings`` (``field:reason``
    of each optional field a 202 says it dropped from an opt-out, and of each note on how a
    field was read: ``phoneNumber:plan_change``, ``phoneNumber:unverified_number``,
    ``timestamp:after_receipt``...; as ``dnc-sync status`` counts them)."""

    statuses: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    accepted_with_warnings: Counter[str] = field(default_factory=Counter)

    def add(self, response: httpx.Response) -> None:
        """Count one answer (2xx or 4xx)."""
        body = _json(response)
        if response.status_code < 300:
            self.statuses[str(body.get("status", "accepted"))] += 1
            for section in ("dropped", "notes"):
                entries = body.get(section)
                for entry in entries if isinstance(entries, list) else ():
                    if isinstance(entry, dict):
                        reason = f"{entry.get('field')}:{entry.get('reason')}"
                        self.accepted_with_warnings[reason] += 1
            return
        self.statuses["rejected"] += 1
        problems = body.get("problems")
        if isinstance(problems, list) and problems and isinstance(problems[0], dict):
            first = problems[0]
            self.rejected_by_reason[f"{first.get('field')}:{first.get('reason')}"] += 1
        else:
            self.rejected_by_reason[str(body.get("error", response.status_code))] += 1


@dataclass(frozen=True, slots=True)
class AppliedTally:
    """Where a set of numbers stands after syncing: ``opt_outs`` / ``opt_ins`` whose latest
    state CXone acknowledged, ``pending`` still waiting, ``dead`` dead-lettered."""

    opt_outs: int
    opt_ins: int
    pending: int
    dead: int


async def replay(
    lines: Iterable[str], client: httpx.AsyncClient, retry_wait_cap_s: float = 10.0
) -> ReplayTally:
    """POST each non-empty line (a JSON body) to ``client``'s receiver, in order; returns the
    tally. Raises ``ReplayRefused`` (401/403, or 503 after ``MAX_503_RETRIES``) and
    ``httpx.HTTPError`` (the receiver is unreachable)."""
    tally = ReplayTally()
    for line in lines:
        if line.strip():
            tally.add(await _post(client, line.strip().encode(), retry_wait_cap_s))
    return tally


async def _post(client: httpx.AsyncClient, body: bytes, cap_s: float) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    for _ in range(MAX_503_RETRIES + 1):
        response = await client.post(EVENTS_PATH, content=body, headers=headers)
        if response.status_code in (401, 403):
            raise ReplayRefused(f"the receiver refused the caller ({response.status_code})")
        if response.status_code != 503:
            return response
        await asyncio.sleep(min(cap_s, _retry_after_s(response)))
    raise ReplayRefused("the receiver kept answering 503 (is Redis up?)")


async def known_numbers(client: aioredis.Redis, keys: RedisKeys, numbers: Sequence[str]) -> int:
    """How many of ``numbers`` (E.164) the store already has an event for: a replay onto kept
    data counts repeats as duplicates, so its counts differ from a fresh store's by design.
    Raises ``StoreError``."""
    if not numbers:
        return 0
    try:
        async with client.pipeline(transaction=False) as pipe:
            read_marks = states(keys).queue_get(pipe, list(numbers))
            marks = read_marks(iter(await pipe.execute()))
    except redis_errors.RedisError as exc:
        raise convert_error(exc) from exc
    return sum(mark is not None for mark in marks)


async def applied(client: aioredis.Redis, keys: RedisKeys, numbers: Sequence[str]) -> AppliedTally:
    """Where ``numbers`` (E.164) stand now (``AppliedTally``). Raises ``StoreError``."""
    if not numbers:
        return AppliedTally(0, 0, 0, 0)
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.latest, list(numbers))
            pipe.zmscore(keys.pending, list(numbers))
            pipe.hmget(keys.dead_letters, list(numbers))
            read_states = states(keys).queue_get(pipe, list(numbers))
            results = iter(await pipe.execute())
            latest, scores, letters = next(results), next(results), next(results)
            found = read_states(results)
    except redis_errors.RedisError as exc:
        raise convert_error(exc) from exc
    counts: Counter[str] = Counter()
    for number, raw, score, letter, state in zip(
        numbers, latest, scores, letters, found, strict=True
    ):
        event = read_event(number, state, raw)
        if event is None:
            continue
        if score is not None:
            counts["pending"] += 1
        elif letter is not None:
            counts["dead"] += 1
        else:
            action = event.action
            counts["opt_outs" if action is Action.OPT_OUT else "opt_ins"] += 1
    return AppliedTally(counts["opt_outs"], counts["opt_ins"], counts["pending"], counts["dead"])


def compare(tally: ReplayTally, expected: dict[str, Any]) -> list[str]:
    """Every difference between ``tally`` and the generator's ``expected`` summary
    (``statuses``, ``rejected_by_reason`` and ``accepted_with_warnings``), as lines; empty when
    they match."""
    differences = []
    for section, got in (
        ("statuses", tally.statuses),
        ("rejected_by_reason", tally.rejected_by_reason),
        ("accepted_with_warnings", tally.accepted_with_warnings),
    ):
        wanted = Counter({str(k): int(v) for k, v in expected.get(section, {}).items()})
        for key in sorted(set(wanted) | set(got)):
            if wanted[key] != got[key]:
                differences.append(f"{section} {key}: expected {wanted[key]}, got {got[key]}")
    return differences


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
