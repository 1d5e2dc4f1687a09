"""One temporary Prefect server for the flow tests of this package, and only while they run:
its background threads use the ``random`` module, which Hypothesis tests elsewhere must not
see change under them (a session-wide harness made one of them fail as flaky)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="package")
def prefect_harness() -> Iterator[None]:
    """A ``prefect_test_harness`` for this package's modules (each costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
