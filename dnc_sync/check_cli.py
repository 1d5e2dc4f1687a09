"""``dnc-sync check``: read every setting and the CXone target's requirements now, before any
process starts, and name each problem (``scripts/run-local`` runs it first).

Unless ``--no-redis``, it also connects to Redis and refuses one that may evict keys
(``maxmemory-policy`` other than ``noeviction``, see ``dnc.redis_policy``), and opens the
audit store (a warning when it cannot be opened or is not migrated). A retention shorter than
the TSR's five years is a warning.

Exit codes: 0 fine, 2 a setting is invalid or missing (or Redis may evict keys), 3 Redis is
not reachable (its policy was not checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from dnc.audit.database import AuditStoreNotReady, open_engine, require_current
from dnc.cxone.factory import build_target
from dnc.errors import StoreUnavailable
from dnc.fence import check_lease_timing
from dnc.redis_policy import EvictionPolicyError, require_noeviction
from dnc.secret_blocks import env_variable, secret_source
from dnc.settings import (
    AuditSettings,
    CxoneSettings,
    IntakeSettings,
    ReceiverSettings,
    RedisSettings,
    SyncSettings,
)
from dnc.store import open_redis
from dnc_sync.audit_errors import database_failure

EXIT_INVALID = 2
EXIT_REDIS_UNREACHABLE = 3


def check(
    receiver: bool = typer.Option(True, help="Also check the receiver's settings."),
    cxone: bool = typer.Option(True, help="Also check the CXone target's settings."),
    redis: bool = typer.Option(
        True, help="Also connect to Redis and check it never evicts keys (noeviction)."
    ),
) -> None:
    """Check every DNC_* setting, what the CXone adapter needs and Redis's eviction policy;
    say where each secret comes from (never its value); exit 2 naming each problem, 3 when
    Redis cannot be reached."""
    sources: list[str] = []
    problems = find_problems(receiver=receiver, cxone=cxone, sources=sources)
    warnings: list[str] = audit_warnings(connect=redis)
    unreachable = ""
    redis_settings = _redis_settings() if redis else None
    if redis_settings is not None:
        try:
            found, redis_warnings = redis_problems(redis_settings)
            problems.extend(found)
            warnings.extend(redis_warnings)
        except StoreUnavailable as exc:
            unreachable = (
                f"Redis is not reachable ({exc}), so its maxmemory-policy was not checked: "
                "start it and check again (--no-redis skips this)"
            )
    out, console = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    for source in sources:
        out.print(escape(source))
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for problem in [*problems, unreachable] if unreachable else problems:
        console.print(f"[red]error:[/red] {escape(problem)}")
    if problems:
        raise typer.Exit(EXIT_INVALID)
    if unreachable:
        raise typer.Exit(EXIT_REDIS_UNREACHABLE)
    out.print("configuration OK")


def redis_problems(settings: RedisSettings) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of the Redis ``settings`` name: a problem when its
    ``maxmemory-policy`` is not ``noeviction`` (or cannot be read), a warning instead with
    ``DNC_REDIS_ALLOW_EVICTION=true``. Raises ``StoreUnavailable`` when it cannot be reached."""
    collected = _Collected()
    logger = logging.Logger("dnc.check")  # not registered: its lines go to this check only
    logger.addHandler(collected)

    async def probe() -> None:
        client = open_redis(settings)
        try:
            await require_noeviction(client, allow_eviction=settings.allow_eviction, logger=logger)
        finally:
            await client.aclose()

    try:
        asyncio.run(probe())
    except EvictionPolicyError as exc:
        return [str(exc)], collected.lines
    return [], collected.lines


TSR_RECORD_DAYS = 1_826
"""Five years: how long the Telemarketing Sales Rule (16 CFR 310.5, as amended in 2024) asks
telemarketers to keep their records."""


