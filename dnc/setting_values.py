"""Values shared by the settings classes: lists read from one variable, and secrets."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, SecretStr, TypeAdapter
from pydantic_settings import NoDecode


def split_list(value: object) -> object:
    """A JSON list or a comma-separated string as a list; anything else unchanged (for list
    settings read from one environment variable)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _long_enough(value: list[SecretStr]) -> list[SecretStr]:
    if any(len(secret.get_secret_value()) < 16 for secret in value):
        raise ValueError("each secret must be at least 16 characters")
    return value


SecretList = Annotated[
    list[SecretStr], NoDecode, BeforeValidator(split_list), AfterValidator(_long_enough)
]
"""Secrets of at least 16 characters each, given as a list, a JSON list or a comma-separated
string (the receiver's, from the environment or from a Secret block)."""

SECRET_LIST: TypeAdapter[list[SecretStr]] = TypeAdapter(SecretList)


def _not_empty(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise ValueError("the secret is empty")
    return value


SECRET: TypeAdapter[SecretStr] = TypeAdapter(Annotated[SecretStr, AfterValidator(_not_empty)])
"""One secret from a Secret block: a non-empty string."""
