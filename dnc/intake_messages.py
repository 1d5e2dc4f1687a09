"""What intake says: the reasons of its notes, and its sentences for callers and refusals."""

from __future__ import annotations

from dnc.errors import FieldProblem
from dnc.intake_policy import IntakePolicy

AFTER_RECEIPT = "after_receipt"
"""Reason of the note on a timestamp later than receipt (recorded as the receipt time)."""
NO_TIME_ZONE = "no_time_zone"
"""Reason of the note on a timestamp or expiresAt written without a zone."""
OPTIONAL_FIELDS = ("eventId", "region", "metadata", "expiresAt")
"""The optional fields: a bad one is dropped from an opt-out, and refuses an opt-in."""
OPTIONAL = frozenset(OPTIONAL_FIELDS)
"""``OPTIONAL_FIELDS`` as a set."""
PLAN_CHANGE = "plan_change"
"""Reason of the note on a number written in a form its country has retired (stored under
today's number)."""
UNVERIFIED_NUMBER = "unverified_number"
"""Reason of the note on an opt-out's number that the installed metadata does not know."""

UNVERIFIED_WARNING = (
    "phoneNumber has a possible length for its country but is in a range the installed "
    "numbering metadata does not know (it may be new); the opt-out is kept and pushed, and "
    "dead-lettered with CXone's reason if CXone refuses the number"
)
"""The warning of an opt-out's number the metadata does not know (``unverified_number``)."""

CLAMP_WARNING = (
    "timestamp is after the time of receipt; recorded as the receipt time (the time sent is "
    "kept as sentEventMs)"
)
"""The warning of an event time later than receipt (``after_receipt``)."""

REUSED_ID = FieldProblem("eventId", "reused", "eventId was already used for a different event")

UNKNOWN_REGION = FieldProblem(
    "region",
    "unknown_region",
    "region is not a known ISO 3166-1 alpha-2 code with a numbering plan",
)

FIELD_ORDER = {
    name: index
    for index, name in enumerate(
        ("phoneNumber", "eventName", "timestamp", "eventId", "region", "metadata", "expiresAt")
    )
}
"""The order problems are listed in, by field."""

_KEPT = {
    "expiresAt": "the opt-out is recorded without an expiry: it never lapses",
    "metadata": "the opt-out is recorded without it",
    "region": "the number has its country code and is read without the hint",
    "eventId": "the opt-out is recorded under a derived eventId",
}


def metadata_too_large(policy: IntakePolicy) -> FieldProblem:
    """The problem of ``metadata`` over ``policy.metadata_max_bytes`` as JSON."""
    message = f"metadata is over {policy.metadata_max_bytes} bytes as JSON"
    return FieldProblem("metadata", "too_large", message)


def dropped_warning(problem: FieldProblem) -> str:
    """The caller's sentence for a field left out of an opt-out."""
    return f"{problem.field} dropped ({problem.reason}): {problem.message}; {_KEPT[problem.field]}"


def in_future(skew_s: int) -> FieldProblem:
    """The problem of an opt-in's timestamp more than ``skew_s`` seconds after receipt."""
    return FieldProblem(
        "timestamp",
        "in_future",
        f"timestamp is more than {skew_s} s in the future (an opt-in must not be)",
    )
