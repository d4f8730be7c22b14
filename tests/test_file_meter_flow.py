"""Adding and changing file meters: the subentry flow of the Composed meters entry.

A file meter is a name, a kind, a unit and an interval length; its rows come from
`meterlake.import_file`. Asserted: the saved data, form errors and abort reasons, over the HTTP
API the frontend uses and through the subentry flow manager.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN

from .conftest import settle, subentry_id_of

SUBENTRY_FLOW = "/api/config/config_entries/subentries/flow"
OLD_HOUSE = {"name": "Old house", "kind": "electricity", "unit": "kWh", "cadence_minutes": "30"}


@pytest.fixture
async def composed(hass: HomeAssistant, tmp_path: Path) -> ConfigEntry[Any]:
    """The Composed meters entry, loaded, without meters."""
    hass.config.config_dir = str(tmp_path / "config")
    await hass.config.async_set_time_zone("Europe/London")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Composed meters",
        data={"source": "composed"},
        options=default_options() | {"archive_root": str(tmp_path / "lake")},
        unique_id="composed",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    return entry


async def add(hass: HomeAssistant, entry: ConfigEntry[Any], data: dict[str, Any]) -> Any:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "file"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    await settle(hass)
    return result


async def test_a_file_meter_is_added_over_the_http_api(
    hass: HomeAssistant, composed: ConfigEntry[Any], hass_client: Any
) -> None:
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post(SUBENTRY_FLOW, json={"handler": [composed.entry_id, "file"]})
    body = await resp.json()
    assert body["step_id"] == "user"
    resp = await client.post(f"{SUBENTRY_FLOW}/{body['flow_id']}", json=OLD_HOUSE)
    body = await resp.json()
    assert body["type"] == "create_entry", body
    await settle(hass)
    subentry = composed.subentries[subentry_id_of(composed, "Old house")]
    assert dict(subentry.data) == {
        "name": "Old house",
        "key": "file_old_house",
        "kind": "electricity",
        "unit": "kWh",
        "cadence_minutes": 30,
        "time_zone": "Europe/London",
    }


async def test_a_taken_name_is_refused(hass: HomeAssistant, composed: ConfigEntry[Any]) -> None:
    await add(hass, composed, OLD_HOUSE)
    result = await add(hass, composed, OLD_HOUSE)
    assert result["errors"] == {"name": "name_taken"}


async def test_a_name_without_letters_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, OLD_HOUSE | {"name": "***"})
    assert result["errors"] == {"name": "name_invalid"}


async def test_a_unit_of_another_kind_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, OLD_HOUSE | {"kind": "water", "unit": "kWh"})
    assert result["errors"] == {"base": "unit_unsupported"}
    assert result["description_placeholders"] == {"unit": "kWh", "kind": "water"}


async def reconfigure(
    hass: HomeAssistant, entry: ConfigEntry[Any], subentry_id: str, data: dict[str, Any]
) -> Any:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "file"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    await settle(hass)
    return result


async def test_reconfiguring_changes_the_cadence_and_keeps_the_key(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    await add(hass, composed, OLD_HOUSE)
    subentry_id = subentry_id_of(composed, "Old house")
    result = await reconfigure(
        hass, composed, subentry_id, {"kind": "electricity", "unit": "kWh", "cadence_minutes": "60"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    data = composed.subentries[subentry_id].data
    assert (data["key"], data["cadence_minutes"]) == ("file_old_house", 60)


async def test_reconfiguring_into_another_unit_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    await add(hass, composed, OLD_HOUSE)
    subentry_id = subentry_id_of(composed, "Old house")
    result = await reconfigure(
        hass, composed, subentry_id, {"kind": "gas", "unit": "m³", "cadence_minutes": "30"}
    )
    assert result["errors"] == {"base": "unit_changed"}
    assert composed.subentries[subentry_id].data["unit"] == "kWh"


VALID_FILE_METER = {
    "name": "Old house",
    "key": "file_old_house",
    "kind": "electricity",
    "unit": "kWh",
    "cadence_minutes": 30,
    "time_zone": "Europe/London",
}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"name": "Only a name"}, "definition_invalid"),
        (VALID_FILE_METER | {"key": "composed_x"}, "definition_invalid"),
        (VALID_FILE_METER | {"kind": "plutonium"}, "kind_invalid"),
        (VALID_FILE_METER | {"cadence_minutes": 7}, "cadence_invalid"),
    ],
)
def test_hand_edited_file_meters_are_refused_with_a_reason(
    data: dict[str, Any], reason: str
) -> None:
    from custom_components.meterlake.sources.composed import DefinitionError
    from custom_components.meterlake.sources.file_meter import parse

    with pytest.raises(DefinitionError) as raised:
        parse(data)
    assert raised.value.reason == reason
