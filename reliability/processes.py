"""The one process harness of the fault suites, the fuzzers and the benchmarks (``bench/``).

Every process is started in a session of its own from the repository root, its output
appended to ``<tmp>/<name>.log``, waited for until it answers, and stopped as a whole process
group (SIGTERM, then SIGKILL after its grace period), so nothing a run started outlives it.
``run_main`` runs one script in a temporary folder, prints its JSON and stops everything,
also on Ctrl-C, SIGTERM or failure. The servers themselves are started in ``services.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import redis

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LAST = ("receiver", "sandbox", "prefect", "replica", "redis")
"""Stopped last, in this order: what the others talk to outlives them."""
TAIL_LINES = 20


class HarnessError(RuntimeError):
    """A run could not go on: a service did not start or died, a wait ran out."""


RUN_ERRORS = (HarnessError, OSError, redis.RedisError, httpx.HTTPError)
"""What ends a run as failed (exit 1, the logs' last lines) rather than with a traceback."""


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


def clean_env() -> dict[str, str]:
    """This process's environment without any ``DNC_*`` or ``PREFECT_*`` variable, nor
    ``PROMETHEUS_MULTIPROC_DIR`` (a receiver started here gets its own or none)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DNC_", "PREFECT_")) and k != "PROMETHEUS_MULTIPROC_DIR"
    }


def run_script(
    module: str, *args: str, timeout_s: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m module ARGS`` from the repository root in a clean environment, to its end
    (``subprocess.TimeoutExpired`` after ``timeout_s``); its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


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
    check: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    what: str,
    timeout_s: float,
    step_s: float = 0.1,
) -> None:
    """Poll ``check`` every ``step_s`` seconds until true (an ``OSError`` or Redis error it
    raises counts as not yet); ``HarnessError`` if ``proc`` exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError, redis.RedisError):
            if check():
                return
        time.sleep(step_s)
    raise HarnessError(f"{what} not ready within {timeout_s} s")


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> int:
    """``proc``'s exit code, polled every 0.05 s without blocking the event loop;
    ``HarnessError`` when it has not ended within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise HarnessError(f"{what} did not end within {timeout_s} s")
        await asyncio.sleep(0.05)
    return proc.returncode


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


def pause(proc: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    """SIGSTOP ``proc``; returns once the kernel shows it stopped (``HarnessError`` after
    ``timeout_s`` seconds)."""
    os.kill(proc.pid, signal.SIGSTOP)
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + timeout_s
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
        if time.monotonic() > deadline:
            raise HarnessError(f"{proc.args!r} did not stop")
        time.sleep(0.005)


def resume(proc: subprocess.Popen[bytes]) -> None:
    """SIGCONT ``proc`` (nothing when it is gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)


