"""Redis must never evict this project's keys: its ``maxmemory-policy`` must be ``noeviction``.

Under a ``volatile-*`` policy Redis may evict keys that carry a TTL (the sync lease, the
idempotency keys), so two syncs could push at once and a retried event could count twice;
under ``allkeys-*`` it may evict anything, pending opt-outs included. With ``noeviction`` a
full Redis refuses writes instead (the receiver answers 503, the caller retries): nothing
acknowledged is dropped.

``require_noeviction`` is the one check, used by the receiver's ``/readyz``, by the sync flow
before it takes the lease, and by ``dnc-sync check``. ``DNC_REDIS_ALLOW_EVICTION=true`` turns
the refusal into a WARNING logged at each check.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from dnc.errors import DncError
from dnc.redis_failures import convert_error

NO_EVICTION = "noeviction"
HOW_TO_FIX = (
    "run `CONFIG SET maxmemory-policy noeviction` and put `maxmemory-policy noeviction` in "
    "redis.conf (on managed Redis, set maxmemory-policy to noeviction in its parameter "
    "group); DNC_REDIS_ALLOW_EVICTION=true runs anyway, at the risk of losing opt-outs"
)

log = logging.getLogger("dnc.redis")


class EvictionPolicyError(DncError):
    """Redis may evict keys (``maxmemory-policy`` is not ``noeviction``, or unreadable);
    ``policy`` is what Redis reported (``None``: it would not say)."""

    def __init__(self, message: str, policy: str | None) -> None:
        super().__init__(message)
        self.policy = policy


def describe_policy(policy: str | None) -> str:
    """Why ``policy`` (``None``: unreadable) is refused, and how to fix it, in one sentence."""
    return f"{_risk(policy)}; to fix it, {HOW_TO_FIX}"


def _risk(policy: str | None) -> str:
    if policy is None:
        return (
            "cannot read Redis's maxmemory-policy (neither INFO memory nor CONFIG GET "
            "report it), so it may evict pending opt-outs, the sync lease and the "
            "idempotency keys"
        )
    return (
        f"Redis maxmemory-policy is {policy!r}, not {NO_EVICTION!r}: under memory pressure "
        "it may evict pending opt-outs (allkeys-*) or the sync lease and the idempotency "
        "keys (volatile-*)"
    )


async def read_eviction_policy(client: aioredis.Redis) -> str | None:
    """Redis's ``maxmemory-policy``: the ``maxmemory_policy`` field of ``INFO memory`` (managed
    Redis often disables CONFIG), else ``CONFIG GET maxmemory-policy``; ``None`` when both are
    refused or silent. Raises ``StoreUnavailable``/``StoreError`` when Redis fails otherwise."""
    try:
        policy = _text((await _refused_as_empty(client.info("memory"))).get("maxmemory_policy"))
        if policy:
            return policy
        reply = await _refused_as_empty(client.config_get("maxmemory-policy"))
    except redis_errors.RedisError as exc:
        raise convert_error(exc) from exc
    values = {_text(key): _text(value) for key, value in reply.items()}
    return values.get("maxmemory-policy") or None


async def require_noeviction(
    client: aioredis.Redis,
    *,
    allow_eviction: bool,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> str | None:
    """Return Redis's ``maxmemory-policy`` when it is ``noeviction``. Otherwise (or when it
    cannot be read) raise ``EvictionPolicyError`` naming the policy and the fix, or, with
    ``allow_eviction`` (``DNC_REDIS_ALLOW_EVICTION``), log a WARNING on ``logger`` and return
    it. Raises ``StoreUnavailable`` when Redis cannot be reached."""
    policy = await read_eviction_policy(client)
    if policy == NO_EVICTION:
        return policy
    if not allow_eviction:
        raise EvictionPolicyError(describe_policy(policy), policy)
    (logger or log).warning(
        "DNC_REDIS_ALLOW_EVICTION=true: running anyway, although %s", _risk(policy)
    )
    return policy


async def _refused_as_empty(call: Any) -> dict[Any, Any]:
    """The reply of ``call`` (an INFO or CONFIG GET), or ``{}`` when Redis refuses the command
    (disabled, renamed, not allowed by ACL)."""
    try:
        reply = await call
    except redis_errors.ResponseError:
        return {}
    return dict(reply) if isinstance(reply, dict) else {}


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
