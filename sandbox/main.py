"""The factory uvicorn runs: settings are read once here and passed down."""

from __future__ import annotations

from sandbox.app import SandboxApp
from sandbox.context import Sandbox
from sandbox.settings import SandboxSettings


def create_app() -> SandboxApp:
    """Build the sandbox from ``DNC_SANDBOX_*`` settings (``uvicorn --factory``).

    Raises ``pydantic.ValidationError`` on bad settings.
    """
    return SandboxApp(Sandbox.start(SandboxSettings()))
