"""The factory uvicorn runs in each worker: settings are read once here and passed down."""

from __future__ import annotations

from dnc.settings import IntakeSettings, ReceiverSettings, RedisSettings
from receiver import logs
from receiver.app import ReceiverApp


def create_app() -> ReceiverApp:
    """Build the receiver from ``DNC_*`` environment settings (``uvicorn --factory``).

    Raises ``pydantic.ValidationError`` or ``receiver.app.ConfigurationError`` on bad settings.
    """
    settings = ReceiverSettings()
    logs.configure(settings.log_level)
    return ReceiverApp(settings, IntakeSettings().policy(), RedisSettings())
