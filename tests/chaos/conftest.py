"""What the chaos tests share: one Prefect server (API only) for every script that runs the
sync flow, started on first request and stopped at the end of the session, so
``test_faults.py`` and ``test_lease_faults.py`` pay its start once. ``bench/chaos`` is put on
``sys.path`` here, as the scripts find their helpers beside them."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHAOS = Path(__file__).resolve().parents[2] / "bench" / "chaos"
if str(CHAOS) not in sys.path:
    sys.path.insert(0, str(CHAOS))

from stack import clean_env, free_ports, http_status, stop_group  # noqa: E402


class PrefectServer:
    """``prefect server start`` (API only) in a folder of its own, started at once and
    waited for on first use, stopped with its whole process group."""

    def __init__(self, home: Path) -> None:
        self.port = free_ports(1)[0]
        env = clean_env() | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        self.log = (home / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "prefect"), "server", "start",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--no-ui", "--no-scheduler", "--no-late-runs",
            ],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def url(self) -> str:
        deadline = time.monotonic() + 180
        while http_status(self.port, "/api/health", 5) != 200:
            assert self.proc.poll() is None, "prefect server exited"
            assert time.monotonic() < deadline, "prefect server not healthy within 180 s"
            time.sleep(0.2)
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        stop_group(self.proc, 15)
        self.log.close()


@pytest.fixture(scope="session")
def prefect() -> Iterator[PrefectServer]:
    """The shared Prefect server; requesting it starts it (``url()`` waits until healthy)."""
    with tempfile.TemporaryDirectory(prefix="dnc-chaos-prefect-") as home:
        server = PrefectServer(Path(home))
        try:
            yield server
        finally:
            server.stop()
