"""Secrets from Prefect Secret blocks named in settings (``dnc.secret_blocks``), the loader
replaced by a fake: which value is used, a variable and its block together refused, the
variable's rules applied to the block's value, errors that name the setting and the block and
never the value, and ``dnc-sync check`` saying where each secret comes from. The real Prefect
path (a saved block, a flow run): ``tests/flows/test_secret_blocks.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from dnc import secret_blocks
from dnc.secret_blocks import SecretBlockError
from dnc.settings import CxoneSettings, ReceiverSettings
from dnc_sync.check_cli import find_problems
from dnc_sync.cli import app
from tests.conftest import free_port
from tests.test_check_cli import GOOD

CLIENT_SECRET = "client-secret-in-a-block-0123"
KEY_SECRET = "key-secret-in-a-block-0123"
BEARERS = ["bearer-in-a-block-0123456789", "bearer-in-a-block-abcdefghij"]
SECRET_VARIABLES = [
    "DNC_CXONE_CLIENT_SECRET",
    "DNC_CXONE_ACCESS_KEY_SECRET",
    "DNC_RECEIVER_BEARER_SECRETS",
    "DNC_RECEIVER_HMAC_SECRETS",
]


class Blocks:
    """The Secret blocks the loader finds (``saved``: name -> value) and the names it was
    asked for (``read``)."""

    def __init__(self) -> None:
        self.saved: dict[str, object] = {}
        self.read: list[str] = []

    def load(self, name: str) -> object:
        self.read.append(name)
        if name not in self.saved:
            raise SecretBlockError(f"no Prefect Secret block named {name!r} at the test API")
        return self.saved[name]


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> Blocks:
    """The loader replaced; no secret variable or block variable set from outside."""
    for variable in SECRET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"{variable}_BLOCK", raising=False)
    fake = Blocks()
    monkeypatch.setattr(secret_blocks, "load_secret_block", fake.load)
    return fake


def message(exc: ValidationError) -> str:
    return " ".join(str(error["msg"]) for error in exc.errors())


def test_cxone_secrets_come_from_the_blocks_named(
    blocks: Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks.saved.update({"cxone-client": CLIENT_SECRET, "cxone-key": KEY_SECRET})
    monkeypatch.setenv("DNC_CXONE_CLIENT_SECRET_BLOCK", "cxone-client")
    monkeypatch.setenv("DNC_CXONE_ACCESS_KEY_SECRET_BLOCK", "cxone-key")
    settings = CxoneSettings()
    assert isinstance(settings.client_secret, SecretStr)
    assert settings.client_secret.get_secret_value() == CLIENT_SECRET
    assert settings.access_key_secret.get_secret_value() == KEY_SECRET
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert CLIENT_SECRET not in shown and KEY_SECRET not in shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (BEARERS, BEARERS),  # saved from Python: Secret(value=[...])
        ('["' + '", "'.join(BEARERS) + '"]', BEARERS),  # a JSON list typed in as a string
        (",".join(BEARERS), [",".join(BEARERS)]),  # one string is one secret, commas and all
        (BEARERS[0], BEARERS[:1]),  # one secret
    ],
)
def test_receiver_secrets_from_a_block_in_each_shape(
    blocks: Blocks,
    monkeypatch: pytest.MonkeyPatch,
    value: object,
    expected: list[str],
) -> None:
    blocks.saved["receiver-bearers"] = value
    monkeypatch.setenv("DNC_RECEIVER_BEARER_SECRETS_BLOCK", "receiver-bearers")
    settings = ReceiverSettings(hmac_secrets_block="receiver-bearers")
    assert [s.get_secret_value() for s in settings.bearer_secrets] == expected
    assert [s.get_secret_value() for s in settings.hmac_secrets] == expected


def test_without_a_block_name_nothing_is_loaded(
    blocks: Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_CXONE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("DNC_RECEIVER_BEARER_SECRETS", ",".join(BEARERS))
    cxone, receiver = CxoneSettings(), ReceiverSettings()
    assert cxone.client_secret.get_secret_value() == CLIENT_SECRET
    assert [s.get_secret_value() for s in receiver.bearer_secrets] == BEARERS
    assert cxone.client_secret_block == receiver.bearer_secrets_block == ""
    assert blocks.read == []


@pytest.mark.parametrize(
    ("cls", "variable", "value"),
    [
        (CxoneSettings, "DNC_CXONE_CLIENT_SECRET", CLIENT_SECRET),
        (CxoneSettings, "DNC_CXONE_ACCESS_KEY_SECRET", KEY_SECRET),
        (ReceiverSettings, "DNC_RECEIVER_BEARER_SECRETS", BEARERS[0]),
        (ReceiverSettings, "DNC_RECEIVER_HMAC_SECRETS", BEARERS[1]),
    ],
)
def test_a_variable_and_its_block_together_are_refused(
    blocks: Blocks,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[BaseSettings],
    variable: str,
    value: str,
) -> None:
    blocks.saved["the-block"] = value
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv(f"{variable}_BLOCK", "the-block")
    with pytest.raises(ValidationError) as info:
        cls()
    assert f"{variable} and {variable}_BLOCK are both set" in message(info.value)
    assert value not in str(info.value)
    assert blocks.read == []  # refused before asking Prefect


@pytest.mark.parametrize(
    ("cls", "variable", "value", "reason"),
    [
        (ReceiverSettings, "DNC_RECEIVER_BEARER_SECRETS", "a-short-secret", "16 characters"),
        (ReceiverSettings, "DNC_RECEIVER_HMAC_SECRETS", ["a-short-secret"], "16 characters"),
        (ReceiverSettings, "DNC_RECEIVER_BEARER_SECRETS", {"a": "b" * 20}, "valid list"),
        (ReceiverSettings, "DNC_RECEIVER_BEARER_SECRETS", [12_345_678_901_234_567], "string"),
        (ReceiverSettings, "DNC_RECEIVER_HMAC_SECRETS", '["unterminated-json-list', "Unterminated"),
        (CxoneSettings, "DNC_CXONE_CLIENT_SECRET", ["a-list-not-a-secret"], "valid string"),
        (CxoneSettings, "DNC_CXONE_ACCESS_KEY_SECRET", "", "empty"),
        (CxoneSettings, "DNC_CXONE_CLIENT_SECRET", None, "valid string"),
    ],
)
def test_a_block_value_passes_the_rules_of_its_variable(
    blocks: Blocks,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[BaseSettings],
    variable: str,
    value: object,
    reason: str,
) -> None:
    blocks.saved["bad-value"] = value
    monkeypatch.setenv(f"{variable}_BLOCK", "bad-value")
    with pytest.raises(ValidationError) as info:
        cls()
    text = message(info.value)
    assert f"{variable}_BLOCK=bad-value: the block's value is refused" in text
    assert reason in text
    assert "a-short-secret" not in str(info.value) and "a-list-not" not in str(info.value)


def test_a_short_secret_is_refused_alike_from_the_variable_and_from_a_block(
    blocks: Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_RECEIVER_BEARER_SECRETS", "a-short-secret")
    with pytest.raises(ValidationError) as from_variable:
        ReceiverSettings()
    monkeypatch.delenv("DNC_RECEIVER_BEARER_SECRETS")
    blocks.saved["short"] = "a-short-secret"
    with pytest.raises(ValidationError) as from_block:
        ReceiverSettings(bearer_secrets_block="short")
    reason = message(from_variable.value)
    assert "16 characters" in reason and reason in message(from_block.value)


def test_a_missing_block_names_the_setting_and_the_block(
    blocks: Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNC_CXONE_ACCESS_KEY_SECRET_BLOCK", "not-saved")
    with pytest.raises(ValidationError) as info:
        CxoneSettings()
    assert (
        "DNC_CXONE_ACCESS_KEY_SECRET_BLOCK=not-saved: no Prefect Secret block named 'not-saved'"
        in message(info.value)
    )


def test_a_block_name_prefect_cannot_hold_is_refused_unread(blocks: Blocks) -> None:
    with pytest.raises(ValidationError) as info:
        ReceiverSettings(hmac_secrets_block="Not A Block/Name")
    assert [error["loc"] for error in info.value.errors()] == [("hmac_secrets_block",)]
    assert blocks.read == []


def test_check_says_where_each_secret_comes_from(
    blocks: Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GOOD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DNC_CXONE_CLIENT_SECRET")
    monkeypatch.setenv("DNC_CXONE_CLIENT_SECRET_BLOCK", "cxone-client")
    blocks.saved["cxone-client"] = CLIENT_SECRET
    result = CliRunner().invoke(app, ["check", "--no-redis"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "secret DNC_RECEIVER_BEARER_SECRETS: environment",
        "secret DNC_RECEIVER_HMAC_SECRETS: not set",
        "secret DNC_CXONE_CLIENT_SECRET: Prefect Secret block 'cxone-client' "
        "(DNC_CXONE_CLIENT_SECRET_BLOCK)",
        "secret DNC_CXONE_ACCESS_KEY_SECRET: environment",
        "configuration OK",
    ]
    shown = [
        CLIENT_SECRET,
        GOOD["DNC_RECEIVER_BEARER_SECRETS"],
        GOOD["DNC_CXONE_ACCESS_KEY_SECRET"],
    ]
    assert all(secret not in result.output for secret in shown)


def test_check_names_a_block_it_cannot_read(
    blocks: Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GOOD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DNC_RECEIVER_BEARER_SECRETS")
    monkeypatch.setenv("DNC_RECEIVER_BEARER_SECRETS_BLOCK", "receiver-bearers")
    problems = find_problems()
    assert any(
        "DNC_RECEIVER_BEARER_SECRETS_BLOCK=receiver-bearers: no Prefect Secret block" in problem
        for problem in problems
    ), problems


@pytest.mark.socket
def test_prefect_is_imported_only_when_a_block_is_named(tmp_path: Path) -> None:
    """The real loader, in a fresh process: nothing named, no Prefect; a block named with the
    Prefect API down, Prefect imported and the setting, block and API named."""
    code = (
        "import sys\n"
        "from pydantic import ValidationError\n"
        "from dnc.settings import CxoneSettings, ReceiverSettings\n"
        "ReceiverSettings(), CxoneSettings()\n"
        "assert 'prefect' not in sys.modules, 'prefect imported without a block'\n"
        "try:\n"
        "    CxoneSettings(client_secret_block='cxone-client')\n"
        "except ValidationError as exc:\n"
        "    print(exc)\n"
        "assert 'prefect' in sys.modules\n"
    )
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DNC_", "PREFECT_"))}
    env |= {
        "DNC_RECEIVER_BEARER_SECRETS": BEARERS[0],
        "DNC_CXONE_CLIENT_SECRET": "",
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_CLIENT_MAX_RETRIES": "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"DNC_CXONE_CLIENT_SECRET_BLOCK=cxone-client: cannot read block 'cxone-client' from the "
        f"Prefect API at {api} (ConnectError"
    ) in done.stdout, done.stdout
