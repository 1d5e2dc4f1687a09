"""The alerts ``dnc-sync alerts install`` puts in Prefect: one automation per thing an operator
must act on, each sending to a notification block. Plain data here; no Prefect API call.

| alert | fires on | scope |
|---|---|---|
| ``lagging`` | ``dnc.sync.lagging`` | resource ``dnc.sync.<namespace>`` |
| ``dead-letters`` | ``dnc.sync.dead-lettered`` | resource ``dnc.sync.<namespace>`` |
| ``sync-failed`` | ``prefect.flow-run.*``, state type FAILED or CRASHED | flow ``sync-dnc`` |
| ``drift`` | ``dnc.reconcile.drift`` | resource ``dnc.reconcile.<namespace>`` |

Flow runs carry no namespace: ``sync-failed`` covers every ``sync-dnc`` run the Prefect server
sees. Messages are Jinja templates Prefect renders from the triggering event: counts, run
names and ids, never a phone number (dead-letter reasons are left out: CXone's text may quote
one) or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from dnc_sync.status import FLOW_NAME

TAG = "dnc-sync"
"""Tag of every automation this module builds (Prefect's UI filters on it)."""
ResourceSpec = dict[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``key`` (stable, in the automation's name), ``title`` (the subject's end),
    the events it ``expect``s (trailing ``*`` wildcards allowed), the labels the event's
    resource must ``match`` and those of one related resource (``match_related``; empty:
    any), and the notification ``body`` (a Jinja template over ``event``)."""

    key: str
    title: str
    expect: frozenset[str]
    match: ResourceSpec
    match_related: ResourceSpec
    body: str


def _j(expression: str) -> str:
    """``expression`` as a Jinja placeholder, kept apart from the f-strings around it."""
    return "{{ " + expression + " }}"


def lagging(namespace: str) -> Alert:
    """The sync falls behind: the oldest pending change waited past ``DNC_SYNC_LAG_LIMIT_S``."""
    return Alert(
        key="lagging",
        title="sync lagging",
        expect=frozenset({"dnc.sync.lagging"}),
        match={"prefect.resource.id": f"dnc.sync.{namespace}"},
        match_related={},
        body=f"The oldest pending DNC change in namespace {namespace} has waited "
        f"{_j('event.payload.oldest_pending_age_s | int')} s, past the limit of "
        f"{_j('event.payload.lag_limit_s')} s: opt-outs are not reaching CXone in time. "
        "Run `dnc-sync status` for the backlog and the last sync run; "
        "see that run's logs in Prefect for why it is slow or failing (CXone down or slow, "
        "credentials refused, no worker running).",
    )


def dead_letters(namespace: str) -> Alert:
    """A sync run dead-lettered numbers (``dnc.sync.dead-lettered``)."""
    return Alert(
        key="dead-letters",
        title="numbers dead-lettered",
        expect=frozenset({"dnc.sync.dead-lettered"}),
        match={"prefect.resource.id": f"dnc.sync.{namespace}"},
        match_related={},
        body=f"Sync run {_j('event.payload.flow_run_id')} dead-lettered "
        f"{_j('event.payload.dead_lettered')} number(s) in namespace {namespace}: CXone "
        "refused them for good, or they kept failing, and they will not be retried. An "
        "opt-out among them is a person who can still be called. See them (masked) and "
        "CXone's reasons with `dnc-sync dead-letters list`; once the cause is fixed, "
        "`dnc-sync dead-letters requeue --all` (or the numbers).",
    )


def sync_failed(namespace: str) -> Alert:
    """A ``sync-dnc`` flow run ended in a state of type FAILED (Failed, TimedOut) or
    CRASHED (Prefect's own state-change events, ``prefect.flow-run.<state name>``)."""
    run_id = "event.resource.id | replace('prefect.flow-run.', '')"
    state = 'event.resource["prefect.state-name"]'
    return Alert(
        key="sync-failed",
        title="sync run failed",
        expect=frozenset({"prefect.flow-run.*"}),
        match={
            "prefect.resource.id": "prefect.flow-run.*",
            "prefect.state-type": ["FAILED", "CRASHED"],
        },
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME},
        body=f"Sync run {_j('event.resource.name')} ({_j(run_id)}) of flow {FLOW_NAME} "
        f"ended {_j(state)}. The numbers it had claimed stay pending for the next run. "
        f"Read why with `prefect flow-run logs {_j(run_id)}`, check `dnc-sync status` and "
        f"`dnc-sync check`; run it again with `prefect flow-run retry {_j(run_id)}`.",
    )


def drift(namespace: str) -> Alert:
    """The reconciliation found CXone out of step with this service (``dnc.reconcile.drift``)."""
    counts = (
        "{% for name, count in event.payload.drift.items() if count %}{{ name }} {{ count }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    return Alert(
        key="drift",
        title="drift found in CXone",
        expect=frozenset({"dnc.reconcile.drift"}),
        match={"prefect.resource.id": f"dnc.reconcile.{namespace}"},
        match_related={},
        body=f"The reconciliation of namespace {namespace} found CXone out of step with this "
        f"service: {counts}. opt_out_missing or expiry_differs means people who opted out "
        "can be called. Run `dnc-sync reconcile --repair` (the next sync fixes what it "
        "requeues) and `dnc-sync status`; expiry_differs and not_owned need a hand in CXone "
        "(see docs/reconciliation.md, its table of drift classes).",
    )


def alerts(namespace: str) -> tuple[Alert, ...]:
    """Every alert of ``namespace``, in a fixed order."""
    return tuple(build(namespace) for build in (lagging, dead_letters, sync_failed, drift))


def automation_name(alert: Alert, namespace: str) -> str:
    """The automation's name, its identity for install and remove: ``dnc-sync: <key>
    (<namespace>)``."""
    return f"dnc-sync: {alert.key} ({namespace})"


def automation_names(namespace: str) -> list[str]:
    """The names of every automation of ``namespace``."""
    return [automation_name(alert, namespace) for alert in alerts(namespace)]


def build_automation(
    alert: Alert, namespace: str, block_document_id: UUID, repeat_after_s: int
) -> AutomationCore:
    """The automation for ``alert``: a reactive trigger firing on the first matching event,
    then quiet for ``repeat_after_s`` seconds (0: every event), sending one notification to
    the block document ``block_document_id`` (a block with the ``notify`` capability)."""
    trigger = EventTrigger(
        expect=set(alert.expect),
        match=alert.match,
        match_related=alert.match_related,
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(seconds=repeat_after_s),
    )
    action = SendNotification(
        block_document_id=block_document_id,
        subject=f"dnc-sync ({namespace}): {alert.title}",
        body=alert.body,
    )
    return AutomationCore(
        name=automation_name(alert, namespace),
        description=f"{alert.title} (installed by `dnc-sync alerts install`)",
        enabled=True,
        tags=[TAG, f"{TAG}-namespace:{namespace}"],
        trigger=trigger,
        actions=[action],
    )


def build_automations(
    namespace: str, block_document_id: UUID, repeat_after_s: int
) -> list[AutomationCore]:
    """One automation per alert of ``namespace`` (see ``build_automation``)."""
    return [
        build_automation(alert, namespace, block_document_id, repeat_after_s)
        for alert in alerts(namespace)
    ]
