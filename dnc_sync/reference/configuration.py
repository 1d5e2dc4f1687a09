"""The configuration page (``configuration.md``): every setting of every settings class, read
from the classes themselves, so the page names exactly the variables that are read.

A secret's default is never shown: a field typed ``SecretStr`` (alone or in a list), or a
text field whose name holds a credential word (secret, password, token, key).
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from dnc.settings import (
    AuditSettings,
    CxoneSettings,
    IntakeSettings,
    ReceiverSettings,
    ReconcileSettings,
    RedisSettings,
    SyncSettings,
)
from dnc_sync.reference.markdown import code, heading, paragraphs, slug, table, text
from sandbox.settings import SandboxSettings

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    ReceiverSettings,
    IntakeSettings,
    RedisSettings,
    CxoneSettings,
    SyncSettings,
    ReconcileSettings,
    AuditSettings,
    SandboxSettings,
)
"""Every settings class, in the order the page shows them (tests/test_docs.py checks that no
``BaseSettings`` subclass of ours is missing)."""

_CREDENTIAL_WORDS = frozenset({"secret", "secrets", "password", "token", "key"})
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", SecretStr: "secret"}
_BOUND_TYPES = (
    annotated_types.Ge,
    annotated_types.Gt,
    annotated_types.Le,
    annotated_types.Lt,
    annotated_types.MinLen,
    annotated_types.MaxLen,
)

_INTRO = """\
# Configuration

Every setting is an environment variable, read once when a command starts (`dnc-sync check`
checks them all). Lists are given as JSON (`["a","b"]`) or comma-separated. A secret may
instead come from a Prefect Secret block named by its `..._BLOCK` variable. Secret defaults
are not shown.

This page is generated from the settings classes when the site is built. The local stack's own
variables (`DNC_LOCAL_*`, its ports, `DNC_PROJECT_DIR`) belong to `make run`, not to the
services: [Getting started](getting-started.md#what-make-run-starts) lists them."""


def env_variable(cls: type[BaseSettings], name: str) -> str:
    """The environment variable of field ``name``: the class's ``env_prefix`` + ``NAME``."""
    return f"{cls.model_config.get('env_prefix', '')}{name.upper()}"


def is_secret(name: str, field: FieldInfo) -> bool:
    """Whether the field's value must never be shown: ``SecretStr`` (or a list of them), or a
    text field whose name holds a credential word (a number is never a credential)."""
    kinds = _kinds(field.annotation)
    if SecretStr in kinds:
        return True
    if name.endswith("_block"):  # the name of a Prefect Secret block, not the secret in it
        return False
    return bool(_CREDENTIAL_WORDS & set(name.split("_"))) and not kinds <= {int, float, bool}


def _kinds(annotation: Any) -> set[Any]:
    """The plain types an annotation is made of (through unions and lists)."""
    if get_origin(annotation) in (Union, types.UnionType, list):
        return set().union(*(_kinds(arg) for arg in get_args(annotation)))
    return {annotation}


def type_name(annotation: Any) -> str:
    """An annotation as a reader writes its value: ``integer``, ``list of string``, one of a
    literal's values, ``boolean (optional)`` for ``bool | None``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(code(str(arg)) for arg in args)
    if origin is list:
        return "list of " + type_name(args[0])
    if origin in (Union, types.UnionType):
        named = [type_name(arg) for arg in args if arg is not type(None)]
        optional = " (optional)" if type(None) in args else ""
        return " or ".join(named) + optional
    return _SCALARS.get(annotation, text(getattr(annotation, "__name__", str(annotation))))


def _bounds(field: FieldInfo) -> dict[str, Any]:
    """The field's ``ge``/``gt``/``le``/``lt``/``min_length``/``max_length`` that are set."""
    names = ("ge", "gt", "le", "lt", "min_length", "max_length")
    return {
        name: getattr(item, name)
        for item in field.metadata
        for name in names
        if isinstance(item, _BOUND_TYPES) and getattr(item, name, None) is not None
    }


def _ends(low: object, low_open: bool, high: object, high_open: bool) -> str:
    """A range as ``1 to 64`` (both ends inclusive) or its ends as ``> 0, ≤ 60``; empty: none."""
    if low is not None and high is not None and not (low_open or high_open):
        return f"{low} to {high}"
    ends = [(low, ">" if low_open else "≥"), (high, "<" if high_open else "≤")]
    return ", ".join(f"{sign} {value}" for value, sign in ends if value is not None)


def constraints(field: FieldInfo) -> str:
    """The field's bounds and lengths, as ``1 to 65535``, ``> 0, ≤ 60`` or ``length ≤ 256``;
    empty when none."""
    b = _bounds(field)
    value = _ends(b.get("ge", b.get("gt")), "gt" in b, b.get("le", b.get("lt")), "lt" in b)
    length = _ends(b.get("min_length"), False, b.get("max_length"), False)
    return ", ".join(part for part in (value, f"length {length}" if length else "") if part)


def pattern(field: FieldInfo) -> str | None:
    """The regular expression the field's value must match, if any."""
    found = [getattr(item, "pattern", None) for item in field.metadata]
    return next((value for value in found if isinstance(value, str)), None)


def default_text(name: str, field: FieldInfo) -> str:
    """The default as it would be written in the environment; *not shown* for a secret."""
    if field.is_required():
        return "*required*"
    if is_secret(name, field):
        return "*not shown*"
    value = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "*unset*"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, list):
        return code(",".join(map(str, value))) if value else "*empty*"
    return code(str(value)) if value != "" else "*empty*"


def settings_section(cls: type[BaseSettings]) -> str:
    """One class: its heading, its docstring and a table of its variables."""
    rows = []
    for name, field in cls.model_fields.items():
        kind, limits, regex = type_name(field.annotation), constraints(field), pattern(field)
        description = text(field.description or "")
        rows.append(
            [
                code(env_variable(cls, name)),
                f"{kind}, {limits}" if limits else kind,
                default_text(name, field),
                f"{description} Matches {code(regex)}." if regex else description,
            ]
        )
    header = ["Variable", "Type", "Default", "Description"]
    return "\n\n".join(
        [heading(2, cls.__name__, slug(cls.__name__)), paragraphs(cls.__doc__), table(header, rows)]
    )


def configuration_page(classes: tuple[type[BaseSettings], ...] = SETTINGS_CLASSES) -> str:
    """The whole configuration page, one section per settings class."""
    return "\n\n".join([_INTRO, *(settings_section(cls) for cls in classes)]) + "\n"
