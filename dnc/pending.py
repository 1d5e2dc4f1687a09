"""The pending set as the sync flow sees it: a lease, claims, settling, dead letters.

A sync run takes the lease (a Redis key with a TTL, so a run that dies frees it by itself),
claims the oldest pending numbers with their latest state without removing them, pushes them,
then settles each one: acknowledged numbers leave the pending set only if their watermark is
still the claimed one (compare-and-delete in Lua), so an event that arrived during the push
stays pending; numbers refused for good move to the dead letters, visible and requeueable.
Everything here is a plain async function of an injected Redis client, tested without Prefect.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from redis import exceptions as redis_errors

from dnc.errors import StoreError
from dnc.events import Action, StoredEvent
from dnc.keys import RedisKeys
from dnc.store import convert_error, load_lua
from dnc.target import DncChange


class LeaseLost(StoreError):
    """Another sync run holds the lease (or ours expired): this run must not claim."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed number: ``e164``, its pending ``score_ms`` (receive time of its oldest unapplied
    change, UTC ms), the
    ``watermark`` it had when claimed, and its latest ``event``."""

    e164: str
    score_ms: int
    watermark: str
    event: StoredEvent

    def change(self) -> DncChange:
        """The state to push: the latest event's action at its event time (UTC ms), with its
        expiry (UTC ms) for an opt-out that has one; an opt-in never carries an expiry."""
        event = self.event
        expires_ms = event.expiresMs if event.action is Action.OPT_OUT else None
        return DncChange(self.e164, event.action, event.eventMs, expires_ms)


class DeadLetter(BaseModel):
    """A number CXone refused for good: ``reason`` (CXone's words, redacted), the ``event`` it
    refused, and ``deadAtMs`` (UTC epoch ms)."""

    model_config = ConfigDict(frozen=True)

    reason: str
    event: StoredEvent
    deadAtMs: int


class PendingQueue:
    """Lease, claim, settle and dead-letter operations on one namespace. Methods raise
    ``StoreUnavailable``/``StoreError`` when Redis fails and ``LeaseLost`` as documented."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._lease = client.register_script(load_lua("lease.lua"))
        self._claim = client.register_script(load_lua("claim.lua"))
        self._settle = client.register_script(load_lua("settle.lua"))
        self._requeue = client.register_script(load_lua("requeue.lua"))

    async def acquire_lease(self, token: str, ttl_ms: int) -> bool:
        """Take the lease for ``ttl_ms`` ms if it is free (or already ours)."""
        return await self._lease_call("acquire", token, ttl_ms)

    async def renew_lease(self, token: str, ttl_ms: int) -> bool:
        """Extend our lease to ``ttl_ms`` ms from now; false when it is not ours any more."""
        return await self._lease_call("renew", token, ttl_ms)

    async def release_lease(self, token: str) -> None:
        """Drop the lease if it is ours."""
        await self._lease_call("release", token, 0)

    async def claim(self, token: str, limit: int) -> list[Claim]:
        """The ``limit`` oldest pending numbers with their latest state, oldest first. Raises
        ``LeaseLost`` when ``token`` does not hold the lease."""
        keys = self._keys
        rows = await self._run(
            self._claim,
            [keys.sync_lease, keys.pending, keys.watermark, keys.latest],
            [token, limit],
        )
        if rows is None:
            raise LeaseLost("another sync run holds the lease")
        claims = []
        for i in range(0, len(rows), 4):
            member, score, watermark, latest = (_text(v) for v in rows[i : i + 4])
            if latest:  # a pending number always has its latest event; skip if not
                claims.append(
                    Claim(
                        member,
                        int(float(score)),
                        watermark,
                        StoredEvent.model_validate_json(latest),
                    )
                )
        return claims

    async def acknowledge(self, claims: Sequence[Claim]) -> list[bool]:
        """Remove each claim from the pending set if its watermark is unchanged; per claim,
        whether it left (false: a newer event arrived, it stays pending)."""
        return await self._settle_all([(claim, "") for claim in claims])

    async def dead_letter(
        self, refused: Sequence[tuple[Claim, str]], now_ms: int | None = None
    ) -> list[bool]:
        """Move refused claims (with CXone's reason) to the dead letters, under the same
        compare-and-delete as ``acknowledge``."""
        at_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        return await self._settle_all(
            [
                (
                    claim,
                    DeadLetter(reason=reason, event=claim.event, deadAtMs=at_ms).model_dump_json(),
                )
                for claim, reason in refused
            ]
        )

    async def dead_letters(self) -> dict[str, DeadLetter]:
        """Every dead letter by E.164."""
        raw = await self._run_command("hgetall", self._keys.dead_letters)
        return {_text(k): DeadLetter.model_validate_json(v) for k, v in raw.items()}

    async def requeue(self, numbers: Sequence[str] = (), now_ms: int | None = None) -> int:
        """Put dead letters (all when ``numbers`` is empty) back in the pending set; returns
        how many were requeued. Their wait (the sync lag) restarts at ``now_ms`` (UTC ms,
        default: now)."""
        keys = self._keys
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        count = await self._run(
            self._requeue, [keys.dead_letters, keys.pending, keys.watermark], [now_ms, *numbers]
        )
        return int(count)

    async def backlog(self) -> tuple[int, int | None]:
        """(pending count, receive time in UTC ms of the longest-waiting pending number, or
        ``None`` when nothing is pending)."""
        size = await self._run_command("zcard", self._keys.pending)
        oldest = await self._run_command("zrange", self._keys.pending, 0, 0, withscores=True)
        return int(size), (int(oldest[0][1]) if oldest else None)

    async def _settle_all(self, items: Sequence[tuple[Claim, str]]) -> list[bool]:
        if not items:
            return []
        keys = self._keys
        args: list[Any] = []
        for claim, dead in items:
            args += [claim.e164, claim.watermark, dead]
        settled = await self._run(
            self._settle, [keys.pending, keys.watermark, keys.dead_letters], args
        )
        return [bool(flag) for flag in settled]

    async def _lease_call(self, mode: str, token: str, ttl_ms: int) -> bool:
        held = await self._run(self._lease, [self._keys.sync_lease], [mode, token, ttl_ms])
        return bool(held)

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except redis_errors.RedisError as exc:
            raise convert_error(exc) from exc

    async def _run_command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, name)(*args, **kwargs)
        except redis_errors.RedisError as exc:
            raise convert_error(exc) from exc


def chunk(claims: Sequence[Claim], batch_size: int) -> list[list[Claim]]:
    """Split claims by action (opt-outs first: the compliance-critical ones) into batches of
    at most ``batch_size``, oldest first within each action."""
    batches: list[list[Claim]] = []
    for action in (Action.OPT_OUT, Action.OPT_IN):
        same = [claim for claim in claims if claim.event.action is action]
        batches += [same[i : i + batch_size] for i in range(0, len(same), batch_size)]
    return batches


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
