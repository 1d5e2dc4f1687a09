"""Leak scan: run the whole local stack through failing pushes, then look for secrets, access
tokens and full phone numbers everywhere they must not be.

Usage, from the repository root::

    .venv/bin/python -m reliability.secret_scan [--interval-s 5] [--timeout-s 240] [--keep]

1. ``scripts/run-local`` (what ``make run`` starts: Redis, Prefect server, the CXone sandbox,
   the receiver, the served sync) in a temporary data folder, on free ports, without the
   sample replay, a sync every ``--interval-s`` seconds.
2. It mints one access token from the sandbox with the configured credentials (to check the
   token pattern below finds the tokens the sandbox issues), waits for a first sync, then
   rate-limits the sandbox to one call a minute (the run's token call takes it, its pushes
   get 429 and the run fails) and makes two numbers fail per record, sends opt-outs and
   opt-ins for ``NUMBERS`` (and two refused events) through the receiver, waits for a failed
   run, lifts the faults and waits until a run has applied every number (so each number went
   through the sync, Prefect and CXone).
3. It scans the Prefect API (flow runs with parameters and every state's message, task runs
   and their states, artifacts, logs, events, deployments, variables, blocks), then stops
   the stack and scans every file of the data folder, binary-safe (logs of every part,
   Prefect's home with its SQLite database and result storage, the run's own output).

What is looked for: the receiver's bearer secret, the sandbox's client secrets and access key
secret (as they are, URL-encoded, and inside the base64 of an HTTP Basic header), anything
shaped like a JWT (the sandbox's tokens are JWTs: three base64url parts, the first ``eyJ``),
and every full number sent, as E.164, E.164 digits, national digits and as typed (also with
separators squeezed out). Not scanned for numbers: the stores of record, which hold them by
design: Redis's folder, the sandbox's state file (CXone's records) and the audit store's
SQLite file (the proof of each opt-out). The secret file itself
is skipped too, and so is ``sandbox.env``: ``make run`` writes the sandbox's published
development credentials there on purpose, for ``dnc-sync reconcile`` in another terminal
(with a real tenant it writes no such file).

Prints one JSON line: ``{"suite": "secrets", "places", "files_scanned", "api_objects_scanned",
"secrets_found", "numbers_found", "findings", ...}``; exit 0 when nothing was found and the
run did what it should (a failed sync, tokens issued, every number applied), 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import pickle
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from reliability.processes import HOST, HarnessError, free_ports, run_main
from reliability.services import Services
from sandbox.settings import SandboxSettings

# +1 numbers in a range no timestamp or id in the data folder is likely to squeeze into, and
# a few foreign ones; the first two always fail in the sandbox until the faults are lifted.
NUMBERS = (
    *(f"+1 (312) 555-01{n:02d}" for n in range(20)),
    "+44 20 7946 0958",
    "+49 30 901820",
    "+33 1 42 68 53 00",
    "tel:+1-646-555-0143;ext=9",
)
REFUSED_BODIES = (  # authenticated refusals: their bodies go to the rejected stream (Redis)
    {"phoneNumber": "+1 (312) 555-0177", "eventName": "maybe", "timestamp": 1},
    {"phoneNumber": "+1 (312) 555-0178", "eventName": "optOut", "timestamp": "soon"},
)
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
SQUEEZE = re.compile(rb"(?<=\d)[ ().\-]{1,3}(?=\d)")
# 32+ characters of base64 (standard or URL-safe), lines wrapped or "\n"-escaped in JSON.
BASE64 = re.compile(rb"(?:[A-Za-z0-9+/_-]|\\n|\n){32,}={0,2}")
# Hold full numbers by design: Redis, CXone's records, and the audit store (the proof; its
# SQLite file and WAL side files are created 0600). Secrets are still looked for in them.
SECRET_FILES = (("receiver.secret",), ("sandbox.env",))
"""Files that hold secrets on purpose: the receiver's bearer secret, and the sandbox's
published development credentials for commands in another terminal."""
FAST_FAILURES = {
    # Failing pushes fail fast: one Prefect retry, two client tries, short backoffs.
    "DNC_SYNC_PUSH_RETRIES": "1",
    "DNC_SYNC_PUSH_RETRY_DELAY_S": "0.2",
    "DNC_CXONE_MAX_ATTEMPTS": "2",
    "DNC_CXONE_BACKOFF_BASE_S": "0.05",
    "DNC_CXONE_BACKOFF_CAP_S": "0.2",
    "DNC_CXONE_RETRY_AFTER_CAP_S": "0.2",
    # A number that failed waits out a short backoff, not the production 30 s.
    "DNC_SYNC_RETRY_BACKOFF_BASE_S": "0.5",
    "DNC_SYNC_RETRY_BACKOFF_CAP_S": "1",
    # Short attempts, so a run that gave up on a request hands on a short takeover grace.
    "DNC_CXONE_CONNECT_TIMEOUT_S": "1",
    "DNC_CXONE_POOL_TIMEOUT_S": "1",
    "DNC_CXONE_WRITE_TIMEOUT_S": "2",
    "DNC_CXONE_READ_TIMEOUT_S": "3",
    "DNC_SYNC_FENCE_MARGIN_S": "1",
}
NUMBER_STORES = ("redis", "sandbox-state.json", "audit.sqlite3", "audit.sqlite3-wal",
                 "audit.sqlite3-shm")  # fmt: skip


@dataclass
class Stack(Services):
    """A running ``scripts/run-local`` (``run-local.log``), its data in ``tmp`` (a folder the
    scan reads whole), and where to reach it."""

    def url(self, part: str) -> str:
        return f"http://{HOST}:{self.ports[part]}"


def stack_in(folder: Path) -> Stack:
    """A ``Stack`` whose data folder is ``folder/data`` (``run-local`` wants a fresh one)."""
    return Stack(folder / "data")


def start_stack(stack: Stack, interval_s: int, timeout_s: float) -> None:
    """``scripts/run-local`` on free ports, a sync every ``interval_s``, failing fast."""
    names = ("redis", "receiver", "sandbox", "prefect")
    stack.ports = dict(zip(names, free_ports(len(names)), strict=True))
    settings = {
        "DNC_LOCAL_REDIS_PORT": str(stack.ports["redis"]),
        "DNC_RECEIVER_PORT": str(stack.ports["receiver"]),
        "DNC_SANDBOX_PORT": str(stack.ports["sandbox"]),
        "DNC_LOCAL_PREFECT_PORT": str(stack.ports["prefect"]),
        "DNC_LOCAL_SYNC_INTERVAL_S": str(interval_s),
        "DNC_LOCAL_REPLAY": "0",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # the served sync picks up each run at once
        "DNC_SYNC_TIME_BUDGET_S": str(max(2, interval_s - 1)),
        **FAST_FAILURES,
    }
    stack.tmp.mkdir(parents=True)
    stack.start_local_stack(settings, timeout_s)


# -- what is looked for ---------------------------------------------------------------------


@dataclass(frozen=True)
class Needle:
    """Bytes that must not appear: ``what`` names them without showing them."""

    what: str
    kind: str  # "secret" or "number"
    value: bytes


def secret_needles(stack: Stack, minted_token: str) -> list[Needle]:
    """The configured secrets in every form they could be written in, and one minted token."""
    fields = SandboxSettings.model_fields
    secrets = {
        "receiver bearer secret": (stack.tmp / "receiver.secret").read_text().strip(),
        "sandbox client secret": fields["client_secret"].default.get_secret_value(),
        "sandbox access key secret": fields["access_key_secret"].default.get_secret_value(),
        "sandbox outbound client secret": fields[
            "outbound_client_secret"
        ].default.get_secret_value(),
        "access token minted for this scan": minted_token,
    }
    needles = []
    for what, value in secrets.items():
        forms = {value, quote_plus(value)}
        for form in forms:
            needles.append(Needle(what, "secret", form.encode()))
    basic = f"{fields['client_id'].default}:{secrets['sandbox client secret']}".encode()
    needles.append(Needle("sandbox client secret (HTTP Basic)", "secret", base64.b64encode(basic)))
    return needles


def number_forms(raw: str) -> set[str]:
    """How a number may be written: E.164, its digits, national digits, as typed."""
    import phonenumbers

    parsed = phonenumbers.parse(raw.split(";")[0].removeprefix("tel:"), "US")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.national_significant_number(parsed)
    return {e164, e164[1:], national, raw}


def number_needles(raws: list[str] | None = None) -> list[Needle]:
    """Every full number of ``raws`` (default: all sent, also the refused), in every form."""
    if raws is None:
        raws = [*NUMBERS, *(str(body["phoneNumber"]) for body in REFUSED_BODIES)]
    return [
        Needle(f"number ***{raw[-4:]}", "number", form.encode())
        for raw in raws
        for form in number_forms(raw)
    ]


# -- scanning -------------------------------------------------------------------------------


class Matcher:
    """Finds ``needles`` in bytes in one regex pass (numbers a second time with separators
    squeezed out), JWT-shaped strings, and all of it again inside base64 blobs (Prefect
    stores pickled results and exceptions as base64)."""

    def __init__(self, needles: list[Needle]) -> None:
        self.needles = needles
        self._by_value = {n.value: n for n in sorted(needles, key=lambda n: n.kind)}
        self._raw = _alternation(self._by_value)
        self._by_squeezed = {SQUEEZE.sub(b"", n.value): n for n in needles if n.kind == "number"}
        self._squeezed = _alternation(self._by_squeezed)

    def find(self, text: bytes, depth: int = 0) -> Iterator[tuple[Needle, int]]:
        """Each needle found in ``text``, with where (an offset)."""
        for match in self._raw.finditer(text):
            yield self._by_value[match.group(0)], match.start()
        for match in self._squeezed.finditer(SQUEEZE.sub(b"", text)):
            yield self._by_squeezed[match.group(0)], match.start()
        for match in JWT.finditer(text):
            yield Needle("JWT-shaped access token", "secret", match.group(0)), match.start()
        if depth < 2:
            for match in BASE64.finditer(text):
                for decoded in _b64decodings(match.group(0)):
                    for needle, _ in self.find(decoded, depth + 1):
                        what = f"{needle.what} (in base64)"
                        yield Needle(what, needle.kind, needle.value), match.start()


def _alternation(values: dict[bytes, Needle]) -> re.Pattern[bytes]:
    ordered = sorted(values, key=len, reverse=True)  # the longest form wins at one place
    return re.compile(b"|".join(re.escape(v) for v in ordered) or b"(?!)")


def _b64decodings(blob: bytes) -> Iterator[bytes]:
    """``blob`` decoded from each of the 4 alignments (it may start mid-word), standard or
    URL-safe alphabet, padded as needed."""
    compact = re.sub(rb"\\n|\s", b"", blob).rstrip(b"=")
    for skip in range(4):
        part = compact[skip:]
        if len(part) % 4 == 1:
            part = part[:-1]
        with contextlib.suppress(ValueError):
            yield base64.b64decode(part + b"=" * (-len(part) % 4), altchars=b"-_")


@dataclass
class Scan:
    """Findings (one per place, object and thing found), and how much was looked at."""

    matcher: Matcher
    files: int = 0
    api_objects: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)

    def look(self, place: str, where: str, text: bytes, numbers: bool = True) -> None:
        """Record what ``text`` (from ``where`` in ``place``) holds."""
        seen = set()
        for needle, at in self.matcher.find(text):
            if (needle.kind == "number" and not numbers) or needle.what in seen:
                continue
            seen.add(needle.what)
            self.findings.append(
                {
                    "place": place,
                    "where": where,
                    "what": needle.what,
                    "kind": needle.kind,
                    "offset": at,
                }
            )


def scan_files(scan: Scan, data: Path) -> None:
    """Every regular file under ``data``, as bytes; numbers are not looked for in the stores
    of record, secrets everywhere but the secret files (``SECRET_FILES``)."""
    for path in sorted(p for p in data.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(data)
        if relative.parts in SECRET_FILES:
            continue
        scan.files += 1
        store = relative.parts[0] in NUMBER_STORES
        place = "prefect home" if relative.parts[0] == "prefect" else "logs and output"
        scan.look(place, str(relative), path.read_bytes(), numbers=not store)


def _pages(http: httpx.Client, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        response = http.post(path, json=body | {"limit": 200, "offset": offset})
        response.raise_for_status()
        rows = response.json()
        rows = rows.get("events", rows) if isinstance(rows, dict) else rows
        yield from rows
        if len(rows) < 200:
            return
        offset += 200


def scan_prefect_api(scan: Scan, api: str) -> dict[str, int]:
    """Flow runs (parameters, state history), task runs (state history), artifacts, logs,
    events, deployments, variables, blocks; returns flow runs by final state."""
    states: dict[str, int] = {}
    with httpx.Client(base_url=api, timeout=30) as http:
        flow_runs = list(_pages(http, "/flow_runs/filter", {}))
        task_runs = list(_pages(http, "/task_runs/filter", {}))
        collections = {
            "flow runs": flow_runs,
            "task runs": task_runs,
            "artifacts": list(_pages(http, "/artifacts/filter", {})),
            "logs": list(_pages(http, "/logs/filter", {})),
            "deployments": list(_pages(http, "/deployments/filter", {})),
            "variables": list(_pages(http, "/variables/filter", {})),
            "blocks": list(_pages(http, "/block_documents/filter", {})),
            "events": list(_events(http)),
        }
        for run in flow_runs:
            history = http.get("/flow_run_states/", params={"flow_run_id": run["id"]}).json()
            collections.setdefault("flow run states", []).extend(history)
            name = (run.get("state") or {}).get("type", "?")
            states[name] = states.get(name, 0) + 1
        for run in task_runs:
            history = http.get("/task_run_states/", params={"task_run_id": run["id"]}).json()
            collections.setdefault("task run states", []).extend(history)
    for name, rows in collections.items():
        scan.api_objects += len(rows)
        for row in rows:
            scan.look("prefect api", f"{name} {row.get('id', '')}", json.dumps(row).encode())
    return states


def _events(http: httpx.Client) -> Iterator[dict[str, Any]]:
    response = http.post("/events/filter", json={"limit": 200})
    if response.status_code != 200:
        return
    page = response.json()
    while True:
        yield from page.get("events", [])
        next_page = page.get("next_page")
        if not next_page:
            return
        page = http.get(next_page).json()


# -- the run --------------------------------------------------------------------------------


def mint_token(sandbox: str) -> str:
    """An access token from the sandbox's password grant with its configured credentials."""
    fields = SandboxSettings.model_fields
    auth = (fields["client_id"].default, fields["client_secret"].default.get_secret_value())
    form = {
        "grant_type": "password",
        "username": fields["access_key_id"].default,
        "password": fields["access_key_secret"].default.get_secret_value(),
    }
    response = httpx.post(f"{sandbox}/auth/token", data=form, auth=auth, timeout=10)
    response.raise_for_status()
    token = str(response.json()["access_token"])
    if not JWT.fullmatch(token.encode()):
        raise HarnessError("the sandbox's tokens do not match the JWT pattern: fix the pattern")
    return token