def audit_warnings(*, connect: bool) -> list[str]:
    """Warnings about the audit store (never errors: the receiver and the sync run without
    it): a retention shorter than the TSR's five years, and with ``connect`` a store that
    cannot be opened or is not migrated yet. Nothing when ``DNC_AUDIT_*`` is invalid (named
    as a problem by ``find_problems``)."""
    try:
        settings = AuditSettings()
    except ValidationError:
        return []
    warnings = []
    if settings.retention_days < TSR_RECORD_DAYS:
        warnings.append(
            f"DNC_AUDIT_RETENTION_DAYS={settings.retention_days}: under five years, the "
            "Telemarketing Sales Rule's record-keeping period (16 CFR 310.5)"
        )
    if connect:
        try:
            engine = open_engine(settings.database_url.get_secret_value(), create=False)
            try:
                require_current(engine)
            finally:
                engine.dispose()
        except AuditStoreNotReady as exc:
            warnings.append(f"audit store: {exc}")
        except (SQLAlchemyError, OSError) as exc:
            warnings.append(f"audit store: {database_failure(exc, 'open')}")
    return warnings


class _Collected(logging.Handler):
    """Keeps the messages logged to it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _redis_settings() -> RedisSettings | None:
    try:
        return RedisSettings()
    except ValidationError:
        return None  # named by find_problems


def find_problems(
    *, receiver: bool = True, cxone: bool = True, sources: list[str] | None = None
) -> list[str]:
    """Every problem of the settings in the environment, as lines naming the variable; empty
    when all is well. Secrets are never echoed (the settings hide input values). ``sources``
    gets a line per secret of the valid receiver and CXone settings saying where it comes from
    (environment, Prefect Secret block, not set)."""
    loaders: list[Callable[[], BaseModel]] = [
        RedisSettings,
        IntakeSettings,
        SyncSettings,
        AuditSettings,
    ]
    if receiver:
        loaders.append(ReceiverSettings)
    problems = []
    for load in loaders:
        try:
            settings = load()
        except ValidationError as exc:
            problems.extend(_describe(exc))
            continue
        if isinstance(settings, ReceiverSettings):
            problems.extend(_receiver_problems(settings))
            _note_sources(settings, sources)
    if cxone:
        problems.extend(_cxone_problems(sources))
    return problems


def _note_sources(settings: ReceiverSettings | CxoneSettings, sources: list[str] | None) -> None:
    if sources is not None:
        sources.extend(
            f"secret {env_variable(settings, field)}: {secret_source(settings, field)}"
            for field in settings.block_secrets
        )


def _receiver_problems(settings: ReceiverSettings) -> list[str]:
    if settings.auth_disabled or settings.bearer_secrets or settings.hmac_secrets:
        return []
    return [
        "DNC_RECEIVER_BEARER_SECRETS or DNC_RECEIVER_HMAC_SECRETS (or their _BLOCK): the "
        "receiver needs a secret (or DNC_RECEIVER_AUTH_DISABLED=true)"
    ]


def _cxone_problems(sources: list[str] | None = None) -> list[str]:
    try:
        settings = CxoneSettings()
    except ValidationError as exc:
        return _describe(exc)
    _note_sources(settings, sources)
    needed = (
        {
            "DNC_CXONE_CLIENT_ID": settings.client_id,
            "DNC_CXONE_CLIENT_SECRET": settings.client_secret.get_secret_value(),
        }
        if settings.adapter == "outbound-contacts"
        else {
            "DNC_CXONE_CLIENT_ID": settings.client_id,
            "DNC_CXONE_CLIENT_SECRET": settings.client_secret.get_secret_value(),
            "DNC_CXONE_ACCESS_KEY_ID": settings.access_key_id,
            "DNC_CXONE_ACCESS_KEY_SECRET": settings.access_key_secret.get_secret_value(),
        }
    )
    blockable = {env_variable(settings, field) for field in settings.block_secrets}
    problems = [f"{name} is required for the {settings.adapter} adapter"
                + (f" (or {name}_BLOCK)" if name in blockable else "")
                for name, value in needed.items() if not value]  # fmt: skip
    with contextlib.suppress(ValidationError):  # a bad DNC_SYNC_ value is named already
        problems.extend(check_lease_timing(SyncSettings(), settings))
    try:
        asyncio.run(_build(settings))
    except ValueError as exc:
        problems.append(str(exc))
    return problems


async def _build(settings: CxoneSettings) -> None:
    async with httpx.AsyncClient() as client:  # never used: the adapter only checks settings
        build_target(settings, client)


def _describe(exc: ValidationError) -> list[str]:
    area = str(exc.title).removesuffix("Settings").upper()  # CxoneSettings -> CXONE
    return [
        f"DNC_{area}_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
        if error["loc"]
        else f"DNC_{area}_*: {error['msg']}"
        for error in exc.errors()
    ]
