"""Config flow: source menu, demo step, uniqueness, reconfigure and options (also over HTTP)."""

from __future__ import annotations

from typing import Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.setup import async_setup_component
import pytest

from custom_components.meterlake.const import DOMAIN


async def test_user_menu_lists_sources(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == ["demo", "octopus", "tibber", "eco2mix", "composed"]


async def test_demo_creates_entry_with_default_options(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "demo"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "demo"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "MeterLake demo"
    assert result["data"] == {"source": "demo", "submeters": True}
    assert result["options"]["backfill_days"] == 365
    assert result["options"]["archive_root"] == "meterlake"
    assert result["options"]["gas_volume_correction"] == pytest.approx(1.02264)
    assert result["result"].unique_id == "demo"
    await hass.async_block_till_done()


async def test_second_demo_is_refused(hass: HomeAssistant, demo_entry: Any) -> None:
    demo_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "demo"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_demo_flow_over_http_api(hass: HomeAssistant, hass_client: Any) -> None:
    """The frontend's path: the schema must serialize, the menu and form must be reachable."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post(
        "/api/config/config_entries/flow", json={"handler": DOMAIN, "show_advanced_options": False}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["type"] == "menu"
    assert body["menu_options"] == ["demo", "octopus", "tibber", "eco2mix", "composed"]
    resp = await client.post(
        f"/api/config/config_entries/flow/{body['flow_id']}", json={"next_step_id": "demo"}
    )
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "demo"
    assert body["data_schema"] == []
    resp = await client.post(f"/api/config/config_entries/flow/{body['flow_id']}", json={})
    body = await resp.json()
    assert body["type"] == "create_entry"
    assert body["title"] == "MeterLake demo"
    await hass.async_block_till_done()
    assert hass.config_entries.async_entries(DOMAIN)[0].unique_id == "demo"


async def test_reconfigure_demo_reloads(hass: HomeAssistant, loaded_demo: Any) -> None:
    result = await loaded_demo.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_demo"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_demo.state is config_entries.ConfigEntryState.LOADED


VALID_OPTIONS = {
    "archive_root": "  unused-in-these-tests  ",
    "keep_raw_days": 7,
    "backfill_days": 30,
    "gas_calorific_value": 39.2,
    "gas_volume_correction": 1.02264,
    "standing_charge_in_cost": True,
}


async def test_options_saved_and_entry_reloaded(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Any
) -> None:
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    lake = tmp_path / "other-lake"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": f"  {lake}  "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_demo.options["archive_root"] == str(lake)
    assert lake.is_dir()
    assert loaded_demo.options["backfill_days"] == 30
    assert loaded_demo.options["gas_calorific_value"] == 39.2
    assert loaded_demo.state is config_entries.ConfigEntryState.LOADED


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("archive_root", "   ", "archive_root_empty"),
        ("gas_calorific_value", 11.2, "calorific_value_range"),
        ("gas_volume_correction", 1.5, "volume_correction_range"),
    ],
)
async def test_options_reject_impossible_values(
    hass: HomeAssistant, loaded_demo: Any, field: str, value: Any, error: str
) -> None:
    before = dict(loaded_demo.options)
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {field: value}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    assert dict(loaded_demo.options) == before


@pytest.mark.parametrize(("field", "value"), [("backfill_days", 0), ("keep_raw_days", 4000)])
async def test_options_schema_bounds_day_counts(
    hass: HomeAssistant, loaded_demo: Any, field: str, value: int
) -> None:
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], VALID_OPTIONS | {field: value}
        )


async def test_options_reject_an_unusable_archive(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Any
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": str(blocker / "lake")}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"archive_root": "archive_unreachable"}
    assert str(blocker) in result["description_placeholders"]["error"]


async def test_options_store_and_clear_object_store_credentials(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Any
) -> None:
    credentials = {
        "archive_endpoint": "http://127.0.0.1:9",
        "archive_access_key": "AKIAEXAMPLE",
        "archive_secret_key": "s3cr3t-value",
        "archive_region": "eu-west-2",
    }
    local = VALID_OPTIONS | {"archive_root": str(tmp_path / "lake")}
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], local | credentials
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert {k: loaded_demo.options[k] for k in credentials} == credentials
    # Leaving the fields empty removes them.
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], local)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert not set(credentials) & set(loaded_demo.options)


ANOMALY_SECTION = {
    "detectors": ["high_day", "spike", "no_data"],
    "high_day_factor": 2.5,
    "high_day_window_days": 14,
    "spike_sensitivity": 6.0,
    "base_load_factor": 2.0,
    "max_delay_hours": 12,
}


async def test_anomaly_settings_are_saved_from_the_options_form_over_http(
    hass: HomeAssistant, loaded_demo: Any, hass_client: Any
) -> None:
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post(
        "/api/config/config_entries/options/flow", json={"handler": loaded_demo.entry_id}
    )
    body = await resp.json()
    section = next(field for field in body["data_schema"] if field["name"] == "anomalies")
    assert section["type"] == "expandable"
    assert {field["name"] for field in section["schema"]} == set(ANOMALY_SECTION)
    resp = await client.post(
        f"/api/config/config_entries/options/flow/{body['flow_id']}",
        json=VALID_OPTIONS | {"anomalies": ANOMALY_SECTION},
    )
    body = await resp.json()
    assert body["type"] == "create_entry", body
    await hass.async_block_till_done()
    assert loaded_demo.options["anomalies"] == ANOMALY_SECTION


@pytest.mark.parametrize(
    "section",
    [
        ANOMALY_SECTION | {"detectors": ["spike", "teleportation"]},
        ANOMALY_SECTION | {"high_day_factor": 0.5},
        ANOMALY_SECTION | {"max_delay_hours": -1},
    ],
)
async def test_impossible_anomaly_settings_are_refused_by_the_form(
    hass: HomeAssistant, loaded_demo: Any, section: dict[str, Any]
) -> None:
    before = dict(loaded_demo.options)
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], VALID_OPTIONS | {"anomalies": section}
        )
    assert dict(loaded_demo.options) == before