def send_events(stack: Stack) -> dict[str, int]:
    """Every number as an opt-out, a third of them then as an opt-in; and the refused bodies."""
    secret = (stack.tmp / "receiver.secret").read_text().strip()
    statuses: dict[str, int] = {}
    now_ms = int(time.time() * 1000)
    events: list[dict[str, Any]] = [
        {"phoneNumber": raw, "eventName": "optOut", "timestamp": now_ms - 60_000 + i}
        for i, raw in enumerate(NUMBERS)
    ]
    events += [
        {**e, "eventName": "optIn", "timestamp": e["timestamp"] + 30_000} for e in events[::3]
    ]
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=stack.url("receiver"), headers=headers, timeout=10) as http:
        for event in [*events, *REFUSED_BODIES]:
            status = str(http.post("/v1/events", json=event).status_code)
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def wait_for_runs(api: str, want: dict[str, int], timeout_s: float) -> dict[str, int]:
    """Poll until the sync-dnc flow runs reach ``want`` counts per final state type."""
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        query = {  # only sync runs that started: every deployment keeps ~100 scheduled ones
            "flows": {"name": {"any_": ["sync-dnc"]}},
            "flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}},
            "sort": "START_TIME_DESC",
            "limit": 200,
        }
        runs = httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10).json()
        counts = {}
        for run in runs:
            kind = (run.get("state") or {}).get("type", "?")
            counts[kind] = counts.get(kind, 0) + 1
        if all(counts.get(k, 0) >= n for k, n in want.items()):
            return counts
        time.sleep(1)
    raise HarnessError(f"sync runs did not reach {want} in {timeout_s} s: {counts}")


