"""What the chaos tests share: one Prefect server (API only) for every script that runs the
sync flow, started on first request and stopped at the end of the session, so
``test_faults.py`` and ``test_lease_faults.py`` pay its start once. It is started by the
fault suites' own harness (``reliability.services``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.services import Services


class PrefectServer:
    """``prefect server start`` (API only) in a folder of its own, started at once and
    waited for on first use, stopped with its whole process group."""

    def __init__(self, home: Path) -> None:
        self.services = Services(home)
        self.api_url = self.services.start_prefect(wait=False)

    def url(self) -> str:
        self.services.wait_prefect()
        return self.api_url

    def stop(self) -> None:
        self.services.stop_all()


@pytest.fixture(scope="session")
def prefect() -> Iterator[PrefectServer]:
    """The shared Prefect server; requesting it starts it (``url()`` waits until healthy)."""
    with tempfile.TemporaryDirectory(prefix="dnc-chaos-prefect-") as home:
        server = PrefectServer(Path(home))
        try:
            yield server
        finally:
            server.stop()
