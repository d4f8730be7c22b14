"""Octopus config flow: credentials, meter selection, reauth, reconfigure, tariff options."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
import logging
from typing import Any
from unittest.mock import AsyncMock, patch

import aiohttp
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.config_flow import (
    FLOW_RETRY_POLICY,
    default_options,
    valid_tariff_override,
    validate_tariff_overrides,
)
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources import octopus
from custom_components.meterlake.sources.base import SourceContext

from .conftest import load_fixture_json

API = "https://api.octopus.energy/v1"
KEY = "sk_live_TESTKEY0123456789abcdef"
NEW_KEY = "sk_live_NEWKEY9876543210fedcba"
ACCOUNT = "A-1A2B3C4D"
ACCOUNT_URL = f"{API}/accounts/{ACCOUNT}/"
IMPORT = "octopus_electricity_1012345678901"
EXPORT = "octopus_electricity_1098765432109"
GAS = "octopus_gas_3456789012"
GAS_FIELD = "gas_unit_3456789012"
NEW, OLD = "E1S12345678901", "21L4567890"

IMPORT_CONFIG = {
    "key": IMPORT,
    "kind": "electricity",
    "unit": "kWh",
    "name": "Octopus electricity import …8901",
    "serials": [NEW, OLD],
    "is_export": False,
    "point": "1012345678901",
    "tariff_override": None,
}
EXPORT_CONFIG = {
    "key": EXPORT,
    "kind": "electricity",
    "unit": "kWh",
    "name": "Octopus electricity export …2109",
    "serials": [NEW],
    "is_export": True,
    "point": "1098765432109",
    "tariff_override": None,
}
GAS_CONFIG_KWH = {
    "key": GAS,
    "kind": "gas",
    "unit": "kWh",
    "name": "Octopus gas …9012",
    "serials": ["G4P12345678901"],
    "is_export": False,
    "point": "3456789012",
    "tariff_override": None,
}

VALID_OPTIONS = {
    "archive_root": "meterlake",
    "keep_raw_days": 0,
    "backfill_days": 90,
    "gas_calorific_value": 39.5,
    "gas_volume_correction": 1.02264,
    "standing_charge_in_cost": False,
}


@pytest.fixture(autouse=True)
def _no_entry_setup() -> Generator[AsyncMock]:
    """Flows create or reload entries: keep them from polling (test_octopus_entry.py does that)."""
    with (
        patch("custom_components.meterlake.async_setup_entry", return_value=True) as setup,
        patch("custom_components.meterlake.async_unload_entry", return_value=True),
    ):
        yield setup


GAS_CONSUMPTION_URL = f"{API}/gas-meter-points/3456789012/meters/G4P12345678901/consumption/"


def mock_account(
    mock: AiohttpClientMocker, gas_days: list[dict[str, Any]] | None = None, **response: Any
) -> None:
    """The account; the gas meter's daily totals of the last year (none by default)."""
    mock.clear_requests()
    mock.get(ACCOUNT_URL, **(response or {"json": load_fixture_json("octopus/account.json")}))
    mock.get(GAS_CONSUMPTION_URL, json={"count": 0, "next": None, "results": gas_days or []})


