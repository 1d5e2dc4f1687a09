"""What an import did: ``ImportReport``, the counts ``dnc-sync import`` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ImportReport:
    """What an import did. ``rows``: data rows read (blank ones not counted, see ``blank``);
    ``outcomes``: rows per ``queued`` / ``duplicate`` / ``superseded`` / ``rejected``;
    ``rejections``: problems per ``"field:reason"`` (a row may have several); ``warned``: rows
    accepted with warnings; ``warnings``: those rows per ``"field:reason"`` of an optional
    field dropped from an opt-out (``expiresAt:invalid``...) or a field read with an
    adjustment (``timestamp:no_time_zone``, ``timestamp:after_receipt``,
    ``phoneNumber:plan_change``, ``phoneNumber:unverified_number``); ``aliases``: the copies
    of opt-out rows under their subscriber's other E.164 forms, per ``queued`` / ``duplicate``
    / ``superseded``; ``seconds``: wall time."""

    rows: int = 0
    blank: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    warned: int = 0
    warnings: Counter[str] = field(default_factory=Counter)
    aliases: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        """Rows read per second of wall time (0 before any time passed)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0
