"""``dnc-sync serve``: run the receiver under uvicorn (uvloop when installed, httptools with
the limits of ``receiver.protocol``)."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

import typer
import uvicorn

from dnc.settings import IntakeSettings, ReceiverSettings, RedisSettings
from receiver import logs
from receiver.app import ReceiverApp


def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address.", show_default="setting DNC_RECEIVER_HOST")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Bind port.", show_default="setting DNC_RECEIVER_PORT")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes.", show_default="setting DNC_RECEIVER_WORKERS"),
    ] = None,
) -> None:
    """Start the receiver; settings come from DNC_* variables, options override them."""
    overrides = {
        k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None
    }
    for name, value in overrides.items():
        os.environ[f"DNC_RECEIVER_{name.upper()}"] = str(value)
    settings = ReceiverSettings()
    logs.configure(settings.log_level)
    # Fail fast, in this process, on settings that cannot work together.
    ReceiverApp(settings, IntakeSettings().policy(), RedisSettings())
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dnc-metrics-")
    uvicorn.run(
        "receiver.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        proxy_headers=False,  # the client address is never used
        server_header=False,
        ws="none",
        log_level=settings.log_level.lower(),
        log_config=logs.uvicorn_log_config(settings.log_level),
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
        # httptools plus a head timeout and cap, and a deadline on bodies answered early.
        http="receiver.protocol:GuardedHttpToolsProtocol",
        # No limit_concurrency: it counts idle connections too and answers plain-text 503s;
        # the timeouts above bound how long any connection lives instead.
    )
