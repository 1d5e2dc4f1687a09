"""``dnc-sync alerts``: the automation specs (which events each alert covers, what its message
says), the command's refusals, and the whole path against a real ``prefect server start``:
install, events emitted through the API or by real flow runs, notifications received by a
custom-webhook block's HTTP server."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.server.events.schemas.automations import EventTrigger as ServerTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.utilities.user_templates import render_user_template_sync
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from dnc_sync import alerts
from dnc_sync.cli import app
from tests.conftest import free_port, wait_until_ok

BLOCK_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
OCCURRED = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)  # matching and messages ignore the time
BIN = Path(sys.executable).parent
NOTIFICATION_WAIT_S = 90.0  # a shared CI box may take long; the wait ends as soon as all came
FLOW_RUNS = """
from prefect import flow
from prefect.runtime import flow_run

def failing(name: str):
    @flow(name=name)
    def fails() -> None:
        print("RUN", name, flow_run.id, flush=True)
        raise ValueError("boom")
    return fails

@flow(name="sync-dnc")
def crashing() -> None:
    print("RUN crashed", flow_run.id, flush=True)
    raise KeyboardInterrupt  # Prefect records the run as Crashed

for run in (failing("other-flow"), failing("sync-dnc"), crashing):
    try:
        run()
    except BaseException:
        pass
"""


def automations_by_key(namespace: str = "ns1") -> dict[str, Any]:
    return {
        automation.name.split(": ")[1].split(" ")[0]: automation
        for automation in alerts.build_automations(namespace, BLOCK_ID, repeat_after_s=900)
    }


def received(event: str, resource: dict[str, str], **kwargs: Any) -> ReceivedEvent:
    return ReceivedEvent(
        occurred=OCCURRED, event=event, resource=resource, id=uuid.uuid4(), **kwargs
    )


def flow_run_event(state: str, state_type: str, flow_name: str) -> ReceivedEvent:
    """A flow-run state change shaped as the server emits it (read back from a real one)."""
    run_id = uuid.uuid4()
    return received(
        f"prefect.flow-run.{state}",
        {
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.name": "silly-cat",
            "prefect.state-name": state,
            "prefect.state-type": state_type,
            "prefect.state-message": "Flow run encountered an exception: ValueError: +12025550123",
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{uuid.uuid4()}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow_name,
            }
        ],
    )


def covers(automation: Any, event: ReceivedEvent) -> bool:
    """Whether the server's own trigger model, built from ``automation``, covers ``event``."""
    trigger = ServerTrigger.model_validate(automation.trigger.model_dump(mode="json"))
    return trigger.covers(event)


def test_each_alert_is_one_named_tagged_automation_of_its_namespace() -> None:
    built = alerts.build_automations("ns1", BLOCK_ID, repeat_after_s=60)
    assert (
        [automation.name for automation in built]
        == alerts.automation_names("ns1")
        == [
            "dnc-sync: lagging (ns1)",
            "dnc-sync: dead-letters (ns1)",
            "dnc-sync: sync-failed (ns1)",
            "dnc-sync: drift (ns1)",
        ]
    )
    for automation in built:
        assert automation.tags == ["dnc-sync", "dnc-sync-namespace:ns1"]
        assert automation.trigger.within.total_seconds() == 60  # type: ignore[union-attr]
        (action,) = automation.actions
        assert action.block_document_id == BLOCK_ID  # type: ignore[union-attr]
        assert action.subject.startswith("dnc-sync (ns1): ")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "event"),
    [
        ("lagging", received("dnc.sync.lagging", {"prefect.resource.id": "dnc.sync.ns1"})),
        (
            "dead-letters",
            received("dnc.sync.dead-lettered", {"prefect.resource.id": "dnc.sync.ns1"}),
        ),
        ("drift", received("dnc.reconcile.drift", {"prefect.resource.id": "dnc.reconcile.ns1"})),
        ("sync-failed", flow_run_event("Failed", "FAILED", "sync-dnc")),
        ("sync-failed", flow_run_event("TimedOut", "FAILED", "sync-dnc")),
        ("sync-failed", flow_run_event("Crashed", "CRASHED", "sync-dnc")),
    ],
)
def test_each_alert_covers_its_event_and_no_other(key: str, event: ReceivedEvent) -> None:
    by_key = automations_by_key()
    assert {k for k, automation in by_key.items() if covers(automation, event)} == {key}


