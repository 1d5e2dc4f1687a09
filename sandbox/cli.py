"""``dnc-sync sandbox``: run the local CXone sandbox under uvicorn (one process)."""

from __future__ import annotations

import ipaddress
import os
import signal
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from sandbox.settings import SandboxSettings


def sandbox_command(
    host: Annotated[
        str | None, typer.Option(help="Bind address.", show_default="setting DNC_SANDBOX_HOST")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Bind port.", show_default="setting DNC_SANDBOX_PORT")
    ] = None,
) -> None:
    """Start the local CXone sandbox: a fake of the CXone endpoints the sync calls.

    Settings come from DNC_SANDBOX_* variables; options override them. Credentials
    default to fixed development values (sandbox/settings.py).
    """
    for name, value in {"host": host, "port": port}.items():
        if value is not None:
            os.environ[f"DNC_SANDBOX_{name.upper()}"] = str(value)
    settings = SandboxSettings()  # fail fast, in this process, on bad settings
    for line in banner(settings):
        typer.echo(line)
    # uvicorn re-raises the SIGTERM it shut down on; with this handler that ends in exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "sandbox.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        access_log=False,  # query strings carry phone numbers
        proxy_headers=False,
        server_header=False,
        ws="none",
        log_level="info",
        timeout_graceful_shutdown=5,
    )


def banner(settings: SandboxSettings) -> list[str]:
    """What the sandbox prints at start: where it listens and what it emulates, no secrets."""
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"CXone sandbox on {base} (tenant {settings.tenant_id})",
        f"  DNC groups {', '.join(settings.dnc_group_ids)} under "
        f"{base}/inContactAPI/services/v{settings.api_version}.0/dnc-groups/<id>/records",
        f"  outbound contacts {base}/api/v2/outbound/contacts",
        f"  control API {base}/_sandbox/state | reset | faults | dnc-groups/<id>/records"
        " (out-of-band changes; no authentication)",
        "  credentials: DNC_SANDBOX_* (defaults in sandbox/settings.py)",
    ]
    if not _is_loopback(settings.host):
        lines.append("  warning: not bound to loopback; the control API needs no credentials")
    return lines


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