def set_faults(sandbox: str, faults: dict[str, Any]) -> None:
    """Change the sandbox's fault config (``POST /_sandbox/faults``)."""
    httpx.post(f"{sandbox}/_sandbox/faults", json=faults, timeout=10).raise_for_status()


def e164(raw: str) -> str:
    """``raw`` in E.164 (``+13125550100``)."""
    return min(number_forms(raw), key=lambda form: (not form.startswith("+"), len(form)))


def wait_applied(stack: Stack, timeout_s: float) -> int:
    """Wait until the sandbox's DNC group holds exactly the opt-outs still standing (the
    stack writes records as E.164 digits); return how many."""
    want = {e164(raw)[1:] for i, raw in enumerate(NUMBERS) if i % 3}  # the rest opted in again
    deadline = time.monotonic() + timeout_s
    held: set[str] = set()
    while time.monotonic() < deadline:
        state = httpx.get(f"{stack.url('sandbox')}/_sandbox/state", timeout=10).json()
        held = {r["phoneNumber"] for r in state["dncGroups"]["1001"]["active"]}
        if held == want:
            return len(held)
        time.sleep(1)
    raise HarnessError(f"the sandbox holds {len(held)} numbers, not the {len(want)} expected")


PLANTED_NUMBER = "+1 (312) 555-0199"  # not sent: the real scan does not look for it


