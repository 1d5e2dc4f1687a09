"""What the receiver enforces on a connection before a request reaches the app."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What ``receiver.protocol`` enforces on a connection: ``header_timeout_s`` seconds to
    send a request line and headers, ``max_header_bytes`` bytes for them, and
    ``body_timeout_s`` seconds for the rest of a body this app answered before reading it."""

    header_timeout_s: float
    max_header_bytes: int
    body_timeout_s: float