def gas_year(per_day: float, days: int = 365) -> list[dict[str, Any]]:
    """Daily consumption rows of the last `days` days, as the API answers group_by=day."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        {
            "consumption": per_day,
            "interval_start": (today - timedelta(days=n)).strftime("%Y-%m-%dT00:00:00Z"),
            "interval_end": (today - timedelta(days=n - 1)).strftime("%Y-%m-%dT00:00:00Z"),
        }
        for n in range(days, 0, -1)
    ]


def octopus_entry(meters: list[dict[str, Any]], **options: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Octopus Energy {ACCOUNT}",
        data={"source": "octopus", "api_key": KEY, "account_number": ACCOUNT, "meters": meters},
        options=default_options() | options,
        unique_id=ACCOUNT,
        version=1,
        minor_version=1,
    )


async def start_octopus(hass: HomeAssistant) -> Any:
    result: Any = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["demo", "octopus", "tibber", "eco2mix", "composed"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "octopus"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "octopus"
    return result


def schema_defaults(result: Any) -> dict[str, Any]:
    return {
        str(key): key.default() for key in result["data_schema"].schema if callable(key.default)
    }


def selector_of(result: Any, name: str) -> Any:
    return next(value for key, value in result["data_schema"].schema.items() if key == name)


# ------------------------------------------------------------------------------ user flow


async def meters_step(hass: HomeAssistant) -> Any:
    result = await start_octopus(hass)
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
    )


async def test_gas_unit_preselected_as_kwh_when_a_year_of_readings_matches_the_annual_quantity(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    # consumption_standard 11000 kWh; ~30 a day = ~11000 a year: the meter reads kWh, although
    # its serial (G4...) looks like a SMETS2 meter in m³.
    mock_account(aioclient_mock, gas_days=gas_year(30.0))
    result = await meters_step(hass)
    assert schema_defaults(result)[GAS_FIELD] == "kWh"
    checks = [call for call in aioclient_mock.mock_calls if "consumption" in str(call[1])]
    assert len(checks) == 1
    assert checks[0][1].query["group_by"] == "day"


async def test_gas_unit_preselected_as_m3_when_readings_are_a_factor_below_the_annual_quantity(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    # ~2.7 a day = ~980 a year: x11.2 kWh/m³ = ~11000 kWh, the annual quantity.
    mock_account(aioclient_mock, gas_days=gas_year(2.7))
    result = await meters_step(hass)
    assert schema_defaults(result)[GAS_FIELD] == "m³"


async def test_gas_unit_keeps_the_serial_default_when_too_few_readings_tell(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    # 30 days are too few to compare with a year: the G4 serial's default (m³) stays.
    mock_account(aioclient_mock, gas_days=gas_year(30.0, days=30))
    result = await meters_step(hass)
    assert schema_defaults(result)[GAS_FIELD] == "m³"


async def test_gas_unit_check_failing_keeps_the_serial_default(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.clear_requests()
    aioclient_mock.get(ACCOUNT_URL, json=load_fixture_json("octopus/account.json"))
    aioclient_mock.get(GAS_CONSUMPTION_URL, status=503)
    result = await meters_step(hass)
    assert result["step_id"] == "octopus_meters"
    assert schema_defaults(result)[GAS_FIELD] == "m³"


async def test_octopus_flow_creates_entry(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    result = await start_octopus(hass)
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == ["api_key", "account_number"]
    assert result["description_placeholders"]["api_access_url"].startswith("https://octopus")

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": f"  {KEY} ", "account_number": " a-1a2b3c4d\n"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "octopus_meters"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {"account": ACCOUNT}
    # The account, and the gas meter's last year (to check its unit; empty here).
    assert aioclient_mock.call_count == 2
    # Every meter point of the current home is offered and preselected; the former home's not.
    defaults = schema_defaults(result)
    assert defaults == {"meters": [IMPORT, EXPORT, GAS], GAS_FIELD: "m³"}
    meters_selector = selector_of(result, "meters")
    assert meters_selector.config["multiple"] is True
    assert meters_selector.config["options"] == [
        {
            "value": IMPORT,
            "label": f"Electricity import · MPAN 1012345678901 · serials {NEW}, {OLD}",
        },
        {"value": EXPORT, "label": f"Electricity export · MPAN 1098765432109 · serial {NEW}"},
        {"value": GAS, "label": "Gas · MPRN 3456789012 · serial G4P12345678901"},
    ]
    gas_selector = selector_of(result, GAS_FIELD)
    assert gas_selector.config["options"] == ["kWh", "m³"]

    # The user says this gas meter reports kWh, and leaves the export meter out.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"meters": [GAS, IMPORT], GAS_FIELD: "kWh"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Octopus Energy {ACCOUNT}"
    assert result["data"] == {
        "source": "octopus",
        "api_key": KEY,
        "account_number": ACCOUNT,
        "meters": [IMPORT_CONFIG, GAS_CONFIG_KWH],
    }
    assert result["options"] == default_options()
    assert result["result"].unique_id == ACCOUNT

    # What the flow stored is what the source builds its meters from.
    source = octopus.create_source(
        SourceContext(
            session=async_get_clientsession(hass),
            executor=hass.async_add_executor_job,
            data=result["data"],
            options=result["options"],
        )
    )
    assert [(m.key, m.unit) for m in source.meters] == [(IMPORT, "kWh"), (GAS, "kWh")]


async def test_invalid_account_number_is_refused_before_any_request(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    result = await start_octopus(hass)
    for wrong in ("1A2B3C4D", "A-1A2B3C4", "A-1A2B3C4G", "B-1A2B3C4D"):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"api_key": KEY, "account_number": wrong}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "octopus"
        assert result["errors"] == {"account_number": "invalid_account_number"}
    assert aioclient_mock.call_count == 0
    # What the user typed comes back, so a typo is fixed without typing the key again.
    suggested = {
        str(key): key.description["suggested_value"] for key in result["data_schema"].schema
    }
    assert suggested == {"api_key": KEY, "account_number": "B-1A2B3C4D"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
    )
    assert result["step_id"] == "octopus_meters"


@pytest.mark.parametrize(
    ("response", "error"),
    [
        ({"status": 401}, "invalid_auth"),
        ({"status": 403}, "invalid_auth"),
        ({"status": 404}, "account_not_found"),
        ({"status": 500}, "cannot_connect"),
        ({"status": 503}, "cannot_connect"),
        ({"status": 429}, "cannot_connect"),
        ({"status": 400, "text": "bad request"}, "cannot_connect"),
        ({"exc": aiohttp.ClientConnectionError("dns")}, "cannot_connect"),
        ({"exc": TimeoutError()}, "cannot_connect"),
        ({"text": "<html>maintenance</html>"}, "cannot_connect"),
        ({"json": {"detail": "not an account"}}, "cannot_connect"),
    ],
)
async def test_account_errors_are_mapped_and_recoverable(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    caplog: pytest.LogCaptureFixture,
    response: dict[str, Any],
    error: str,
) -> None:
    mock_account(aioclient_mock, **response)
    result = await start_octopus(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "octopus"
    assert result["errors"] == {"base": error}
    # No retry in the flow: a dead network or a failing server answers the user at once.
    assert aioclient_mock.call_count == 1
    assert KEY not in caplog.text

    mock_account(aioclient_mock)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
    )
    assert result["step_id"] == "octopus_meters"


def test_flow_retry_policy_is_short() -> None:
    assert FLOW_RETRY_POLICY.retries == 0
    assert FLOW_RETRY_POLICY.timeout < 30


async def test_unexpected_error_is_logged_as_unknown(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    result = await start_octopus(hass)
    with (
        patch(
            "custom_components.meterlake.config_flow.async_fetch_account",
            side_effect=RuntimeError("boom"),
        ),
        caplog.at_level(logging.ERROR),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while reading the Octopus account" in caplog.text
    assert "RuntimeError: boom" in caplog.text


async def test_second_entry_for_an_account_aborts_without_request(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    octopus_entry([IMPORT_CONFIG]).add_to_hass(hass)
    result = await start_octopus(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": NEW_KEY, "account_number": "a-1a2b3c4d"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert aioclient_mock.call_count == 0


async def test_account_without_meters_aborts(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock, json={"number": ACCOUNT, "properties": []})
    result = await start_octopus(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_meters"
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_selecting_no_meter_is_an_error(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    result = await start_octopus(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": KEY, "account_number": ACCOUNT}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"meters": [], GAS_FIELD: "kWh"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "octopus_meters"
    assert result["errors"] == {"meters": "no_meters_selected"}
    # The unit the user chose is kept on the form shown again.
    assert schema_defaults(result) == {"meters": [], GAS_FIELD: "kWh"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"meters": [EXPORT], GAS_FIELD: "kWh"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["meters"] == [EXPORT_CONFIG]


async def test_octopus_flow_over_http_api(
    hass: HomeAssistant, hass_client: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    """The frontend's path: both schemas serialize; the gas unit and meters come back as JSON."""
    mock_account(aioclient_mock)
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post("/api/config/config_entries/flow", json={"handler": DOMAIN})
    assert resp.status == 200
    body = await resp.json()
    assert body["menu_options"] == ["demo", "octopus", "tibber", "eco2mix", "composed"]
    url = f"/api/config/config_entries/flow/{body['flow_id']}"

    resp = await client.post(url, json={"next_step_id": "octopus"})
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "octopus"
    fields = {field["name"]: field for field in body["data_schema"]}
    assert list(fields) == ["api_key", "account_number"]
    assert fields["api_key"]["required"] and fields["account_number"]["required"]
    assert fields["api_key"]["selector"]["text"]["type"] == "password"
    assert "type" not in fields["account_number"]["selector"]["text"]

    resp = await client.post(url, json={"api_key": KEY, "account_number": "A-XYZ"})
    body = await resp.json()
    assert body["errors"] == {"account_number": "invalid_account_number"}

    resp = await client.post(url, json={"api_key": KEY, "account_number": ACCOUNT})
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "octopus_meters"
    fields = {field["name"]: field for field in body["data_schema"]}
    assert fields["meters"]["default"] == [IMPORT, EXPORT, GAS]
    select = fields["meters"]["selector"]["select"]
    assert select["multiple"] is True
    assert [o["value"] for o in select["options"]] == [IMPORT, EXPORT, GAS]
    assert fields[GAS_FIELD]["default"] == "m³"
    assert fields[GAS_FIELD]["selector"]["select"]["options"] == ["kWh", "m³"]

    resp = await client.post(url, json={"meters": [IMPORT, GAS], GAS_FIELD: "m³"})
    body = await resp.json()
    assert body["type"] == "create_entry"
    assert body["title"] == f"Octopus Energy {ACCOUNT}"
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.unique_id == ACCOUNT
    assert [(m["key"], m["unit"]) for m in entry.data["meters"]] == [
        (IMPORT, "kWh"),
        (GAS, "m³"),
    ]