def print_log_tails(folder: Path) -> None:
    """The last lines of every ``*.log`` in ``folder``, on stderr."""
    for path in sorted(folder.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        print(f"--- last lines of {path.name} ---", *tail, sep="\n", file=sys.stderr)


@dataclass
class Processes:
    """The processes one run started, by name, and their ports, so that all of it can be
    stopped; ``tmp`` is the run's folder (logs, data)."""

    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    grace_s: dict[str, float] = field(default_factory=dict)

    def port(self, name: str) -> int:
        """``name``'s port: a free one on first use, the same one after (restarts)."""
        if name not in self.ports:
            self.ports[name] = free_ports(1)[0]
        return self.ports[name]

    def spawn(
        self,
        name: str,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        log: str | None = None,
        header: str | None = None,
        grace_s: float = 15,
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` from the repository root in a session of its own (``env``: a
        clean environment by default), its output appended to ``<log or name>.log`` (after a
        ``--- <header> ---`` line, where several share a log); kept as ``name``, stopped with
        ``grace_s`` seconds between SIGTERM and SIGKILL."""
        with (self.tmp / f"{log or name}.log").open("ab") as sink:
            if header:
                sink.write(f"--- {header} ---\n".encode())
                sink.flush()
            proc = subprocess.Popen(
                list(command),
                cwd=REPO,
                env=clean_env() if env is None else env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name], self.grace_s[name] = proc, grace_s
        return proc

    def stop(self, name: str) -> None:
        """Stop one process (its whole group) and forget it."""
        stop_group(self.procs.pop(name, None), self.grace_s.pop(name, 15))

    def reap(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``proc``'s whole process group (if still there) and forget it."""
        kill_group(proc)
        for name in [n for n, p in self.procs.items() if p is proc]:
            del self.procs[name], self.grace_s[name]

    def stop_all(self) -> None:
        """Everything, in the order started, but ``LAST`` last."""
        for name in [n for n in self.procs if n not in LAST] + list(LAST):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.stop(name)

    def log_tails(self) -> None:
        """The last lines of every log, on stderr (for a failed run)."""
        print_log_tails(self.tmp)


@dataclass
class Child:
    """A function run in a process of its own (``multiprocessing``, spawn) that talks to
    this one over a pipe: it sends what it built, gets a plan (``None``: stop), sends its
    results."""

    process: BaseProcess
    conn: Connection

    @classmethod
    def start(
        cls,
        target: Callable[[Connection, dict[str, Any]], None],
        options: dict[str, Any],
        name: str,
    ) -> Child:
        context = mp.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_child_main, args=(target, child_end, options), name=name, daemon=True
        )
        process.start()
        child_end.close()
        return cls(process, parent_end)

    def receive(self, timeout_s: float, what: str) -> dict[str, Any]:
        """The child's next message, or ``HarnessError``."""
        try:
            if self.conn.poll(timeout_s):
                message: dict[str, Any] = self.conn.recv()
                return message
        except (EOFError, OSError):
            raise HarnessError(f"{self.process.name} exited before sending {what}") from None
        raise HarnessError(f"{self.process.name} sent no {what} within {timeout_s} s")

    def stop(self) -> None:
        """Tell the child to stop, terminate it after 3 s, close the pipe."""
        if self.process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.process.join(3)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(5)
        self.conn.close()


def _child_main(
    target: Callable[[Connection, dict[str, Any]], None], conn: Connection, options: dict[str, Any]
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates shutdown
    target(conn, options)


class Stoppable(Protocol):
    """What ``run_main`` needs of what a script starts (``Processes`` has it)."""

    def stop_all(self) -> None: ...

    def log_tails(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


def run_main(
    prefix: str,
    make: Callable[[Path], S],
    run: Callable[[S], dict[str, Any]],
    *,
    indent: int | None = 2,
    keep: bool = False,
) -> int:
    """Run one script in a temporary folder named ``prefix...`` (with ``keep``, left there
    and named on stderr): ``make(folder)`` holds what it starts, ``run`` returns its figures,
    printed as JSON on stdout (``indent`` ``None``: one line). Everything is stopped at the
    end, also on Ctrl-C, SIGTERM or failure. Returns 0; 1 when the run failed (the logs' last
    lines go to stderr) or its figures list ``violations`` or say ``passed`` false; 130 when
    interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return _run_in(folder, make, run, indent)
    finally:
        if keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _run_in(
    folder: Path, make: Callable[[Path], S], run: Callable[[S], dict[str, Any]], indent: int | None
) -> int:
    services = make(folder)
    try:
        result = run(services)
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    except RUN_ERRORS as exc:
        print(f"{Path(sys.argv[0]).stem} failed: {exc}", file=sys.stderr)
        services.log_tails()
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it short
        services.stop_all()
    failed = failures(result)
    if failed:
        services.log_tails()
    print(json.dumps(result, indent=indent), flush=True)
    if failed:
        print("failed:", *failed, sep="\n  ", file=sys.stderr)
    return 1 if failed else 0


def failures(result: dict[str, Any]) -> list[str]:
    """What a run's figures say went wrong: its ``violations``, else the ``checks`` that
    did not hold when ``passed`` is false."""
    if result.get("violations"):
        return [str(violation) for violation in result["violations"]]
    if result.get("passed") is False:
        checks: dict[str, Any] = result.get("checks", {})
        return [name for name, held in checks.items() if not held] or ["passed: false"]
    return []


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
