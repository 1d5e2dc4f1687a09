"""Secrets from real Prefect Secret blocks saved in this package's temporary Prefect server: a
sync flow run authenticates to the sandbox with CXone secrets held in no environment variable,
and neither its parameters, its result nor its logs hold them; the receiver's list of secrets
comes from one block; a block that is not there is named."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import respx
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from pydantic import ValidationError

from dnc.secret_blocks import SecretBlockError, load_secret_block
from dnc.settings import CxoneSettings, ReceiverSettings
from flows.sync import sync_dnc
from tests.flows.test_sync_flow import active, post

pytestmark = [
    pytest.mark.socket,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# the sandbox's development credentials: the only ones it takes
CLIENT_SECRET = "sandbox-cxone-client-secret-0123456789"
ACCESS_KEY_SECRET = "sandbox-access-key-secret-0123456789"
BEARERS = ["bearer-from-a-block-0123456789", "bearer-from-a-block-abcdefghij"]


def block_name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def no_secret_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for variable in ["DNC_CXONE_CLIENT_SECRET", "DNC_CXONE_ACCESS_KEY_SECRET"]:
        monkeypatch.delenv(variable, raising=False)
    yield


async def test_a_sync_run_reads_cxone_secrets_from_blocks_and_shows_them_nowhere(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client_block, key_block = block_name("cxone-client"), block_name("cxone-key")
    await Secret(value=CLIENT_SECRET).asave(client_block)
    await Secret(value=ACCESS_KEY_SECRET).asave(key_block)
    monkeypatch.delenv("DNC_CXONE_CLIENT_SECRET")  # set by world: the worker host has none
    monkeypatch.delenv("DNC_CXONE_ACCESS_KEY_SECRET")
    monkeypatch.setenv("DNC_CXONE_CLIENT_SECRET_BLOCK", client_block)
    monkeypatch.setenv("DNC_CXONE_ACCESS_KEY_SECRET_BLOCK", key_block)
    await post(world, "+12025550101", "optOut", 0)

    state = await sync_dnc(max_batches=5, return_state=True)

    assert state.is_completed(), state.message
    result = await state.aresult()
    assert result["applied_opt_outs"] == 1 and await active(world) == {"2025550101"}
    await APILogHandler.aflush()
    assert state.state_details.flow_run_id is not None
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert run.parameters["max_batches"] == 5 and logs  # the run logged, under its id
    shown = json.dumps([run.parameters, result, [log.message for log in logs]], default=str)
    assert CLIENT_SECRET not in shown and ACCESS_KEY_SECRET not in shown


def test_receiver_secrets_come_from_blocks(monkeypatch: pytest.MonkeyPatch, harness: None) -> None:
    bearers, hmac = block_name("receiver-bearers"), block_name("receiver-hmac")
    Secret(value=BEARERS).save(bearers)  # a JSON list, as saved from Python
    Secret(value=BEARERS[0]).save(hmac)  # one string, as `prefect block create secret` does
    monkeypatch.delenv("DNC_RECEIVER_BEARER_SECRETS", raising=False)
    monkeypatch.delenv("DNC_RECEIVER_HMAC_SECRETS", raising=False)
    monkeypatch.setenv("DNC_RECEIVER_BEARER_SECRETS_BLOCK", bearers)
    monkeypatch.setenv("DNC_RECEIVER_HMAC_SECRETS_BLOCK", hmac)
    settings = ReceiverSettings()
    assert [secret.get_secret_value() for secret in settings.bearer_secrets] == BEARERS
    assert [secret.get_secret_value() for secret in settings.hmac_secrets] == BEARERS[:1]


def test_a_block_not_saved_is_named(
    monkeypatch: pytest.MonkeyPatch, harness: None, no_secret_variables: None
) -> None:
    missing = block_name("never-saved")
    monkeypatch.setenv("DNC_CXONE_ACCESS_KEY_SECRET_BLOCK", missing)
    with pytest.raises(ValidationError) as info:
        CxoneSettings()
    assert (
        f"DNC_CXONE_ACCESS_KEY_SECRET_BLOCK={missing}: no Prefect Secret block named "
        f"'{missing}' at the Prefect API at http://127.0.0.1:"
    ) in str(info.value)


@pytest.mark.parametrize("status", [401, 403, 500])
def test_an_api_that_refuses_is_named_without_its_password(status: int) -> None:
    settings = {PREFECT_API_URL: "http://user:pw@prefect.test/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    with temporary_settings(settings), respx.mock() as router:
        router.get(
            "http://prefect.test/api/block_types/slug/secret/block_documents/name/cxone-client"
        ).respond(status, json={"detail": "no"})
        with pytest.raises(SecretBlockError) as info:
            load_secret_block("cxone-client")
    assert str(info.value) == (
        f"the Prefect API at http://prefect.test/api answered HTTP {status} for block "
        "'cxone-client'"
    )
