"""How the audit commands (``history``, ``audit export``/``migrate``, ``archive run``) read
their settings and name a failure: one line, never the database URL, its password or SQL.

A bad ``DNC_*`` setting is a usage error (exit 2, as ``dnc-sync import`` reports one); Redis or
the audit store that cannot be reached is for each command to exit on (1), with the line
``redis_failure`` / ``database_failure`` give.
"""

from __future__ import annotations

from typing import TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from dnc.errors import StoreError
from dnc.settings import RedisSettings
from dnc_sync.status_cli import redis_address

S = TypeVar("S", bound=BaseSettings)


class CommandFailed(Exception):
    """Stop the command with exit code 1 and this message (one line, safe to print)."""


def load_settings(cls: type[S]) -> S:
    """``cls`` read from the environment; a bad value stops the command with exit 2, naming
    each problem (pydantic's messages: the settings never echo a value)."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        raise typer.BadParameter(settings_problems(exc), param_hint=f"{prefix}*") from None


def settings_problems(exc: ValidationError) -> str:
    """Every problem of ``exc`` on one line: ``field: message; ...``."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def database_failure(exc: SQLAlchemyError | OSError, doing: str = "read") -> str:
    """One line for a database failure: what could not be done and the exception's type (the
    driver's, for a DBAPI error, with a hint for ``OperationalError``), never the driver's
    text: it may quote the URL (a password) or the rows (full numbers)."""
    if isinstance(exc, DBAPIError):
        reason = type(exc.orig).__name__
        if isinstance(exc, OperationalError):  # the driver's text may quote the URL: a hint
            reason += " (unreachable, refused the credentials, or locked by another writer)"
    elif isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
    else:
        reason = type(exc).__name__
    return f"cannot {doing} the audit store (DNC_AUDIT_DATABASE_URL): {reason}"


def redis_failure(exc: StoreError, doing: str = "read") -> str:
    """One line for a Redis failure: where Redis is (without credentials) and why."""
    try:
        where = redis_address(RedisSettings())
    except ValidationError:
        where = "DNC_REDIS_URL"
    return f"cannot {doing} Redis at {where}: {exc}"