def plant_in_api(api: str) -> Scan:
    """Self-check of the API scan: an artifact holding a full number must be found."""
    artifact = {"key": "planted-leak", "type": "markdown", "data": f"called {PLANTED_NUMBER}"}
    httpx.post(f"{api}/artifacts/", json=artifact, timeout=10).raise_for_status()
    scan = Scan(Matcher(number_needles([PLANTED_NUMBER])))
    with httpx.Client(base_url=api, timeout=30) as http:
        for row in _pages(http, "/artifacts/filter", {}):
            scan.look("prefect api", f"artifacts {row['id']}", json.dumps(row).encode())
    return scan


def plant_in_files(data: Path, needles: list[Needle], token: str) -> Scan:
    """Self-check of the file scan: a log line with a secret and a number, and a pickled
    exception holding a token in Prefect's result storage (base64, as Prefect writes it)."""
    secret = (data / "receiver.secret").read_text().strip()
    (data / "planted.log").write_text(f"auth Bearer {secret} for {PLANTED_NUMBER}\n")
    pickled = pickle.dumps(RuntimeError(f"token {token} refused"))
    record = {"metadata": {}, "result": base64.encodebytes(pickled).decode()}
    (data / "prefect" / "storage" / "planted").write_text(json.dumps(record))
    scan = Scan(Matcher([*needles, *number_needles([PLANTED_NUMBER])]))
    for name in ("planted.log", "prefect/storage/planted"):
        scan.look("planted", name, (data / name).read_bytes())
    return scan


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Start, break, feed and heal the stack, then scan; the result (``passed`` says if
    nothing leaked and the run did what it should)."""
    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started - sum(phases.values()), 1)

    start_stack(stack, args.interval_s, args.timeout_s)
    phase("start_s")
    api = f"{stack.url('prefect')}/api"
    sandbox = stack.url("sandbox")
    token = mint_token(sandbox)
    wait_for_runs(api, {"COMPLETED": 1}, args.timeout_s)  # discovery is cached from now on
    phase("until_a_first_sync_s")
    # One request per minute: the next run's token call takes it, its pushes get 429 and
    # fail after their retries (Retry-After capped short), so the run fails fast.
    failing = [e164(raw)[1:] for raw in NUMBERS[:2]]
    faults = {"rate_limit_rps": 1 / 60, "failing_numbers": failing, "seed": 7}
    set_faults(sandbox, faults)
    sent = send_events(stack)
    set_faults(sandbox, faults)  # refilled: a run between the two calls took the request
    wait_for_runs(api, {"FAILED": 1}, args.timeout_s)
    phase("until_a_failed_sync_s")
    set_faults(sandbox, {"rate_limit_rps": 0, "failing_numbers": []})
    applied = wait_applied(stack, args.timeout_s)
    phase("until_applied_s")
    tokens = httpx.get(f"{sandbox}/_sandbox/state", timeout=10).json()["tokens"]["issued"]
    scan = Scan(Matcher(secret_needles(stack, token) + number_needles()))
    runs = scan_prefect_api(scan, api)
    planted = [plant_in_api(api)]
    stack.stop("run-local")
    scan_files(scan, stack.tmp)
    planted.append(plant_in_files(stack.tmp, scan.matcher.needles, token))
    phase("scan_and_stop_s")
    found = {f["what"].removesuffix(" (in base64)") for p in planted for f in p.findings}
    self_check = {
        "planted": ["number in an artifact", "secret and number in a log", "token in a pickle"],
        "found": sorted(found),
    }
    checks = {
        "nothing_found": not scan.findings,
        "a_sync_failed": runs.get("FAILED", 0) > 0,
        "tokens_were_issued": sum(tokens.values()) > 1,
        "every_number_applied": applied > 0,
        "planted_leaks_found": {
            "receiver bearer secret",
            "number ***0199",
            "JWT-shaped access token",
        }
        <= found,
    }
    return {
        "suite": "secrets",
        "places": ["logs", "prefect home and result storage", "prefect api", "exception messages"],
        "files_scanned": scan.files,
        "api_objects_scanned": scan.api_objects,
        "secrets_found": sum(1 for f in scan.findings if f["kind"] == "secret"),
        "numbers_found": sum(1 for f in scan.findings if f["kind"] == "number"),
        "findings": scan.findings[:50],
        "events_sent": sent,
        "sync_runs": runs,
        "tokens_issued": tokens,
        "numbers_applied": applied,
        "self_check": self_check,
        "phases": phases,
        "checks": checks,
        "passed": all(checks.values()),
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--interval-s", type=int, default=5, help="seconds between syncs, at least 5 (5)"
    )
    parser.add_argument("--timeout-s", type=float, default=240, help="per wait, seconds (240)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder, print where")
    args = parser.parse_args(argv)
    return run_main(
        "dnc-secret-scan-", stack_in, lambda stack: run(stack, args), indent=None, keep=args.keep
    )


if __name__ == "__main__":
    sys.exit(main())