# ------------------------------------------------------------------------------ reauth


async def test_reauth_replaces_the_key(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, _no_entry_setup: AsyncMock
) -> None:
    entry = octopus_entry([IMPORT_CONFIG])
    entry.add_to_hass(hass)
    result: Any = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["account"] == ACCOUNT

    mock_account(aioclient_mock, status=401)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": "sk_live_still_wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data["api_key"] == KEY

    mock_account(aioclient_mock)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": f" {NEW_KEY} "}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == {
        "source": "octopus",
        "api_key": NEW_KEY,
        "account_number": ACCOUNT,
        "meters": [IMPORT_CONFIG],
    }
    await hass.async_block_till_done()
    assert _no_entry_setup.call_count == 1  # the entry was reloaded with the new key


@pytest.mark.parametrize(
    ("response", "error"),
    [
        ({"status": 403}, "invalid_auth"),
        ({"status": 404}, "account_not_found"),
        ({"status": 502}, "cannot_connect"),
    ],
)
async def test_reauth_errors(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, response: dict[str, Any], error: str
) -> None:
    entry = octopus_entry([IMPORT_CONFIG])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock, **response)
    result: Any = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"api_key": NEW_KEY})
    assert result["errors"] == {"base": error}
    assert entry.data["api_key"] == KEY


