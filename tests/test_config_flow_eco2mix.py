"""eCO2mix config flow: perimeter, reconfigure, and the options' co2 meter (also over HTTP)."""

from __future__ import annotations

from collections.abc import Generator
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, patch

import aiohttp
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components import meterlake
from custom_components.meterlake.config_flow import (
    co2_meter_options,
    default_options,
    perimeter_name,
)
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.lake import async_get_lake
from custom_components.meterlake.sources.base import MeterInfo
from custom_components.meterlake.sources.eco2mix import REGIONS

DATASETS = "https://odre.opendatasoft.com/api/explore/v2.1/catalog/datasets"
NATIONAL_URL = f"{DATASETS}/eco2mix-national-tr/records"
REGIONAL_URL = f"{DATASETS}/eco2mix-regional-tr/records"

NATIONAL_PAGE = {
    "total_count": 96,
    "results": [
        {
            "perimetre": "France",
            "nature": "Données temps réel",
            "date_heure": "2026-11-20T06:00:00+00:00",
            "consommation": 58000,
            "nucleaire": 44000,
            "ech_physiques": -2145,
            "taux_co2": 30,
        }
    ],
}
BRETAGNE_PAGE = {
    "total_count": 96,
    "results": [
        {
            "code_insee_region": "53",
            "libelle_region": "Bretagne",
            "nature": "Données temps réel",
            "date_heure": "2026-11-20T06:00:00+00:00",
            "consommation": 3100,
            "thermique": 120,
        }
    ],
}

VALID_OPTIONS = {
    "archive_root": "meterlake",
    "keep_raw_days": 0,
    "backfill_days": 30,
    "gas_calorific_value": 39.5,
    "gas_volume_correction": 1.02264,
    "standing_charge_in_cost": False,
}


@pytest.fixture(autouse=True)
def _no_eco2mix_setup() -> Generator[AsyncMock]:
    """eCO2mix entries do not poll ODRE here; other entries (the demo) set up for real."""
    real_setup, real_unload = meterlake.async_setup_entry, meterlake.async_unload_entry

    async def setup(hass: HomeAssistant, entry: config_entries.ConfigEntry) -> bool:
        if entry.data["source"] == "eco2mix":
            return True
        return await real_setup(hass, entry)

    async def unload(hass: HomeAssistant, entry: config_entries.ConfigEntry) -> bool:
        if entry.data["source"] == "eco2mix":
            return True
        return await real_unload(hass, entry)

    with (
        patch("custom_components.meterlake.async_setup_entry", side_effect=setup) as mock,
        patch("custom_components.meterlake.async_unload_entry", side_effect=unload),
    ):
        yield mock


def mock_records(mock: AiohttpClientMocker, url: str = NATIONAL_URL, **response: Any) -> None:
    mock.clear_requests()
    mock.get(url, **(response or {"json": NATIONAL_PAGE}))


def eco2mix_entry(perimeter: str = "national", **options: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"eCO2mix {perimeter_name(perimeter)}",
        data={"source": "eco2mix", "perimeter": perimeter},
        options=default_options() | options,
        unique_id=f"eco2mix_{perimeter}",
        version=1,
        minor_version=1,
    )


async def start_eco2mix(hass: HomeAssistant) -> Any:
    result: Any = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert "eco2mix" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "eco2mix"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "eco2mix"
    return result


def selector_of(result: Any, name: str) -> Any:
    return next(value for key, value in result["data_schema"].schema.items() if key == name)


def suggested(result: Any) -> dict[str, Any]:
    return {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }


def schema_defaults(result: Any) -> dict[str, Any]:
    return {
        str(key): key.default() for key in result["data_schema"].schema if callable(key.default)
    }


# ------------------------------------------------------------------------------ user flow


async def test_national_entry(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, _no_eco2mix_setup: AsyncMock
) -> None:
    mock_records(aioclient_mock)
    result = await start_eco2mix(hass)
    assert schema_defaults(result) == {"perimeter": "national"}
    select = selector_of(result, "perimeter").config
    assert select["mode"] == "dropdown"
    assert select.get("multiple") is not True
    # France first, then the 12 regions by name; values are INSEE codes.
    assert select["options"][0] == {"value": "national", "label": "France"}
    regions = select["options"][1:]
    assert len(regions) == 12
    assert {o["value"]: o["label"] for o in regions} == REGIONS
    labels = [o["label"] for o in regions]
    assert labels == sorted(labels)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"perimeter": "national"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "eCO2mix France"
    assert result["data"] == {"source": "eco2mix", "perimeter": "national"}
    assert result["options"] == default_options()
    assert result["result"].unique_id == "eco2mix_national"
    # The endpoint was tried once: one row of the national real-time dataset.
    assert aioclient_mock.call_count == 1
    _method, url, _data, _headers = aioclient_mock.mock_calls[0]
    assert url.path.endswith("/eco2mix-national-tr/records")
    assert url.query["limit"] == "1"
    await hass.async_block_till_done()
    assert _no_eco2mix_setup.call_count == 1


