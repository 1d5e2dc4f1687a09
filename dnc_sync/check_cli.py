"""``dnc-sync check``: read every setting and the CXone target's requirements now, before any
process starts, and name each problem (``scripts/run-local`` runs it first).

Exit codes: 0 fine, 2 a setting is invalid or missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from dnc.cxone.factory import build_target
from dnc.settings import (
    CxoneSettings,
    IntakeSettings,
    ReceiverSettings,
    RedisSettings,
    SyncSettings,
)

EXIT_INVALID = 2


def check(
    receiver: bool = typer.Option(True, help="Also check the receiver's settings."),
    cxone: bool = typer.Option(True, help="Also check the CXone target's settings."),
) -> None:
    """Check every DNC_* setting and what the CXone adapter needs; exit 2 naming each
    problem."""
    problems = find_problems(receiver=receiver, cxone=cxone)
    console = Console(stderr=True)
    for problem in problems:
        console.print(f"[red]error:[/red] {problem}")
    if problems:
        raise typer.Exit(EXIT_INVALID)
    Console().print("configuration OK")


def find_problems(*, receiver: bool = True, cxone: bool = True) -> list[str]:
    """Every problem of the settings in the environment, as lines naming the variable; empty
    when all is well. Secrets are never echoed (the settings hide input values)."""
    loaders: list[Callable[[], BaseModel]] = [RedisSettings, IntakeSettings, SyncSettings]
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
    if cxone:
        problems.extend(_cxone_problems())
    return problems


def _receiver_problems(settings: ReceiverSettings) -> list[str]:
    if settings.auth_disabled or settings.bearer_secrets or settings.hmac_secrets:
        return []
    return [
        "DNC_RECEIVER_BEARER_SECRETS or DNC_RECEIVER_HMAC_SECRETS: the receiver needs a "
        "secret (or DNC_RECEIVER_AUTH_DISABLED=true)"
    ]


def _cxone_problems() -> list[str]:
    try:
        settings = CxoneSettings()
    except ValidationError as exc:
        return _describe(exc)
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
    problems = [f"{name} is required for the {settings.adapter} adapter" for name, value in
                needed.items() if not value]  # fmt: skip
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
