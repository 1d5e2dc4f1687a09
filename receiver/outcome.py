"""How a request ends: the ``Outcome`` a route returns and the JSON error body of a refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one event request ended: HTTP ``status`` and JSON ``body``, the metrics labels
    ``outcome``/``reason``, extra ``headers``, and log-safe ``log_fields``."""

    status: int
    body: dict[str, Any]
    outcome: str
    reason: str = ""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    log_fields: dict[str, Any] = field(default_factory=dict)


def error_body(error: str, message: str) -> dict[str, Any]:
    """A refusal's JSON body: ``error`` (a stable snake_case code) and ``message`` (a
    sentence for humans)."""
    return {"error": error, "message": message}
