"""Errors raised by the domain core.

Hierarchy::

    DncError
    ├── IntakeError                 an event cannot be accepted (client's fault, 4xx)
    │   └── EventValidationError    one or more fields are missing or invalid (422)
    └── StoreError                  Redis could not do what was asked
        └── StoreUnavailable        Redis unreachable, timed out, loading or read-only (503)

Redis exceptions are converted at the store boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


class DncError(Exception):
    """Base class of every error this project raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """Why one input field was refused.

    ``field`` is the body field name as the caller spelled it (e.g. ``phoneNumber``),
    ``reason`` a stable snake_case code (e.g. ``too_short``), ``message`` a sentence for humans.
    """

    field: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return ``{"field", "reason", "message"}`` for a JSON error body."""
        return {"field": self.field, "reason": self.reason, "message": self.message}


class IntakeError(DncError):
    """An event was refused because of what the caller sent."""


class EventValidationError(IntakeError):
    """One or more fields are missing or invalid; ``problems`` lists each of them."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))


class StoreError(DncError):
    """Redis refused or failed an operation."""


class StoreUnavailable(StoreError):
    """Redis is unreachable, timed out, still loading, or read-only (failover); retry later."""
