"""Settings, one pydantic-settings class per area, read from ``DNC_<AREA>_...`` variables.

Validation errors never echo the input (``hide_input_in_errors``): a bad value may be, or sit
beside, a secret (a list of secrets, a Redis URL with a password).

Build each once at an entry point (CLI command, ASGI factory) and pass it down; tests build
them with keyword arguments. Lists (secrets) are read as JSON (``["a","b"]``) or as a
comma-separated string. A secret of ``CxoneSettings`` and ``ReceiverSettings`` may instead come
from a Prefect Secret block named by its ``*_BLOCK`` variable (``dnc.secret_blocks``).

Each class is in its own module (``dnc.redis_settings``, ``dnc.intake_settings``, ...), with
the shared value types in ``dnc.setting_values``; all are importable from here.
"""

from __future__ import annotations

from dnc.audit_settings import AuditSettings
from dnc.cxone_settings import CxoneSettings
from dnc.intake_settings import IntakeSettings
from dnc.receiver_settings import ReceiverSettings
from dnc.reconcile_settings import ReconcileSettings
from dnc.redis_settings import RedisSettings
from dnc.setting_values import SecretList, split_list
from dnc.sync_settings import SyncSettings

__all__ = [
    "AuditSettings",
    "CxoneSettings",
    "IntakeSettings",
    "ReceiverSettings",
    "ReconcileSettings",
    "RedisSettings",
    "SecretList",
    "SyncSettings",
    "split_list",
]
