"""Secrets read from Prefect Secret blocks named in settings, so that a host needs no secret in
its environment: ``DNC_<AREA>_<SECRET>_BLOCK=<block name>`` stands in for
``DNC_<AREA>_<SECRET>`` (the settings field ``<secret>_block`` for ``<secret>``).

One way or the other: both set is a configuration error naming both variables. A block's value
passes the same rules as the variable's (``fill_from_block``). Prefect is imported only when a
block is named, here and nowhere else in ``dnc`` (the receiver does not pay its import time
otherwise). Values stay ``SecretStr``; messages name settings, blocks and the Prefect API,
never a value.

``SecretBlockError`` is a ``ValueError``, so that raised from a settings validator it reaches
the entry point as the settings' ``pydantic.ValidationError`` (``dnc-sync check`` names it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr, TypeAdapter, ValidationError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

BLOCK_NAME_PATTERN = r"^[a-z0-9-]{0,128}$"
"""A Prefect block document name (lowercase letters, digits and dashes); empty: no block."""

_BLOCK_TYPE_SLUG = "secret"
"""Block type of ``prefect.blocks.system.Secret``."""


class SecretBlockError(ValueError):
    """A secret block setting cannot be honoured: set beside its variable, no Secret block of
    that name, the Prefect API unreachable or refusing, or a value the setting refuses."""


def load_secret_block(name: str) -> object:
    """The value of the Prefect Secret block ``name``, read from this process's Prefect API
    (``PREFECT_API_URL``, ``PREFECT_API_KEY`` or their Prefect profile): a ``str`` as saved
    (never parsed, unlike ``Secret.get()``), or the JSON value (a list, ...) saved from Python
    with ``Secret(value=[...])``.

    Synchronous (Prefect's sync client, one request) so that a settings validator can call it,
    inside a running event loop too. Raises ``SecretBlockError`` when no Secret block has that
    name or the API cannot be reached or refuses the request.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectException

    try:
        with get_client(sync_client=True) as client:
            document = client.read_block_document_by_name(name, block_type_slug=_BLOCK_TYPE_SLUG)
    except ObjectNotFound as exc:
        raise SecretBlockError(f"no Prefect Secret block named {name!r} at {_api()}") from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        raise SecretBlockError(f"{_api()} answered HTTP {status} for block {name!r}") from exc
    except (httpx.HTTPError, PrefectException, OSError, RuntimeError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        raise SecretBlockError(f"cannot read block {name!r} from {_api()} ({reason})") from exc
    return document.data.get("value")


def fill_from_block(settings: BaseSettings, field: str, rules: TypeAdapter[Any]) -> None:
    """When ``settings.<field>_block`` names a Secret block, set ``settings.<field>`` to the
    block's value checked by ``rules`` (the field's own type and validators). Raises
    ``SecretBlockError`` naming the variables when the field is set too, when the block cannot
    be read, or when ``rules`` refuse its value (the reasons, never the value)."""
    block: str = getattr(settings, f"{field}_block")
    if not block:
        return
    variable = env_variable(settings, field)
    if _is_set(getattr(settings, field)):
        raise SecretBlockError(
            f"{variable} and {variable}_BLOCK are both set: give the secret one way only"
        )
    try:
        value = rules.validate_python(_as_saved(load_secret_block(block), getattr(settings, field)))
    except SecretBlockError as exc:
        raise SecretBlockError(f"{variable}_BLOCK={block}: {exc}") from exc
    except ValidationError as exc:
        reasons = "; ".join(
            " ".join([*map(str, error["loc"]), error["msg"]]).strip()
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise SecretBlockError(
            f"{variable}_BLOCK={block}: the block's value is refused ({reasons})"
        ) from None
    setattr(settings, field, value)


def _as_saved(value: object, current: object) -> object:
    """A block's string for a list of secrets is one secret, exactly as saved (a comma in it
    is part of it); a JSON list in it is a list. Other values pass unchanged."""
    if isinstance(current, list) and isinstance(value, str) and not value.lstrip().startswith("["):
        return [value]
    return value


def secret_source(settings: BaseSettings, field: str) -> str:
    """Where ``settings.<field>`` came from, for ``dnc-sync check``: the Prefect Secret block
    named, the environment (or keyword arguments), or nowhere. Never the value."""
    block: str = getattr(settings, f"{field}_block", "")
    if block:
        return f"Prefect Secret block {block!r} ({env_variable(settings, field)}_BLOCK)"
    return "environment" if _is_set(getattr(settings, field)) else "not set"


def env_variable(settings: BaseSettings, field: str) -> str:
    """The environment variable of ``field`` (``DNC_CXONE_`` + ``CLIENT_SECRET``)."""
    return f"{settings.model_config.get('env_prefix', '')}{field.upper()}"


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


def _api() -> str:
    """The Prefect API this process talks to, without any user:password in its URL."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return "the ephemeral Prefect API (PREFECT_API_URL unset)"
    parts = urlsplit(url)
    return f"the Prefect API at {parts._replace(netloc=parts.netloc.rpartition('@')[2]).geturl()}"
