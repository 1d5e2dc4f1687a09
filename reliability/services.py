"""The servers a run starts through ``processes.Processes``, each on a free loopback port and
waited for until it answers: ``redis-server`` (or a server of its kind, e.g. Valkey), the
CXone sandbox (``dnc-sync sandbox``), the receiver (``dnc-sync serve``), a Prefect server
(API only), a throwaway PostgreSQL cluster (``scripts/pg-throwaway``), or the whole local
stack (``scripts/run-local``)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from reliability.processes import (
    HOST,
    REPO,
    HarnessError,
    Processes,
    clean_env,
    free_ports,
    http_status,
    wait_until,
)

BIN = Path(sys.executable).parent
SANDBOX_CREDENTIALS = {  # the sandbox's fixed development defaults (sandbox/settings.py)
    "DNC_CXONE_CLIENT_ID": "sandbox-cxone-client-id",
    "DNC_CXONE_CLIENT_SECRET": "sandbox-cxone-client-secret-0123456789",
    "DNC_CXONE_ACCESS_KEY_ID": "SANDBOXACCESSKEYID000001",
    "DNC_CXONE_ACCESS_KEY_SECRET": "sandbox-access-key-secret-0123456789",
}
PG_THROWAWAY = REPO / "scripts" / "pg-throwaway"


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster (``scripts/pg-throwaway``, fsync off) in a ``mkdtemp``
    folder of its own (a short path the ``postgres`` user can reach when run as root), on
    ``port``."""

    folder: Path
    port: int
    url: str = ""

    @classmethod
    def start(cls) -> Postgres:
        """Initialise and start a cluster; ``HarnessError`` when it does not start."""
        server = cls(Path(tempfile.mkdtemp(prefix="dnc-pg-")), free_ports(1)[0])
        started = subprocess.run(
            [str(PG_THROWAWAY), "start", str(server.folder), str(server.port)],
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            server.stop()
            raise HarnessError(f"scripts/pg-throwaway start failed: {started.stderr[-2000:]}")
        server.url = started.stdout.strip()
        return server

    def pg_ctl(self, *args: str) -> None:
        """Run ``pg_ctl ARGS -D DATA`` as the cluster's owner (``postgres`` under root)."""
        bindirs = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
        )
        pg_ctl = str(bindirs[-1] / "pg_ctl") if bindirs else "pg_ctl"
        command = [pg_ctl, *args, "-D", str(self.folder / "data")]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd="/", capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise HarnessError(f"pg_ctl {' '.join(args)} failed: {done.stderr[-2000:]}")

    def restart(self, mode: str) -> float:
        """Restart the server on the same data, port and options (``pg_ctl restart``,
        shutdown ``mode``: fast or immediate); returns the seconds it took."""
        started = time.perf_counter()
        self.pg_ctl(
            "restart", "-m", mode, "-w", "-t", "60", "-l", str(self.folder / "postgres.log")
        )
        return time.perf_counter() - started

    def stop(self) -> None:
        """Stop the cluster and delete its folder."""
        subprocess.run(
            [str(PG_THROWAWAY), "stop", str(self.folder)], capture_output=True, check=False
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Services(Processes):
    """``Processes`` that start the servers; ``prefect_api_url`` given at construction means
    a Prefect server someone else runs (``start_prefect`` then starts none)."""

    prefect_api_url: str | None = None
    postgres: list[Postgres] = field(default_factory=list)

    # -- Redis -------------------------------------------------------------------------------

    def start_redis(
        self,
        name: str = "redis",
        *,
        aof: bool = False,
        binary: str = "redis-server",
        options: Sequence[str] = (),
        data: str | None = None,
        timeout_s: float = 30,
    ) -> None:
        """``binary`` as ``name`` on its port (kept across restarts), its data in
        ``tmp/<data or name>``: no snapshots; with ``aof``, ``appendonly yes`` +
        ``appendfsync always``; ``options``: more arguments. Returns once it answers PING."""
        folder = self.tmp / (data or name)
        folder.mkdir(exist_ok=True)
        persistence = ["yes", "--appendfsync", "always"] if aof else ["no"]
        command = [
            binary, "--port", str(self.port(name)), "--bind", HOST, "--save", "",
            "--dir", str(folder), "--daemonize", "no", "--loglevel", "warning",
            "--appendonly", *persistence, *options,
        ]  # fmt: skip
        proc = self.spawn(name, command)
        client = self.redis(name)
        try:
            wait_until(
                lambda: bool(client.ping()), proc, f"{Path(binary).name} {name}", timeout_s, 0.05
            )
        finally:
            client.close()

    def redis(self, name: str = "redis", **kwargs: Any) -> redis.Redis:
        """A new synchronous client of Redis ``name`` (``decode_responses`` on by default)."""
        options: dict[str, Any] = {"socket_timeout": 10, "decode_responses": True} | kwargs
        return redis.Redis(host=HOST, port=self.ports[name], **options)

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.ports['redis']}/0"

    # -- the sandbox and the receiver --------------------------------------------------------

    def start_sandbox(self, **settings: str) -> None:
        """The CXone sandbox on a free port; ``settings`` are ``DNC_SANDBOX_*`` names without
        the prefix (``token_ttl_s="3"``). Returns once ``GET /healthz`` answers 200."""
        port = self.port("sandbox")
        env = clean_env() | {f"DNC_SANDBOX_{k.upper()}": v for k, v in settings.items()}
        command = [sys.executable, "-m", "dnc_sync", "sandbox", "--host", HOST, "--port", str(port)]
        proc = self.spawn("sandbox", command, env)
        wait_until(lambda: http_status(port, "/healthz") == 200, proc, "sandbox", 60)

    def sandbox(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        """One call to the sandbox's control API; its JSON answer (``HarnessError`` unless
        200)."""
        connection = http.client.HTTPConnection(HOST, self.ports["sandbox"], timeout=60)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {} if body is None else {"Content-Type": "application/json"}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise HarnessError(f"sandbox {method} {path} -> {response.status}: {data[:200]!r}")
        answer: dict[str, Any] = json.loads(data)
        return answer

    def start_receiver(self, settings: Mapping[str, str], *, workers: int = 1) -> None:
        """``dnc-sync serve`` with ``workers`` workers on a free port, with the ``DNC_*``
        ``settings`` (full names; ``DNC_REDIS_URL`` by default this run's ``redis``) and a
        multiprocess metrics folder of its own with more than one worker. Returns once
        ``GET /readyz`` answers 200."""
        port = self.port("receiver")
        env = clean_env() | dict(settings)
        if "DNC_REDIS_URL" not in env:
            env["DNC_REDIS_URL"] = self.redis_url
        if workers > 1:
            metrics = self.tmp / "metrics"
            metrics.mkdir(exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        command = [
            sys.executable, "-m", "dnc_sync", "serve",
            "--host", HOST, "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip
        proc = self.spawn("receiver", command, env, grace_s=20)
        wait_until(lambda: http_status(port, "/readyz") == 200, proc, "receiver", 60)

    # -- Prefect and PostgreSQL --------------------------------------------------------------

    def start_prefect(self, *, wait: bool = True) -> str:
        """A Prefect server (API only: no UI, scheduler or late runs) with its SQLite
        database in ``tmp/prefect-server``, unless ``prefect_api_url`` names one already;
        its API URL. With ``wait`` false, ``wait_prefect`` waits for it."""
        if self.prefect_api_url:
            return self.prefect_api_url
        port = self.port("prefect")
        home = self.tmp / "prefect-server"
        home.mkdir()
        env = clean_env() | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        command = [
            str(BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(port),
            "--no-ui", "--no-scheduler", "--no-late-runs",
        ]  # fmt: skip
        self.spawn("prefect", command, env)
        self.prefect_api_url = f"http://{HOST}:{port}/api"
        if wait:
            self.wait_prefect()
        return self.prefect_api_url

    def wait_prefect(self) -> None:
        """Wait until the Prefect server this run started is healthy (180 s at most)."""
        port = self.ports["prefect"]
        ok = lambda: http_status(port, "/api/health", 5) == 200  # noqa: E731
        wait_until(ok, self.procs["prefect"], "prefect server", 180, 0.2)

    def start_local_stack(self, settings: Mapping[str, str], timeout_s: float) -> None:
        """``scripts/run-local`` (what ``make run`` starts) with its data in ``tmp`` and
        ``settings`` on a clean environment; returns once it says it is running. Stopped with
        a minute's grace: SIGTERM lets every part flush its logs."""
        env = clean_env() | {"DNC_LOCAL_DATA_DIR": str(self.tmp)} | dict(settings)
        proc = self.spawn("run-local", [str(REPO / "scripts" / "run-local")], env, grace_s=60)
        log = self.tmp / "run-local.log"

        def running() -> bool:
            return "running; Ctrl-C stops everything." in log.read_text(errors="replace")

        wait_until(running, proc, "run-local", timeout_s, 0.5)

    def start_postgres(self) -> Postgres:
        """A throwaway PostgreSQL cluster, stopped and deleted by ``stop_all``."""
        server = Postgres.start()
        self.postgres.append(server)
        return server

    # -- stopping ----------------------------------------------------------------------------

    def stop_all(self) -> None:
        """Every process, then the PostgreSQL clusters."""
        super().stop_all()
        for server in self.postgres:
            server.stop()


def stop_ephemeral_prefect() -> None:
    """Stop Prefect's ephemeral API server if this process started one (a flow run in this
    process without ``PREFECT_API_URL``), before its home in a run's folder goes away:
    Prefect would at exit, after the folder is gone. Not in a test session, whose own
    harness may be that server."""
    module = sys.modules.get("prefect.server.api.server")
    if module is not None:
        for server in list(module.SubprocessASGIServer._instances.values()):
            with contextlib.suppress(Exception):
                server.stop()