@pytest.mark.parametrize(
    "event",
    [
        received("dnc.sync.lagging", {"prefect.resource.id": "dnc.sync.ns2"}),
        received("dnc.sync.dead-lettered", {"prefect.resource.id": "dnc.sync.ns10"}),
        received("dnc.reconcile.drift", {"prefect.resource.id": "dnc.reconcile.ns2"}),
        received("dnc.sync.completed", {"prefect.resource.id": "dnc.sync.ns1"}),
        received("dnc.reconcile.completed", {"prefect.resource.id": "dnc.reconcile.ns1"}),
        flow_run_event("Failed", "FAILED", "reconcile-dnc"),
        flow_run_event("Completed", "COMPLETED", "sync-dnc"),
        flow_run_event("Cancelled", "CANCELLED", "sync-dnc"),
    ],
)
def test_no_alert_covers_another_namespace_flow_or_outcome(event: ReceivedEvent) -> None:
    assert not [k for k, a in automations_by_key().items() if covers(a, event)]


def render(key: str, event: ReceivedEvent) -> str:
    (action,) = automations_by_key()[key].actions
    return render_user_template_sync(action.body, {"event": event})  # type: ignore[union-attr]


def test_messages_say_what_happened_and_what_to_do_without_numbers() -> None:
    lagging = received(
        "dnc.sync.lagging",
        {"prefect.resource.id": "dnc.sync.ns1"},
        payload={"oldest_pending_age_s": 412.7, "lag_limit_s": 300},
    )
    dead = received(
        "dnc.sync.dead-lettered",
        {"prefect.resource.id": "dnc.sync.ns1"},
        payload={"dead_lettered": 3, "reasons": ["+12025550123 invalid"], "flow_run_id": "r-9"},
    )
    drift = received(
        "dnc.reconcile.drift",
        {"prefect.resource.id": "dnc.reconcile.ns1"},
        payload={"drift": {"opt_out_missing": 2, "opt_in_record": 0, "not_owned": 5}},
    )
    failed = flow_run_event("Crashed", "CRASHED", "sync-dnc")
    run_id = failed.resource.id.removeprefix("prefect.flow-run.")
    messages = {
        "lagging": (lagging, ["waited 412 s", "limit of 300 s", "`dnc-sync status`"]),
        "dead-letters": (dead, ["run r-9", "3 number(s)", "`dnc-sync dead-letters list`"]),
        "drift": (drift, ["opt_out_missing 2, not_owned 5.", "`dnc-sync reconcile --repair`"]),
        "sync-failed": (
            failed,
            [f"silly-cat ({run_id})", "ended Crashed", f"`prefect flow-run retry {run_id}`"],
        ),
    }
    for key, (event, phrases) in messages.items():
        text = render(key, event)
        for phrase in phrases:
            assert phrase in text, (key, text)
        assert not re.search(r"\d{7}", text.replace(run_id, "")), (key, text)


