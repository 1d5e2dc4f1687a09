"""The real processes a chaos script runs against, on free 127.0.0.1 ports in one temporary
folder: ``redis-server`` (optionally AOF ``appendfsync always``, restartable on the same data),
the CXone sandbox (``dnc-sync sandbox``), the receiver (``dnc-sync serve``), a Prefect server
(``prefect server start``, or one given by URL) and sync runs (``dnc-sync sync run``).

Every process is started in a session of its own and stopped as a whole process group
(SIGTERM, then SIGKILL after a grace period), so nothing a script started outlives it.
Imported by the scripts beside it (their folder is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from script import BENCH, LOGS, BenchError, free_ports, print_log_tail

from dnc.keys import RedisKeys
from dnc.number_hash import states

REPO = BENCH.parent
HOST = "127.0.0.1"
NAMESPACE = "chaos"
GROUP_ID = "1001"
JOURNAL_TARGET = f"dnc-group:{GROUP_ID}"
"""How the sandbox's write journal names the DNC group the sync writes to."""
SANDBOX_CREDENTIALS = {  # the sandbox's fixed development defaults (sandbox/settings.py)
    "DNC_CXONE_CLIENT_ID": "sandbox-cxone-client-id",
    "DNC_CXONE_CLIENT_SECRET": "sandbox-cxone-client-secret-0123456789",
    "DNC_CXONE_ACCESS_KEY_ID": "SANDBOXACCESSKEYID000001",
    "DNC_CXONE_ACCESS_KEY_SECRET": "sandbox-access-key-secret-0123456789",
}
__all__ = ["BenchError", "Stack", "free_ports"]


