"""The sync lease as its holders see it: what taking it gave, and losing it."""

from __future__ import annotations

from dataclasses import dataclass

from dnc.errors import StoreError


class LeaseLost(StoreError):
    """Another sync run holds the lease (or ours expired): this run must not claim."""


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """The answer to ``acquire_lease``: ``held`` (truthiness too) and ``wait_ms``, how long
    the new holder must wait before writing to CXone (the takeover grace of a previous holder
    whose lease expired unreleased; ``dnc.fence``)."""

    held: bool
    wait_ms: int = 0

    def __bool__(self) -> bool:
        return self.held
