"""The real processes a fault script runs against, on free 127.0.0.1 ports in one temporary
folder (``reliability.services``): ``redis-server`` (optionally AOF ``appendfsync always``,
restartable on the same data), the CXone sandbox, the receiver, a Prefect server (or one given
by URL) and sync runs (``dnc-sync sync run``), each a process group of its own.
"""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from dnc.keys import RedisKeys
from dnc.number_hash import states
from reliability.processes import HOST, HarnessError, clean_env, wait_exit
from reliability.services import BIN, SANDBOX_CREDENTIALS, Services

NAMESPACE = "chaos"
GROUP_ID = "1001"
JOURNAL_TARGET = f"dnc-group:{GROUP_ID}"
"""How the sandbox's write journal names the DNC group the sync writes to."""
SYNC_GRACE_S = 5


@dataclass
class Stack(Services):
    """Everything one fault run started (so that all of it can be stopped) and where it is:
    ``Services`` with the receiver's secret and the sync runs."""

    bearer: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    syncs_started: int = 0

    def start_receiver(
        self,
        settings: Mapping[str, str] | None = None,
        *,
        workers: int = 1,
        log_level: str = "WARNING",
    ) -> None:
        """The receiver in namespace ``chaos``, authenticating with ``self.bearer``;
        ``settings``: more ``DNC_*`` (full names)."""
        own = {
            "DNC_REDIS_NAMESPACE": NAMESPACE,
            "DNC_RECEIVER_BEARER_SECRETS": self.bearer,
            "DNC_RECEIVER_LOG_LEVEL": log_level,
        }
        super().start_receiver(own | dict(settings or {}), workers=workers)

    def start_all(
        self,
        faults: Mapping[str, object] | None = None,
        *,
        log_level: str = "WARNING",
        **sandbox: str,
    ) -> None:
        """What a script that runs the sync needs: Redis, the sandbox (``sandbox``: its
        ``DNC_SANDBOX_*`` settings, then ``faults``: its fault config), the receiver (one
        worker, logging at ``log_level``) and a Prefect server (unless one is given)."""
        self.start_redis()
        self.start_sandbox(**sandbox)
        if faults:
            self.faults(**faults)
        self.start_receiver(log_level=log_level)
        self.start_prefect()

    def faults(self, **config: object) -> None:
        """Change the sandbox's fault config (``POST /_sandbox/faults``)."""
        self.sandbox("POST", "/_sandbox/faults", config)

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
            raise HarnessError("no Prefect server: call start_prefect first")
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
        log: str = "sync",
        options: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """``dnc-sync sync run [options]`` in its own session, its output appended to
        ``<log>.log`` after a ``--- <name> ---`` line; the caller waits for it or reaps it.
        Kept in ``procs`` under ``name`` (default ``sync-<n>``) until it is reaped."""
        self.syncs_started += 1
        name = name or f"sync-{self.syncs_started}"
        command = [str(BIN / "dnc-sync"), "sync", "run", *options]
        return self.spawn(name, command, env, log=log, header=name, grace_s=SYNC_GRACE_S)

    def run_sync(self, env: dict[str, str], timeout_s: float) -> int:
        """One ``dnc-sync sync run`` to its end; its exit code (``HarnessError`` on timeout)."""
        proc = self.spawn_sync(env)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"a sync run did not end within {timeout_s} s") from None
        finally:
            self.reap(proc)

    async def arun_sync(self, env: dict[str, str], timeout_s: float) -> int:
        """``run_sync`` for asyncio callers: polls the run instead of blocking the loop."""
        proc = self.spawn_sync(env)
        try:
            return await wait_exit(proc, timeout_s, "a sync run")
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


def dead_letters(client: redis.Redis, keys: RedisKeys) -> dict[str, Any]:
    """Every dead letter, by E.164 number. ``client`` decodes responses (``Stack.redis``)."""
    return {text(k): json.loads(v) for k, v in client.hgetall(keys.dead_letters).items()}


def text(value: object) -> str:
    """A Redis reply as text, from a client that decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _epoch_s(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
