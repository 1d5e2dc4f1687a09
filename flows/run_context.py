"""What the flows ask of Prefect's run context."""

from __future__ import annotations

from prefect.context import FlowRunContext


def flow_run_id() -> str | None:
    """This run's Prefect flow run id, or ``None`` outside a Prefect flow run."""
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        return str(context.flow_run.id)
    return None