def clean_env() -> dict[str, str]:
    """This process's environment without any ``DNC_*`` or ``PREFECT_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DNC_", "PREFECT_"))}


def stop_group(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM the process group of ``proc`` (started in its own session), wait up to
    ``timeout_s`` seconds for its leader, then SIGKILL whatever of the group is left."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout_s)
    kill_group(proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group of ``proc`` and reap its leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def http_status(port: int, path: str, timeout_s: float = 2.0) -> int | None:
    """The status of ``GET path`` on 127.0.0.1:``port``, or ``None`` when it cannot connect."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_until(
    check: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, timeout_s: float
) -> None:
    """Poll ``check`` every 0.1 s until true; ``BenchError`` if ``proc`` exits or
    ``timeout_s`` seconds pass."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}")
        if check():
            return
        time.sleep(0.1)
    raise BenchError(f"{what} not ready within {timeout_s} s")


@dataclass
class Stack:
    """Everything one chaos run started (so that all of it can be stopped) and where it is.

    ``prefect_api_url`` given at construction means a Prefect server someone else runs (the
    CI tests share one); otherwise ``start_prefect`` starts one here."""

    tmp: Path
    prefect_api_url: str | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    bearer: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    redis_aof: bool = False
    syncs_started: int = 0

    # -- starting ----------------------------------------------------------------------------

    def _spawn(self, name: str, command: Sequence[str], env: dict[str, str]) -> None:
        with (self.tmp / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                list(command),
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_redis(self, *, aof: bool = False) -> None:
        """``redis-server`` on a free port (kept across restarts), data in ``tmp/redis``: no
        snapshots; with ``aof``, ``appendonly yes`` + ``appendfsync always``."""
        self.redis_aof = aof
        self.ports.setdefault("redis", free_ports(1)[0])
        data = self.tmp / "redis"
        data.mkdir(exist_ok=True)
        persistence = ["yes", "--appendfsync", "always"] if aof else ["no"]
        command = [
            "redis-server", "--port", str(self.ports["redis"]), "--bind", HOST, "--save", "",
            "--dir", str(data), "--daemonize", "no", "--loglevel", "warning",
            "--appendonly", *persistence,
        ]  # fmt: skip
        self._spawn("redis", command, clean_env())
        client = self.redis()
        try:
            wait_until(lambda: _pings(client), self.procs["redis"], "redis-server", 30)
        finally:
            client.close()

    def redis(self, **kwargs: Any) -> redis.Redis:
        """A new synchronous client to this stack's Redis (``decode_responses`` on)."""
        options: dict[str, Any] = {"socket_timeout": 10, "decode_responses": True} | kwargs
        return redis.Redis(host=HOST, port=self.ports["redis"], **options)

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.ports['redis']}/0"

    def start_sandbox(self, **settings: str) -> None:
        """The CXone sandbox on a free port; ``settings`` are ``DNC_SANDBOX_*`` names without
        the prefix (``token_ttl_s="3"``)."""
        self.ports["sandbox"] = free_ports(1)[0]
        env = clean_env() | {f"DNC_SANDBOX_{k.upper()}": v for k, v in settings.items()}
        command = [sys.executable, "-m", "dnc_sync", "sandbox", "--host", HOST]
        self._spawn("sandbox", [*command, "--port", str(self.ports["sandbox"])], env)
        port = self.ports["sandbox"]
        wait_until(
            lambda: http_status(port, "/healthz") == 200, self.procs["sandbox"], "sandbox", 60
        )

    def sandbox(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        """One call to the sandbox's control API; its JSON answer (``BenchError`` unless 200)."""
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
            raise BenchError(f"sandbox {method} {path} -> {response.status}: {data[:200]!r}")
        answer: dict[str, Any] = json.loads(data)
        return answer

    def faults(self, **config: object) -> None:
        """Change the sandbox's fault config (``POST /_sandbox/faults``)."""
        self.sandbox("POST", "/_sandbox/faults", config)

    def start_receiver(self, *, workers: int = 1, log_level: str = "WARNING") -> None:
        """The receiver on a free port, authenticating with ``self.bearer``."""
        self.ports["receiver"] = free_ports(1)[0]
        env = clean_env() | {
            "DNC_REDIS_URL": self.redis_url,
            "DNC_REDIS_NAMESPACE": NAMESPACE,
            "DNC_RECEIVER_BEARER_SECRETS": self.bearer,
            "DNC_RECEIVER_LOG_LEVEL": log_level,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if workers > 1:
            metrics = self.tmp / "metrics"
            metrics.mkdir(exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        port = self.ports["receiver"]
        command = [sys.executable, "-m", "dnc_sync", "serve", "--host", HOST, "--port", str(port)]
        self._spawn("receiver", [*command, "--workers", str(workers)], env)
        wait_until(
            lambda: http_status(port, "/readyz") == 200, self.procs["receiver"], "receiver", 60
        )

    def start_prefect(self) -> None:
        """A Prefect server (API only, no UI or scheduler) with its SQLite database in
        ``tmp/prefect-server``, unless ``prefect_api_url`` names one already."""
        if self.prefect_api_url:
            return
        port = free_ports(1)[0]
        home = self.tmp / "prefect-server"
        home.mkdir()
        env = clean_env() | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        command = [
            str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", HOST,
            "--port", str(port), "--no-ui", "--no-scheduler", "--no-late-runs",
        ]  # fmt: skip
        self._spawn("prefect", command, env)
        self.prefect_api_url = f"http://{HOST}:{port}/api"
        ok = lambda: http_status(port, "/api/health", 5) == 200  # noqa: E731
        wait_until(ok, self.procs["prefect"], "prefect server", 180)

    # -- sync runs ---------------------------------------------------------------------------

    def flow_env(self, **settings: str) -> dict[str, str]:
        """The environment of a sync run against this stack: ``DNC_*`` for Redis and the
        sandbox (DNC groups, numbers as E.164 digits, every write traced for the sandbox's
        journal: ``DNC_CXONE_SEND_TRACE``), every opt-in sent as the fault suites expect
        (``DNC_SYNC_REMOVE_FOREIGN_RECORDS``: their opt-ins are of numbers this service never
        wrote, and they put the opt-in writes under fault too; ownership has its own case,
        ``reconcile_drift``), Prefect's API and a client home in ``tmp/prefect-client``;
        ``settings`` are more ``DNC_*`` names without the prefix (they win)."""
        home = self.tmp / "prefect-client"
        home.mkdir(exist_ok=True)
        if not self.prefect_api_url:
            raise BenchError("no Prefect server: call start_prefect first")
        env = (
            clean_env()
            | SANDBOX_CREDENTIALS
            | {
                "DNC_REDIS_URL": self.redis_url,
                "DNC_REDIS_NAMESPACE": NAMESPACE,
                "DNC_CXONE_ADAPTER": "dnc-groups",
                "DNC_CXONE_ISSUER_URL": f"http://{HOST}:{self.ports['sandbox']}",
                "DNC_CXONE_DNC_GROUP_ID": GROUP_ID,
                "DNC_CXONE_PHONE_FORMAT": "e164-digits",
                "DNC_CXONE_SEND_TRACE": "true",
                "DNC_SYNC_REMOVE_FOREIGN_RECORDS": "true",
                "PREFECT_API_URL": self.prefect_api_url,
                "PREFECT_HOME": str(home),
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
        )
        return env | {f"DNC_{k.upper()}": v for k, v in settings.items()}

    def spawn_sync(
        self,
        env: dict[str, str],
        name: str | None = None,
        log_name: str = "sync.log",
        options: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """``dnc-sync sync run [options]`` in its own session (its output appended to ``log_name``);
        the caller waits for it or kills its group. Kept in ``procs`` under ``name`` (default
        ``sync-<n>``) until it is reaped."""
        self.syncs_started += 1
        name = name or f"sync-{self.syncs_started}"
        with (self.tmp / log_name).open("ab") as log:
            log.write(f"--- {name} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "dnc-sync"), "sync", "run", *options],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def reap(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a sync run's whole process group (if still there) and forget it."""
        kill_group(proc)
        for name in [n for n, p in self.procs.items() if p is proc]:
            del self.procs[name]

    def run_sync(self, env: dict[str, str], timeout_s: float) -> int:
        """One ``dnc-sync sync run`` to its end; its exit code (``BenchError`` on timeout)."""
        proc = self.spawn_sync(env)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"a sync run did not end within {timeout_s} s") from None
        finally:
            self.reap(proc)

    async def arun_sync(self, env: dict[str, str], timeout_s: float) -> int:
        """``run_sync`` for asyncio callers: polls the run instead of blocking the loop."""
        proc = self.spawn_sync(env)
        deadline = time.monotonic() + timeout_s
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"a sync run did not end within {timeout_s} s")
                await asyncio.sleep(0.1)
            return proc.returncode
        finally:
            self.reap(proc)

    def summaries(self, since_s: float) -> list[dict[str, Any]]:
        """The ``dnc-sync-summary`` artifacts (metric -> value) created after ``since_s``
        (epoch seconds), oldest first, read from the Prefect API."""
        if not self.prefect_api_url:
            return []
        url = self.prefect_api_url.removeprefix(f"http://{HOST}:")
        port, _, api = url.partition("/")
        body = {"artifacts": {"key": {"any_": ["dnc-sync-summary"]}}, "sort": "CREATED_DESC"}
        connection = http.client.HTTPConnection(HOST, int(port), timeout=30)
        try:
            connection.request(
                "POST", f"/{api}/artifacts/filter", json.dumps(body | {"limit": 200}),
                {"Content-Type": "application/json"},
            )  # fmt: skip
            artifacts = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        found = []
        for artifact in reversed(artifacts):
            if _epoch_s(artifact["created"]) >= since_s:
                data = artifact["data"]
                rows = json.loads(data) if isinstance(data, str) else data
                found.append({row["metric"]: row["value"] for row in rows})
        return found

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, name: str, timeout_s: float = 15) -> None:
        """Stop one process (its whole group) and forget it."""
        stop_group(self.procs.pop(name, None), timeout_s)

    def stop_all(self) -> None:
        """Sync runs first, then receiver, sandbox, Prefect server and Redis last."""
        order = ["receiver", "sandbox", "prefect", "redis"]
        for name in [n for n in self.procs if n not in order] + order:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.stop(name, 5 if name.startswith("sync") else 15)

    def log_tails(self) -> None:
        """The last lines of every log, on stderr (for a violated invariant)."""
        print_log_tail(self.tmp, LOGS)


def state_values(client: redis.Redis, keys: RedisKeys) -> dict[str, str]:
    """Every number's state (``dnc.state``: ``"<watermark> <rest>"``), by E.164 number, each
    read as the readers read it (``dnc.number_hash``: its bucket or the long hash, the
    legacy flat hash's when later). ``client`` decodes responses (``Stack.redis``)."""
    hashed = states(keys)
    pipe = client.pipeline(transaction=False)
    pipe.hkeys(hashed.legacy)
    pipe.hkeys(hashed.long)
    buckets = hashed.bucket_keys()
    for key in buckets:
        pipe.hkeys(key)
    found = pipe.execute()
    numbers = {*found[0], *found[1]}
    for key, fields in zip(buckets, found[2:], strict=True):
        numbers.update(hashed.number(key, field) for field in fields)
    wanted = sorted(numbers)
    pipe = client.pipeline(transaction=True)
    read = hashed.queue_get(pipe, wanted)
    return dict(zip(wanted, read(iter(pipe.execute())), strict=True))


def _pings(client: redis.Redis) -> bool:
    with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
        return bool(client.ping())
    return False


def _epoch_s(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
