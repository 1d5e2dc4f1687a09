"""``Sandbox``: everything a handler may read or change, built once per process."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox import persist
from sandbox.faults import FaultInjector
from sandbox.settings import FaultConfig, SandboxSettings
from sandbox.state import SandboxState


@dataclass(slots=True)
class Sandbox:
    """Fixed ``settings``, the run-time ``config``, the ``state``, the fault ``injector``,
    the wall ``clock`` (epoch seconds; tests pass a fake one) and the key tokens are
    signed with (random per process)."""

    settings: SandboxSettings
    config: FaultConfig
    state: SandboxState
    injector: FaultInjector
    clock: Callable[[], float]
    signing_key: bytes

    @classmethod
    def start(cls, settings: SandboxSettings, clock: Callable[[], float] = time.time) -> Sandbox:
        """A sandbox with the fault config ``settings`` describe, its state read from
        ``settings.state_file`` when set (else empty). Raises ``persist.StateFileError`` or
        ``OSError`` when that file cannot be read."""
        config = settings.faults()
        if settings.state_file:
            state = persist.load(Path(settings.state_file), settings.dnc_group_ids)
        else:
            state = SandboxState.empty(settings.dnc_group_ids)
        return cls(
            settings=settings,
            config=config,
            state=state,
            injector=FaultInjector(config, clock()),
            clock=clock,
            signing_key=secrets.token_bytes(32),
        )

    def now(self) -> float:
        """Now, epoch seconds (UTC)."""
        return self.clock()

    def configure(self, config: FaultConfig) -> None:
        """Switch to ``config``: the generator restarts from ``config.seed`` and the rate-limit
        bucket is refilled, so a run after a change repeats exactly."""
        self.config = config
        self.injector.restart(config, self.now())

    def reset(self, *, config: bool) -> None:
        """Clear records, contacts, tokens and counters; restore the start-up fault config too
        when ``config``. The generator is reseeded and the bucket refilled either way."""
        self.state = SandboxState.empty(self.settings.dnc_group_ids)
        if config:
            self.config = self.settings.faults()
        self.injector.restart(self.config, self.now())
