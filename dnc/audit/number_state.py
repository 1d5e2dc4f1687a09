"""One number's state in Redis now: latest event, pending, retry backoff, dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dnc.audit.timeline import parse_json
from dnc.keys import RedisKeys
from dnc.number_hash import states
from dnc.redis_failures import REDIS_FAILURES, convert_error
from dnc.state import decode


@dataclass(frozen=True, slots=True)
class RetryState:
    """A number waiting out a retry backoff after temporary failures: ``attempts`` counted
    so far, since when it waits (``waiting_since_ms``), its first counted failure
    (``first_failure_ms``, ``None`` before one) and when it may be claimed again
    (``deferred_until_ms``); times UTC ms, ``None`` when not known."""

    attempts: int | None
    waiting_since_ms: int | None
    first_failure_ms: int | None
    deferred_until_ms: int | None


@dataclass(frozen=True, slots=True)
class NumberState:
    """A number's state in Redis now: its ``latest_event`` (the stored event JSON parsed; from
    a compact state, ``dnc.state``, only its id, action, times and expiry: the timeline has
    the rest),
    ``pending_since_ms`` (receive time of its oldest unapplied change, UTC ms; ``None``: not
    pending), ``retry`` (``None`` unless it failed temporarily) and ``dead_letter`` (reason,
    event, ``deadAtMs``; ``None`` unless CXone refused it for good)."""

    latest_event: dict[str, Any] | None
    pending_since_ms: int | None
    retry: RetryState | None
    dead_letter: dict[str, Any] | None


async def current_state(client: aioredis.Redis, keys: RedisKeys, e164: str) -> NumberState:
    """Read ``e164``'s state from Redis in one transaction (a consistent snapshot). Raises
    ``StoreUnavailable``/``StoreError``."""
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hget(keys.latest, e164)
            pipe.zscore(keys.pending, e164)
            pipe.zscore(keys.deferred, e164)
            pipe.hget(keys.retry_state, e164)
            pipe.hget(keys.dead_letters, e164)
            read_state = states(keys).queue_get(pipe, [e164])
            results = iter(await pipe.execute())
            latest, pending, deferred, retry, dead = (next(results) for _ in range(5))
            [state] = read_state(results)
    except REDIS_FAILURES as exc:
        raise convert_error(exc) from exc
    compact = None
    if latest is None and state is not None:
        compact = decode(e164, state.decode() if isinstance(state, bytes) else str(state))
    return NumberState(
        latest_event=(
            _object(latest)
            if compact is None
            else compact.model_dump(mode="json", exclude_none=True)
        ),
        pending_since_ms=None if pending is None else int(pending),
        retry=_retry(retry, deferred),
        dead_letter=_object(dead),
    )


def _object(raw: object) -> dict[str, Any] | None:
    """A stored JSON object; an unreadable one kept as ``{"unreadable": text}``."""
    if raw is None:
        return None
    parsed = parse_json(raw)
    return parsed if isinstance(parsed, dict) else {"unreadable": str(parsed)}


def _retry(raw: object, deferred: object) -> RetryState | None:
    """``"<attempts>:<waiting since ms>:<first counted failure ms, 0 before one>"``."""
    if raw is None and deferred is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    numbers = [_int(part) for part in text.split(":")] + [None, None, None]
    return RetryState(
        attempts=numbers[0],
        waiting_since_ms=numbers[1],
        first_failure_ms=numbers[2] or None,
        deferred_until_ms=None if deferred is None else int(float(str(deferred))),
    )


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
