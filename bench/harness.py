"""What the benchmarks share: free loopback ports, stopping what they started, and the
``main`` that runs a benchmark, stops everything (also on Ctrl-C or failure) and prints its
JSON. Imported by ``bench/*.py`` run as scripts (their folder is on ``sys.path``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis

HOST = "127.0.0.1"
S = TypeVar("S")


class BenchError(RuntimeError):
    """The benchmark could not run (a service did not start, a worker died...)."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stop_popen(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Terminate ``proc`` (started in its own session), killing its group after ``timeout_s``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
        proc.wait(5)


def print_log_tail(tmp: Path, names: Sequence[str]) -> None:
    """The last 20 lines of each log in ``tmp`` named ``names``, on stderr."""
    for name in names:
        path = tmp / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-20:]
            print(f"--- last lines of {name} ---", *tail, sep="\n", file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_main(
    prefix: str,
    make_services: Callable[[Path], S],
    run: Callable[[S], dict[str, Any]],
    stop_all: Callable[[S], None],
    logs: Sequence[str],
) -> int:
    """Run one benchmark in a temporary folder; print its JSON result on stdout. Returns the
    exit code: 0, 1 (failed, with the logs' tails), or 130 (interrupted)."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        services = make_services(Path(tmp))
        try:
            result = run(services)
        except KeyboardInterrupt:
            print("interrupted; stopping", file=sys.stderr)
            return 130
        except (BenchError, OSError, redis.RedisError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            print_log_tail(Path(tmp), logs)
            return 1
        finally:
            stop_all(services)
    print(json.dumps(result, indent=2))
    return 0


def start_redis_server(port: int, folder: Path) -> tuple[subprocess.Popen[bytes], redis.Redis]:
    """A throwaway ``redis-server`` on 127.0.0.1:``port`` (no persistence, data and log in
    ``folder``) and a client that has had its PING answered. Raises ``BenchError`` when it
    exits or does not answer within 10 s (the caller stops the process either way)."""
    command = [
        "redis-server", "--port", str(port), "--bind", HOST, "--save", "",
        "--appendonly", "no", "--dir", str(folder), "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    with (folder / "redis.log").open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    client = redis.Redis(host=HOST, port=port, socket_timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"redis-server exited with {proc.returncode}")
        with contextlib.suppress(redis.ConnectionError):
            client.ping()
            return proc, client
        time.sleep(0.05)
    raise BenchError("redis-server did not answer PING within 10 s")
