"""The receiver's one ``EventStore``: injected, or opened on first use and closed at shutdown."""

from __future__ import annotations

from dnc.keys import RedisKeys
from dnc.settings import RedisSettings
from dnc.store import EventStore, StoreLimits, open_redis


class LazyStore:
    """Holds the app's ``EventStore``: ``store`` when given (tests share one), otherwise one
    opened from ``settings`` by the first ``get`` (lifespan start-up, or the first request
    when the server runs no lifespan) and closed by ``close``."""

    def __init__(self, settings: RedisSettings, store: EventStore | None = None) -> None:
        self._settings = settings
        self._store = store
        self._owned = store is None

    def get(self) -> EventStore:
        """The store, opened now if this is the first use of one this holder owns."""
        if self._store is None:
            client = open_redis(self._settings)
            self._store = EventStore(
                client,
                RedisKeys(self._settings.namespace),
                StoreLimits.from_settings(self._settings),
            )
        return self._store

    async def close(self) -> None:
        """Close the Redis pool of a store this holder opened (an injected one is left
        open); a later ``get`` opens a new one."""
        if self._owned and self._store is not None:
            await self._store.close()
            self._store = None
