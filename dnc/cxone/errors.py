"""Errors of the CXone client; httpx errors are converted into these at the transport boundary.

Hierarchy::

    DncError
    └── CxoneError
        ├── CxoneAuthError          credentials refused twice (wrong keys, wrong issuer)
        ├── CxonePermanentError     the request is wrong (4xx other than 401/408/429); not retried
        └── CxoneTransientError     try again later; ``retry_after_s`` when the server said
            ├── CxoneRateLimited    429 Too Many Requests
            ├── CxoneServerError    5xx
            ├── CxoneTimeout        connect/read/write/pool timeout
            └── CxoneConnectionError  the connection failed or broke

Messages name the method, the path and the status, never a token, a secret or a whole number.
"""

from __future__ import annotations

from dnc.errors import DncError


class CxoneError(DncError):
    """Base of every CXone client error."""


class CxoneAuthError(CxoneError):
    """CXone refused the credentials (a fresh token was refused too)."""


class CxonePermanentError(CxoneError):
    """CXone refused the request itself; retrying the same request cannot help.

    ``status`` is the HTTP status code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.status))


class CxoneTransientError(CxoneError):
    """A failure worth retrying later; ``retry_after_s`` (seconds) when the server said."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.retry_after_s))


class CxoneRateLimited(CxoneTransientError):
    """429: the tenant's rate limit was hit."""


class CxoneServerError(CxoneTransientError):
    """5xx from CXone."""


class CxoneTimeout(CxoneTransientError):
    """The request timed out. ``maybe_sent``: it may have reached CXone and been applied (a
    read or write timeout, a 408); false when it never left (connect or pool timeout)."""

    def __init__(
        self, message: str, retry_after_s: float | None = None, *, maybe_sent: bool = True
    ) -> None:
        super().__init__(message, retry_after_s)
        self.maybe_sent = maybe_sent

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_timeout, (str(self), self.retry_after_s, self.maybe_sent))


class CxoneConnectionError(CxoneTransientError):
    """The connection could not be made or broke."""


def _rebuild_timeout(message: str, retry_after_s: float | None, maybe_sent: bool) -> CxoneTimeout:
    return CxoneTimeout(message, retry_after_s, maybe_sent=maybe_sent)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying (for Prefect's ``retry_condition_fn``)."""
    return isinstance(exc, CxoneTransientError)
