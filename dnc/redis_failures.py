"""Redis failures as our errors: what a Redis call raises, and its ``StoreError``.

Every module that talks to Redis catches ``REDIS_FAILURES`` and raises
``convert_error(exc) from exc`` (``dnc.errors`` draws the hierarchy).
"""

from __future__ import annotations

from redis import exceptions as redis_errors

from dnc.errors import StoreError, StoreUnavailable

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    OSError,
    RuntimeError,
)

REDIS_FAILURES = (redis_errors.RedisError, OSError, RuntimeError)
"""What a Redis call raises when Redis fails: redis-py's errors, and, on a pooled connection
the peer reset (a dying primary), the event loop's own ``OSError`` or ``RuntimeError``
(uvloop: "unable to perform operation on <TCPTransport closed=True>; the handler is
closed"), which redis-py passes through. All become ``StoreError``/``StoreUnavailable``."""


def convert_error(exc: BaseException) -> StoreError:
    """Our error for a failed Redis call (``REDIS_FAILURES``): ``StoreUnavailable`` when Redis
    cannot be reached (connection errors, a reset transport), else ``StoreError``."""
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(f"redis unavailable: {type(exc).__name__}")
    return StoreError(f"redis error: {type(exc).__name__}")
