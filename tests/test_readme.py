"""The README stays true: its opening commands and its configuration table."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from dnc.settings import (
    AuditSettings,
    CxoneSettings,
    IntakeSettings,
    ReceiverSettings,
    RedisSettings,
    SyncSettings,
)
from sandbox.settings import SandboxSettings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]


def test_every_setting_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    classes: list[type[BaseSettings]] = [
        ReceiverSettings,
        IntakeSettings,
        RedisSettings,
        CxoneSettings,
        SyncSettings,
        SandboxSettings,
        AuditSettings,
    ]
    for cls in classes:
        prefix = cls.model_config["env_prefix"]
        for name in cls.model_fields:
            assert f"`{prefix}{name.upper()}`" in text, name