async def test_regional_entry(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_records(aioclient_mock, REGIONAL_URL, json=BRETAGNE_PAGE)
    result = await start_eco2mix(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"perimeter": "53"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "eCO2mix Bretagne"
    assert result["data"] == {"source": "eco2mix", "perimeter": "53"}
    assert result["result"].unique_id == "eco2mix_53"
    _method, url, _data, _headers = aioclient_mock.mock_calls[0]
    assert url.path.endswith("/eco2mix-regional-tr/records")
    assert "53" in url.query["where"]


async def test_unknown_perimeter_is_refused_by_the_schema(hass: HomeAssistant) -> None:
    result = await start_eco2mix(hass)
    with pytest.raises(InvalidData):
        await hass.config_entries.flow.async_configure(result["flow_id"], {"perimeter": "99"})


@pytest.mark.parametrize(
    "response",
    [
        {"status": 500},
        {"status": 503},
        {"status": 429},
        {"status": 404},
        {"status": 400, "json": {"error_code": "ODSQLError", "message": "bad where"}},
        {"exc": aiohttp.ClientConnectionError("dns")},
        {"exc": TimeoutError()},
        {"text": "<html>maintenance</html>"},
        {"json": {"results": "nope"}},
    ],
)
async def test_endpoint_errors_are_cannot_connect_and_recoverable(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, response: dict[str, Any]
) -> None:
    mock_records(aioclient_mock, **response)
    result = await start_eco2mix(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"perimeter": "national"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "eco2mix"
    assert result["errors"] == {"base": "cannot_connect"}
    # No retry in the flow: the user gets the answer at once.
    assert aioclient_mock.call_count == 1
    assert not hass.config_entries.async_entries(DOMAIN)

    mock_records(aioclient_mock)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"perimeter": "national"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_form_keeps_the_chosen_region_after_an_error(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_records(aioclient_mock, REGIONAL_URL, status=502)
    result = await start_eco2mix(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"perimeter": "84"})
    assert result["errors"] == {"base": "cannot_connect"}
    assert schema_defaults(result) == {"perimeter": "84"}


async def test_unexpected_error_is_logged_as_unknown(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    result = await start_eco2mix(hass)
    with (
        patch(
            "custom_components.meterlake.config_flow.async_check",
            side_effect=RuntimeError("boom"),
        ),
        caplog.at_level(logging.ERROR),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"perimeter": "national"}
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while trying the eCO2mix endpoint" in caplog.text
    assert "RuntimeError: boom" in caplog.text


async def test_second_entry_for_a_perimeter_aborts_without_request(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    eco2mix_entry("53").add_to_hass(hass)
    mock_records(aioclient_mock, REGIONAL_URL, json=BRETAGNE_PAGE)
    result = await start_eco2mix(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"perimeter": "53"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert aioclient_mock.call_count == 0


async def test_eco2mix_flow_over_http_api(
    hass: HomeAssistant, hass_client: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    """The frontend's path: the perimeter select serializes; a region comes back by code."""
    mock_records(aioclient_mock, REGIONAL_URL, json=BRETAGNE_PAGE)
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post("/api/config/config_entries/flow", json={"handler": DOMAIN})
    assert resp.status == 200
    body = await resp.json()
    assert body["menu_options"] == ["demo", "octopus", "tibber", "eco2mix", "composed"]
    url = f"/api/config/config_entries/flow/{body['flow_id']}"

    resp = await client.post(url, json={"next_step_id": "eco2mix"})
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "eco2mix"
    (field,) = body["data_schema"]
    assert field["name"] == "perimeter"
    assert field["required"] is True
    assert field["default"] == "national"
    select = field["selector"]["select"]
    assert select["mode"] == "dropdown"
    assert len(select["options"]) == 13
    assert {"value": "53", "label": "Bretagne"} in select["options"]

    resp = await client.post(url, json={"perimeter": "53"})
    body = await resp.json()
    assert body["type"] == "create_entry"
    assert body["title"] == "eCO2mix Bretagne"
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.unique_id == "eco2mix_53"
    assert entry.data == {"source": "eco2mix", "perimeter": "53"}


# ------------------------------------------------------------------------------ reconfigure


async def test_reconfigure_confirms_and_reloads(
    hass: HomeAssistant, _no_eco2mix_setup: AsyncMock
) -> None:
    entry = eco2mix_entry("93")
    entry.add_to_hass(hass)
    result: Any = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_eco2mix"
    assert result["description_placeholders"]["perimeter"] == "Provence-Alpes-Côte d'Azur"
    assert not result["data_schema"].schema
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert _no_eco2mix_setup.call_count == 1
    assert entry.data == {"source": "eco2mix", "perimeter": "93"}


def test_perimeter_names() -> None:
    assert perimeter_name("national") == "France"
    assert perimeter_name("11") == "Île-de-France"
    assert perimeter_name("99") == "99"


# ------------------------------------------------------------------------------ options: co2


async def start_co2(hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path) -> Any:
    result: Any = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": str(tmp_path / "grid")}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "co2"
    return result


async def test_co2_meter_of_a_loaded_demo(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    entry = eco2mix_entry()
    entry.add_to_hass(hass)
    result = await start_co2(hass, entry, tmp_path)
    assert result["description_placeholders"] == {"perimeter": "France"}
    assert suggested(result) == {"co2_meter": "none"}
    select = selector_of(result, "co2_meter").config
    assert select["mode"] == "dropdown"
    # The demo's electricity meter, not its gas meter; the empty choice means none.
    assert select["options"] == [
        {"value": "none", "label": "None"},
        {"value": "demo_electricity", "label": "Demo electricity (MeterLake demo)"},
    ]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"co2_meter": "demo_electricity"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options["co2_meter"] == "demo_electricity"
    assert entry.options["backfill_days"] == 30
    assert entry.state is ConfigEntryState.LOADED

    # The stored meter is preselected; the empty choice removes it.
    result = await start_co2(hass, entry, tmp_path)
    assert suggested(result) == {"co2_meter": "demo_electricity"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"co2_meter": "none"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert "co2_meter" not in entry.options
    assert entry.options["archive_root"] == str(tmp_path / "grid")


async def test_co2_meter_on_a_regional_entry_is_an_error(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    entry = eco2mix_entry("75")
    entry.add_to_hass(hass)
    result = await start_co2(hass, entry, tmp_path)
    assert result["description_placeholders"] == {"perimeter": "Nouvelle-Aquitaine"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"co2_meter": "demo_electricity"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "co2"
    assert result["errors"] == {"co2_meter": "co2_national_only"}
    assert suggested(result) == {"co2_meter": "demo_electricity"}
    assert entry.options == default_options()

    # Leaving the field out (the frontend's "none") saves the shared options without a meter.
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert "co2_meter" not in entry.options
    assert entry.options["backfill_days"] == 30


async def test_co2_step_without_any_meter(hass: HomeAssistant, tmp_path: Path) -> None:
    entry = eco2mix_entry()
    entry.add_to_hass(hass)
    result = await start_co2(hass, entry, tmp_path)
    assert selector_of(result, "co2_meter").config["options"] == [
        {"value": "none", "label": "None"}
    ]
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert "co2_meter" not in entry.options


async def test_co2_meter_of_an_entry_not_loaded_stays_choosable(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    entry = eco2mix_entry(co2_meter="octopus_electricity_1012345678901")
    entry.add_to_hass(hass)
    result = await start_co2(hass, entry, tmp_path)
    assert suggested(result) == {"co2_meter": "octopus_electricity_1012345678901"}
    assert selector_of(result, "co2_meter").config["options"] == [
        {"value": "none", "label": "None"},
        {
            "value": "octopus_electricity_1012345678901",
            "label": "octopus_electricity_1012345678901",
        },
    ]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"co2_meter": "octopus_electricity_1012345678901"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["co2_meter"] == "octopus_electricity_1012345678901"


def _meter(key: str, kind: str = "electricity", *, is_export: bool = False) -> MeterInfo:
    return MeterInfo(
        key=key, supplier="x", kind=kind, unit="kWh", name=key.title(), is_export=is_export
    )


async def test_co2_meter_options_take_import_meters_of_the_lake_only(
    hass: HomeAssistant,
) -> None:
    """The lake holds the meters of loaded entries; import electricity meters are offered."""
    home = "tibber_96a14971525a4420aae9e5aedaa129ff"
    lake = async_get_lake(hass)
    provider = SimpleNamespace()
    lake.register(
        "t", "Tibber (Kari)", [_meter(home), _meter(f"{home}_production", is_export=True)], provider
    )  # type: ignore[arg-type]
    lake.register("g", "eCO2mix France", [_meter("eco2mix_national", "grid")], provider)  # type: ignore[arg-type]
    lake.register("w", "Water", [_meter("water_1", "water")], provider)  # type: ignore[arg-type]
    assert co2_meter_options(hass) == [
        {"value": home, "label": f"{home.title()} (Tibber (Kari))"},
    ]
    # An entry that unloads takes its meters out of the lake.
    lake.unregister("t")
    assert co2_meter_options(hass) == []


# ------------------------------------------------------------------------------ strings


STRINGS = Path(__file__).parents[1] / "custom_components" / "meterlake" / "strings.json"


def test_strings_describe_the_eco2mix_steps() -> None:
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    eco2mix = strings["config"]["step"]["eco2mix"]
    assert eco2mix["title"] and eco2mix["description"]
    assert set(eco2mix["data"]) == set(eco2mix["data_description"]) == {"perimeter"}
    assert "{perimeter}" in strings["config"]["step"]["reconfigure_eco2mix"]["description"]
    co2 = strings["options"]["step"]["co2"]
    assert "{perimeter}" in co2["description"]
    assert set(co2["data"]) == set(co2["data_description"]) == {"co2_meter"}
    assert "co2_national_only" in strings["options"]["error"]