# ------------------------------------------------------------------------------ reconfigure


async def test_reconfigure_changes_meters_and_keeps_the_key(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    entry = octopus_entry([IMPORT_CONFIG, GAS_CONFIG_KWH])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock)
    result: Any = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_octopus"
    assert schema_defaults(result) == {"account_number": ACCOUNT}

    with patch(
        "custom_components.meterlake.config_flow.async_fetch_account",
        wraps=octopus.async_fetch_account,
    ) as fetch:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"account_number": ACCOUNT}
        )
    # No new key given: the stored one is used.
    assert fetch.call_args.args[1:] == (KEY, ACCOUNT)
    assert result["step_id"] == "octopus_meters"
    # The current selection and the confirmed gas unit are preselected, not the defaults.
    assert schema_defaults(result) == {"meters": [IMPORT, GAS], GAS_FIELD: "kWh"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"meters": [IMPORT, EXPORT, GAS], GAS_FIELD: "m³"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {
        "source": "octopus",
        "api_key": KEY,
        "account_number": ACCOUNT,
        "meters": [IMPORT_CONFIG, EXPORT_CONFIG, GAS_CONFIG_KWH | {"unit": "m³"}],
    }
    assert entry.options == default_options()


async def test_reconfigure_with_a_new_key_and_gone_meters(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    gone = IMPORT_CONFIG | {"key": "octopus_electricity_1900000000009", "point": "1900000000009"}
    entry = octopus_entry([gone])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock)
    result: Any = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account_number": ACCOUNT.lower(), "api_key": NEW_KEY}
    )
    # The stored meter is no longer on the account: everything it lists is preselected.
    assert schema_defaults(result) == {"meters": [IMPORT, EXPORT, GAS], GAS_FIELD: "m³"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"meters": [IMPORT], GAS_FIELD: "m³"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["api_key"] == NEW_KEY
    assert entry.data["meters"] == [IMPORT_CONFIG]


async def test_reconfigure_refuses_another_account(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    entry = octopus_entry([IMPORT_CONFIG])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock)
    result: Any = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account_number": "A-1A2B3"}
    )
    assert result["errors"] == {"account_number": "invalid_account_number"}
    assert schema_defaults(result) == {"account_number": "A-1A2B3"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account_number": "A-FFFF0000"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_mismatch"
    assert aioclient_mock.call_count == 0
    assert entry.data["account_number"] == ACCOUNT


async def test_reconfigure_errors(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    entry = octopus_entry([IMPORT_CONFIG])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock, status=401)
    result: Any = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account_number": ACCOUNT}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_octopus"
    assert result["errors"] == {"base": "invalid_auth"}


# ------------------------------------------------------------------------------ options


async def test_octopus_options_add_tariff_overrides(hass: HomeAssistant, tmp_path: Any) -> None:
    entry = octopus_entry([IMPORT_CONFIG, EXPORT_CONFIG, GAS_CONFIG_KWH])
    entry.add_to_hass(hass)
    result: Any = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"backfill_days": 30, "archive_root": str(tmp_path)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tariffs"
    assert [str(key) for key in result["data_schema"].schema] == [IMPORT, EXPORT, GAS]
    meters = result["description_placeholders"]["meters"].splitlines()
    assert meters[0] == f"- `{IMPORT}`: Octopus electricity import …8901"
    assert len(meters) == 3

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {IMPORT: " e-1r-agile-24-10-01-c ", EXPORT: "", GAS: "var-22-11-01"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["backfill_days"] == 30
    assert entry.options["tariff_overrides"] == {
        IMPORT: "E-1R-AGILE-24-10-01-C",
        GAS: "VAR-22-11-01",
    }
    # The source reads the overrides from the options.
    source = octopus.create_source(
        SourceContext(
            session=async_get_clientsession(hass),
            executor=hass.async_add_executor_job,
            data=entry.data,
            options=entry.options,
        )
    )
    assert [m.extra["tariff_override"] for m in source.meters] == [
        "E-1R-AGILE-24-10-01-C",
        None,
        "VAR-22-11-01",
    ]


async def test_octopus_options_refuse_bad_codes_and_clear(
    hass: HomeAssistant, tmp_path: Any
) -> None:
    overrides = {IMPORT: "E-1R-AGILE-24-10-01-C", GAS: "VAR-22-11-01"}
    entry = octopus_entry([IMPORT_CONFIG, GAS_CONFIG_KWH], tariff_overrides=overrides)
    entry.add_to_hass(hass)
    result: Any = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": str(tmp_path)}
    )
    # The current overrides are suggested (not defaults, so a field can be emptied).
    suggested = {
        str(key): key.description["suggested_value"] for key in result["data_schema"].schema
    }
    assert suggested == overrides

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {IMPORT: "agile!", GAS: "E-1R-AGILE-24-10-01-C"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {IMPORT: "invalid_tariff_code", GAS: "invalid_tariff_code"}
    assert entry.options["tariff_overrides"] == overrides

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {GAS: "g-1r-var-22-11-01-c"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["tariff_overrides"] == {GAS: "G-1R-VAR-22-11-01-C"}


@pytest.mark.parametrize(
    ("code", "kind", "valid"),
    [
        ("E-1R-AGILE-24-10-01-C", "electricity", True),
        ("E-2R-VAR-22-11-01-G", "electricity", True),
        ("G-1R-VAR-22-11-01-C", "gas", True),
        ("G-1R-VAR-22-11-01-C", "electricity", False),
        ("E-1R-AGILE-24-10-01-C", "gas", False),
        ("AGILE-24-10-01", "electricity", True),
        ("OE-FIX-12M-24-03-01", "electricity", True),
        ("VAR-22-11-01", "gas", True),
        ("AGILE", "electricity", False),
        ("AGILE--24", "electricity", False),
        ("-AGILE-24", "electricity", False),
        ("AGILE 24-10-01", "electricity", False),
        ("X-1R-AGILE-24-10-01-C", "electricity", False),
    ],
)
def test_tariff_override_shapes(code: str, kind: str, valid: bool) -> None:
    assert valid_tariff_override(code, kind) is valid


def test_validate_tariff_overrides_skips_blank_fields() -> None:
    meters = [{"key": IMPORT, "kind": "electricity"}, {"key": GAS, "kind": "gas"}]
    assert validate_tariff_overrides(meters, {IMPORT: "  ", GAS: None}) == ({}, {})
    assert validate_tariff_overrides(meters, {"octopus_gas_other": "VAR-22-11-01"}) == ({}, {})
