"""Writing a request's answer: the JSON response, the latency histogram, one log line.

One line per request outcome: accepted at INFO, refused (4xx) at WARNING, our or Redis's
trouble (5xx) at ERROR; so WARNING keeps every problem and drops the happy path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from receiver.asgi import ClientGone, Scope, Send, send_json
from receiver.metrics import ReceiverMetrics
from receiver.outcome import Outcome, error_body

log = logging.getLogger("dnc.receiver")

_LOG_LEVELS = {2: logging.INFO, 4: logging.WARNING, 5: logging.ERROR}


async def answer(
    scope: Scope,
    send: Send,
    metrics: ReceiverMetrics,
    process: Awaitable[Outcome],
    *,
    message: str = "event request",
    per_event: bool = False,
) -> None:
    """Run a write route's ``process`` and answer its outcome (``finish``, log line
    ``message``); a client gone is counted and not answered, an exception is a 500.
    ``per_event``: a 202/207's events were counted one by one, so its request is not
    observed again in the latency histogram (the batch route)."""
    started = time.perf_counter()
    try:
        outcome = await process
    except ClientGone:
        metrics.observe("client_gone", "", time.perf_counter() - started)
        return
    except Exception:
        log.exception("internal error", extra={"fields": {"path": scope["path"]}})
        outcome = Outcome(
            500, error_body("internal_error", "internal error"), "error", "internal_error"
        )
    observe = not (per_event and outcome.status in (202, 207))
    await finish(send, metrics, outcome, started, message, observe=observe)


async def finish(
    send: Send,
    metrics: ReceiverMetrics,
    outcome: Outcome,
    started: float,
    message: str = "event request",
    *,
    observe: bool = True,
) -> None:
    """Send ``outcome`` as JSON, observe its latency since ``started`` (``perf_counter``
    seconds) under its outcome and reason unless not ``observe``, and log ``message`` with
    its status, outcome, reason, latency (ms) and log fields."""
    await send_json(send, outcome.status, outcome.body, outcome.headers)
    elapsed = time.perf_counter() - started
    if observe:
        metrics.observe(outcome.outcome, outcome.reason, elapsed)
    level = _LOG_LEVELS[outcome.status // 100]
    if log.isEnabledFor(level):
        fields = {
            "status": outcome.status,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "latency_ms": round(elapsed * 1000, 3),
            **outcome.log_fields,
        }
        log.log(level, message, extra={"fields": fields})
