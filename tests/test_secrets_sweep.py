"""No credential in any text MeterLake writes, whatever failed and wherever the text came from.

One Home Assistant run with credentials of every kind — an Octopus API key, a Tibber token, an
S3 secret key, an Azure account key and an Azure SAS token — where each fails in a way that
puts secret-bearing text into an error: refused archives (a SAS in the root URI, unreachable
stores), API errors quoting the key and the token, a backfill that fails. Then every text is
swept: the log, the repair issues, the diagnostics, the audit dataset read back and the
action's response.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from functools import partial
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import quote

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pyarrow.dataset as ds
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.diagnostics import async_get_config_entry_diagnostics
from custom_components.meterlake.sources.base import RetryPolicy

from .test_octopus_entry import (
    KEY as OCTOPUS_KEY,
    NOW,
    mock_api,
    octopus_entry,  # noqa: F401 - fixture
)
from .test_tibber_source import API as TIBBER_API, HOMES, TOKEN as TIBBER_TOKEN

S3_ACCESS_KEY = "AKIASWEEPTEST0000001"
S3_SECRET = "sweep/S3+Secret/NeverShown0000000000000"
AZURE_KEY = base64.b64encode(b"sweep azure account key, never shown anywhere").decode()
SAS_SIGNATURE = "SweepSASsignature0123456789abcdefABCDEF%2Bx%3D"
SAS = f"sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&sig={SAS_SIGNATURE}"
CLOSED = "http://127.0.0.1:9"  # nothing listens there: every store request fails
SECRETS = {
    "Octopus API key": OCTOPUS_KEY,
    "Tibber token": TIBBER_TOKEN,
    "S3 secret key": S3_SECRET,
    "S3 access key": S3_ACCESS_KEY,
    "Azure account key": AZURE_KEY,
    "SAS signature": SAS_SIGNATURE,
    "SAS signature, decoded": "SweepSASsignature0123456789abcdefABCDEF+x=",
}


@pytest.fixture(autouse=True)
def _no_backoff() -> Generator[None]:
    with (
        patch(
            "custom_components.meterlake.sources.octopus.RetryPolicy",
            partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
        ),
        patch(
            "custom_components.meterlake.sources.tibber.RetryPolicy",
            partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
            create=True,
        ),
    ):
        yield


def leaks(text: str) -> list[str]:
    """The names of the secrets `text` contains (raw or percent-encoded)."""
    return [
        name for name, value in SECRETS.items() if value in text or quote(value, safe="") in text
    ]


def quoting(secret: str) -> aiohttp.ClientError:
    """A connection error whose message quotes a secret the way libraries do: in URLs."""
    return aiohttp.ClientConnectionError(
        f"Cannot connect to https://user:{secret}@api.example/?token={secret}&{SAS} "
        f"(Authorization: Bearer {secret})"
    )


async def test_no_secret_in_any_text_meterlake_writes(  # noqa: PLR0917 - pytest fixtures
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    octopus_entry: MockConfigEntry,  # noqa: F811 - fixture
    demo_entry: MockConfigEntry,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.meterlake")
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/London")

    # Octopus: a local archive (the audit is read back from it), its API answers at setup.
    mock_api(aioclient_mock)
    octopus_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(octopus_entry.entry_id)
    await hass.async_block_till_done()

    # Demo: an Azure archive with an account key, on a store that does not answer.
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        demo_entry,
        options=dict(demo_entry.options)
        | {
            "archive_root": "abfss://energy@sweepaccount.dfs.core.windows.net/lake",
            "archive_account_key": AZURE_KEY,
            "archive_endpoint": CLOSED,
        },
    )
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()

    # Tibber: an Azure root with the SAS token in its URI, and an API whose errors quote the
    # token (the entry retries its setup later).
    aioclient_mock.post(TIBBER_API, status=400, text=str(quoting(TIBBER_TOKEN)))
    tibber = MockConfigEntry(
        domain=DOMAIN,
        title="Tibber (sweep)",
        data={"source": "tibber", "access_token": TIBBER_TOKEN, "homes": [HOMES[0]]},
        options=default_options()
        | {
            "archive_root": f"abfs://energy@sweepaccount.dfs.core.windows.net/lake?{SAS}",
            "archive_endpoint": CLOSED,
            "backfill_days": 2,
        },
        unique_id="sweep-tibber",
    )
    tibber.add_to_hass(hass)
    await hass.config_entries.async_setup(tibber.entry_id)
    await hass.async_block_till_done()

    # The options form with an S3 secret on a store that does not answer.
    flow = await hass.config_entries.options.async_init(demo_entry.entry_id)
    form = await hass.config_entries.options.async_configure(
        flow["flow_id"],
        {
            "archive_root": "s3://sweep-bucket/lake",
            "archive_access_key": S3_ACCESS_KEY,
            "archive_secret_key": S3_SECRET,
            "archive_endpoint": CLOSED,
            "keep_raw_days": 0,
            "backfill_days": 10,
            "gas_calorific_value": 39.5,
            "gas_volume_correction": 1.02264,
            "standing_charge_in_cost": False,
        },
    )
    assert form["type"] is FlowResultType.FORM
    assert form["errors"] == {"archive_root": "archive_unreachable"}

    # Octopus's consumption now fails with errors quoting its key; a backfill reports them.
    mock_api(
        aioclient_mock,
        consumption={"exc": quoting(OCTOPUS_KEY)},
    )
    aioclient_mock.post(TIBBER_API, status=400, text=str(quoting(TIBBER_TOKEN)))
    # Every meter fails: the action's error is what the user sees.
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(
            DOMAIN,
            "backfill",
            {"config_entry": octopus_entry.entry_id, "days": 5, "force": True},
            blocking=True,
            return_response=True,
        )
    await hass.async_block_till_done()

    texts: dict[str, str] = {
        "log": caplog.text,
        "options form": json.dumps([form["errors"], form["description_placeholders"]]),
    }
    texts["action error"] = str(refused.value)
    issues = [issue for (domain, _), issue in ir.async_get(hass).issues.items() if domain == DOMAIN]
    texts["repair issues"] = json.dumps(
        [[issue.translation_key, issue.translation_placeholders] for issue in issues]
    )
    for entry in (octopus_entry, demo_entry):
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        texts[f"diagnostics {entry.title}"] = json.dumps(diagnostics, default=str)
    audit = await hass.async_add_executor_job(
        lambda: ds.dataset(
            tmp_path / "lake" / "audit", format="parquet", partitioning="hive"
        ).to_table()
    )
    errors = [error for error in audit.column("error").to_pylist() if error]
    texts["audit errors"] = "\n".join(errors)

    # The sweep is not vacuous: each text holds the failures it must describe.
    assert errors, "the failed requests left no audit error"
    assert "ClientConnectionError" in texts["audit errors"]
    assert "archive_unproven" in texts["repair issues"]
    assert "sweepaccount" in texts["repair issues"]
    assert "ClientConnectionError" in texts["action error"]
    assert "s3://sweep-bucket/lake" in form["description_placeholders"]["error"]
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}