def test_install_refuses_a_block_that_is_not_type_slash_name() -> None:
    result = CliRunner().invoke(
        app, ["alerts", "install", "--block", "dnc-alerts"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2, result.output
    assert "is not <block-type-slug>/<block-name>" in re.sub(r"[\s│]+", " ", result.output)


@pytest.mark.parametrize("command", [["install", "--block", "custom-webhook/x"], ["list"]])
def test_alerts_need_a_real_prefect_api(command: list[str]) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["alerts", *command])
    assert result.exit_code == 2, result.output
    assert "PREFECT_API_URL is not set" in result.output
    assert "runs no automations" in result.output


# --- against a real Prefect server ------------------------------------------------------------


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """This environment without ``PREFECT_*``/``DNC_*``, with a Prefect home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DNC_"))}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return env | ({"PREFECT_API_URL": api_url} if api_url else {})


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a ``prefect server start`` (API, triggers and actions only) for this module."""
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    quiet = ["SCHEDULER", "LATE_RUNS", "FOREMAN", "CANCELLATION_CLEANUP", "PAUSE_EXPIRATIONS"]
    env = prefect_env(home) | {f"PREFECT_SERVER_SERVICES_{s}_ENABLED": "false" for s in quiet}
    env |= {"PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false"}
    with (home / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_ok(f"http://127.0.0.1:{port}/api/health", proc, timeout_s=120)
            yield f"http://127.0.0.1:{port}/api"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Webhook:
    """An HTTP server on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        bodies: queue.Queue[dict[str, str]] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                bodies.put(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout_s: float) -> list[dict[str, str]]:
        """The first ``count`` bodies, waiting up to ``timeout_s`` seconds for each."""
        return [self.bodies.get(timeout=timeout_s) for _ in range(count)]


@pytest.fixture(scope="module")
def webhook(prefect_api: str) -> Iterator[Webhook]:
    """The webhook, saved in the Prefect API as block ``custom-webhook/dnc-alerts``."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    hook = Webhook()
    block = CustomWebhookNotificationBlock(
        name="dnc-alerts", url=hook.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    )
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        block.save("dnc-alerts")
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def api(prefect_api: str, webhook: Webhook) -> Iterator[str]:
    """The server's URL for one test: every automation is deleted and every notification
    forgotten afterwards (another test's ``sync-failed`` alert would fire on a sync run)."""
    yield prefect_api
    for automation in installed(prefect_api).values():
        httpx.delete(f"{prefect_api}/automations/{automation['id']}", timeout=10)
    while not webhook.bodies.empty():
        webhook.bodies.get()


def cli(prefect_api: str, namespace: str, *args: str) -> Any:
    """``dnc-sync alerts ARGS`` in this process, pointed at ``prefect_api`` and ``namespace``."""
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        return CliRunner().invoke(
            app, ["alerts", *args], env={"DNC_REDIS_NAMESPACE": namespace, "COLUMNS": "200"}
        )


def installed(prefect_api: str) -> dict[str, dict[str, Any]]:
    """Every automation in the API by name (failing on a duplicate name)."""
    found = httpx.post(f"{prefect_api}/automations/filter", json={}, timeout=10).json()
    by_name = {automation["name"]: automation for automation in found}
    assert len(by_name) == len(found), [automation["name"] for automation in found]
    return by_name


def emit(prefect_api: str, event: str, resource_id: str, payload: dict[str, Any]) -> None:
    body = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": event,
        "resource": {"prefect.resource.id": resource_id},
        "payload": payload,
    }
    httpx.post(f"{prefect_api}/events", json=[body], timeout=10).raise_for_status()


def run_flows(prefect_api: str, home: Path) -> dict[str, str]:
    """Real flow runs against the server, in this order: other-flow fails, sync-dnc fails,
    sync-dnc crashes; ``{"other-flow" | "sync-dnc" | "crashed": flow run id}``."""
    done = subprocess.run(
        [sys.executable, "-c", FLOW_RUNS],
        env=prefect_env(home, prefect_api),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    runs = dict(line.split()[1:] for line in done.stdout.splitlines() if line.startswith("RUN "))
    assert len(runs) == 3, done.stdout + done.stderr
    return runs


@pytest.mark.socket
def test_install_refuses_a_missing_block_and_a_block_that_cannot_notify(api: str) -> None:
    missing = cli(api, "ns1", "install", "--block", "custom-webhook/nope")
    assert missing.exit_code == 2, missing.output
    assert "no block custom-webhook/nope" in missing.output
    from prefect.blocks.system import Secret

    with temporary_settings(updates={PREFECT_API_URL: api}):
        Secret(value="not-a-notifier").save("not-a-notifier", overwrite=True)
    not_notify = cli(api, "ns1", "install", "--block", "secret/not-a-notifier")
    assert not_notify.exit_code == 2, not_notify.output
    assert "cannot send notifications" in not_notify.output
    assert not installed(api)


@pytest.mark.socket
def test_install_then_each_alert_notifies_once_and_only_for_its_namespace(
    api: str, webhook: Webhook, tmp_path: Path
) -> None:
    namespace = "t" + uuid.uuid4().hex[:10]
    first = subprocess.run(  # the real entry point, as an operator runs it
        [str(BIN / "dnc-sync"), "alerts", "install", "--block", "custom-webhook/dnc-alerts"],
        env=prefect_env(tmp_path, api) | {"DNC_REDIS_NAMESPACE": namespace},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("created dnc-sync: ") == 4, first.stdout
    block = ("--block", "custom-webhook/dnc-alerts")
    again = cli(api, namespace, "install", *block, "--repeat-after-s", "0")
    assert again.exit_code == 0, again.output
    assert again.output.count("updated dnc-sync: ") == 4, again.output
    ours = {n: a for n, a in installed(api).items() if n.endswith(f"({namespace})")}
    assert sorted(ours) == sorted(alerts.automation_names(namespace))
    assert {a["trigger"]["within"] for a in ours.values()} == {0.0}  # was 900: updated
    listed = cli(api, namespace, "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("custom-webhook/dnc-alerts") == 4, listed.output

    # events that must not notify come first: a bug would have them arrive before the rest
    emit(api, "dnc.sync.lagging", "dnc.sync.other", {"oldest_pending_age_s": 1})
    runs = run_flows(api, tmp_path)  # other-flow's failure first
    lag = {"oldest_pending_age_s": 400.5, "lag_limit_s": 300}
    emit(api, "dnc.sync.lagging", f"dnc.sync.{namespace}", lag)
    dead = {"dead_lettered": 2, "reasons": ["x"], "flow_run_id": "run-42"}
    emit(api, "dnc.sync.dead-lettered", f"dnc.sync.{namespace}", dead)
    drift = {"drift": {"opt_out_missing": 1, "not_owned": 0}}
    emit(api, "dnc.reconcile.drift", f"dnc.reconcile.{namespace}", drift)

    bodies = webhook.wait_for(5, NOTIFICATION_WAIT_S)
    subjects = sorted(body["subject"] for body in bodies)
    assert subjects == sorted(
        f"dnc-sync ({namespace}): {title}"
        for title in (
            "sync lagging",
            "numbers dead-lettered",
            "drift found in CXone",
            "sync run failed",
            "sync run failed",
        )
    ), bodies
    text = "\n".join(body["body"] for body in bodies)
    for phrase in (
        "waited 400 s",
        "Sync run run-42 dead-lettered 2 number(s)",
        "opt_out_missing 1.",
        f"({runs['sync-dnc']}) of flow sync-dnc ended Failed",
        f"({runs['crashed']}) of flow sync-dnc ended Crashed",
    ):
        assert phrase in text, text
    assert runs["other-flow"] not in text and "dnc.sync.other" not in text
    assert webhook.bodies.empty(), webhook.bodies.get()


@pytest.mark.socket
def test_remove_deletes_only_its_namespace(api: str) -> None:
    for namespace in ("keep", "drop"):
        done = cli(api, namespace, "install", "--block", "custom-webhook/dnc-alerts")
        assert done.exit_code == 0, done.output
    removed = cli(api, "drop", "remove")
    assert removed.exit_code == 0, removed.output
    assert "removed 4 automation(s) of namespace drop" in removed.output
    names = set(installed(api))
    assert set(alerts.automation_names("keep")) <= names
    assert not set(alerts.automation_names("drop")) & names
    listed = cli(api, "drop", "list")
    assert "no dnc-sync alerts installed for namespace drop" in listed.output


@pytest.mark.socket
def test_install_replaces_same_named_duplicates(api: str) -> None:
    name = alerts.automation_names("dup")[0]
    trigger = {"type": "event", "posture": "Reactive", "expect": ["x"]}
    by_hand = {"name": name, "trigger": trigger, "actions": [{"type": "do-nothing"}]}
    for _ in range(2):
        httpx.post(f"{api}/automations/", json=by_hand, timeout=10).raise_for_status()
    done = cli(api, "dup", "install", "--block", "custom-webhook/dnc-alerts")
    assert done.exit_code == 0, done.output
    assert f"updated {name}" in done.output
    automation = installed(api)[name]  # one left, and it is ours
    assert automation["trigger"]["expect"] == ["dnc.sync.lagging"]
