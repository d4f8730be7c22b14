"""Adding and changing meters from entities: the `entity` subentry flow as the user sees it.

The Composed meters entry is added from the config flow (it needs no other entry); the entities
whose readings become meters are plain states set in the test. Each meter is a subentry flow,
driven over the HTTP API the frontend uses and through the subentry flow manager. What is
asserted is what the user sees (forms, their fields and errors, abort reasons) and the saved
subentry's title and data, not the meters the entry computes from it.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.entity_meter_flow import (
    CADENCE_SELECTOR,
    KIND_SELECTOR,
    PLACEHOLDERS,
    PROFILE_SELECTOR,
    UNITS,
    EntityMeterFlow,
)
from custom_components.meterlake.lake import async_get_lake
from custom_components.meterlake.sources.base import MeterInfo
from custom_components.meterlake.sources.entity_meter import (
    CADENCES,
    KINDS,
    PROFILES,
    parse,
    target_unit,
)

from .conftest import settle, shown, subentry_id_of
from .test_subentry_flow import NoRows, _start_composed_flow

SUBENTRY_FLOW = "/api/config/config_entries/subentries/flow"
COMPONENT = Path(__file__).parents[1] / "custom_components" / "meterlake"

WATER_METER = "sensor.water_meter"
P1_ENERGY = "sensor.p1_energy"
GAS_READING = "input_number.gas_reading"
OUTDOOR = "sensor.outdoor_temperature"

GARDEN_WATER = {
    "name": "Garden water",
    "entity_id": WATER_METER,
    "kind": "water",
    "cadence_minutes": "1440",
}
GARDEN_WATER_DATA = {
    "name": "Garden water",
    "key": "entity_garden_water",
    "entity_id": WATER_METER,
    "kind": "water",
    "source_unit": "L",
    "unit": "m³",
    "cadence_minutes": 1440,
    "time_zone": "Europe/London",
    "profile": "linear",
    "temperature_entity": None,
    "max_gap_days": 31,
    "tolerance": 0.01,
    "rollover": None,
}
GAS_HAND = {
    "name": "Gas by hand",
    "entity_id": GAS_READING,
    "kind": "gas",
    "cadence_minutes": "1440",
}
# Every error text of the flow (the translation keys it can show).
ERRORS = {
    "entity_missing",
    "unit_unsupported",
    "name_taken",
    "name_invalid",
    "temperature_missing",
    "degree_days_kind",
    "max_gap_invalid",
    "tolerance_invalid",
    "rollover_invalid",
    "cadence_invalid",
    "profile_invalid",
    "kind_invalid",
    "definition_invalid",
    "unit_changed",
}


def _set_entities(hass: HomeAssistant) -> None:
    """A water meter reader in L, a P1 reader in Wh, a hand-typed gas reading, a thermometer."""
    hass.states.async_set(
        WATER_METER,
        "123456",
        {
            "unit_of_measurement": "L",
            "state_class": "total_increasing",
            "device_class": "water",
            "friendly_name": "Water meter",
        },
    )
    hass.states.async_set(
        P1_ENERGY,
        "9876543",
        {
            "unit_of_measurement": "Wh",
            "state_class": "total_increasing",
            "device_class": "energy",
            "friendly_name": "P1 energy",
        },
    )
    hass.states.async_set(
        GAS_READING,
        "4321.5",
        {"min": 0, "max": 99999, "step": 0.001, "mode": "box", "friendly_name": "Gas reading"},
    )
    hass.states.async_set(
        OUTDOOR,
        "7.5",
        {
            "unit_of_measurement": "°C",
            "device_class": "temperature",
            "state_class": "measurement",
            "friendly_name": "Outdoor temperature",
        },
    )


@pytest.fixture
async def composed(hass: HomeAssistant, tmp_path: Path) -> ConfigEntry[Any]:
    """The Composed meters entry, added from the config flow and loaded; the entities.

    Each saved subentry reloads the entry (its update listener); what is asserted here is the
    flows and the saved data, not the meters the entry computes (tests/test_entity_meter_entry.py).
    """
    hass.config.config_dir = str(tmp_path / "config")
    await hass.config.async_set_time_zone("Europe/London")
    _set_entities(hass)
    result = await _start_composed_flow(hass)
    assert result["type"] is FlowResultType.FORM
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry: ConfigEntry[Any] = result["result"]
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    await settle(hass)
    return entry


@pytest.fixture
async def client(hass: HomeAssistant, hass_client: Any) -> Any:
    """The HTTP API (and the websocket API, set up before the server starts)."""
    assert await async_setup_component(hass, "config", {})
    assert await async_setup_component(hass, "websocket_api", {})
    return await hass_client()


async def post(client: Any, url: str, data: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(url, json=data)
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def add(hass: HomeAssistant, entry: ConfigEntry[Any], *steps: dict[str, Any]) -> Any:
    """Open the `entity` form of the entry and submit each step; the last result."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "entity"), context={"source": SOURCE_USER}
    )
    for data in steps:
        assert result["type"] is FlowResultType.FORM, result
        result = await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    return result


async def reconfigure(
    hass: HomeAssistant, entry: ConfigEntry[Any], subentry_id: str, *steps: dict[str, Any]
) -> Any:
    """Open the reconfigure form of one meter and submit each step; the last result."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "entity"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    for data in steps:
        assert result["type"] is FlowResultType.FORM, result
        result = await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    return result


async def add_garden_water(hass: HomeAssistant, entry: ConfigEntry[Any]) -> str:
    """The water meter, saved with the defaults; its subentry id."""
    result = await add(hass, entry, GARDEN_WATER, {"profile": "linear"})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await settle(hass)
    return subentry_id_of(entry, "Garden water")


async def add_gas_by_hand(hass: HomeAssistant, entry: ConfigEntry[Any]) -> str:
    """The hand-typed gas reading in m³, spread linearly; its subentry id."""
    result = await add(hass, entry, GAS_HAND, {"source_unit": "m³"}, {"profile": "linear"})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await settle(hass)
    return subentry_id_of(entry, "Gas by hand")


def selector_config(result: Any, field: str) -> dict[str, Any]:
    (selector,) = [
        value for key, value in result["data_schema"].schema.items() if str(key) == field
    ]
    config: dict[str, Any] = selector.config
    return config


def strings(name: str = "strings.json") -> dict[str, Any]:
    text = (COMPONENT / name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def placeholders_of(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


# ------------------------------------------------------------------------------ adding


async def test_the_composed_entry_offers_meters_from_entities(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    assert composed.supported_subentry_types["entity"] == {"supports_reconfigure": True}
    other = MockConfigEntry(domain=DOMAIN, data={"source": "demo"})
    other.add_to_hass(hass)
    assert other.supported_subentry_types == {}


async def test_a_water_meter_is_added_over_the_http_api(
    hass: HomeAssistant, composed: ConfigEntry[Any], client: Any, hass_ws_client: Any
) -> None:
    body = await post(client, SUBENTRY_FLOW, {"handler": [composed.entry_id, "entity"]})
    assert body["type"] == "form"
    assert body["step_id"] == "user"
    fields = {field["name"]: field for field in body["data_schema"]}
    assert list(fields) == ["name", "entity_id", "kind", "cadence_minutes"]
    assert fields["entity_id"]["selector"]["entity"]["filter"] == [
        {"domain": ["sensor", "input_number", "number"]}
    ]
    assert fields["kind"]["selector"]["select"]["translation_key"] == KIND_SELECTOR
    assert fields["cadence_minutes"]["selector"]["select"]["options"] == ["60", "1440"]
    body = await post(client, f"{SUBENTRY_FLOW}/{body['flow_id']}", GARDEN_WATER)
    # It has a unit (L): no unit step.
    assert body["type"] == "form", body
    assert body["step_id"] == "spread"
    assert body["errors"] == {}
    assert body["description_placeholders"]["entity"] == "Water meter"
    fields = {field["name"]: field for field in body["data_schema"]}
    assert list(fields) == [
        "profile",
        "temperature_entity",
        "max_gap_days",
        "tolerance",
        "rollover",
    ]
    assert fields["max_gap_days"]["default"] == 31
    assert fields["tolerance"]["description"] == {"suggested_value": 0.01}
    assert fields["tolerance"]["selector"]["number"]["unit_of_measurement"] == "m³"
    assert fields["temperature_entity"]["selector"]["entity"]["filter"] == [
        {"domain": ["sensor"], "device_class": ["temperature"]}
    ]
    body = await post(client, f"{SUBENTRY_FLOW}/{body['flow_id']}", {"profile": "linear"})
    assert body["type"] == "create_entry", body
    assert body["title"] == "Garden water"
    await settle(hass)
    (subentry,) = composed.subentries.values()
    assert subentry.subentry_type == "entity"
    assert subentry.title == "Garden water"
    assert subentry.data == GARDEN_WATER_DATA
    # What was saved is a meter the source can compute.
    assert parse(subentry.data).unit == "m³"
    # The meter is listed among the entry's subentries, as the integration page shows them.
    ws = await hass_ws_client(hass)
    await ws.send_json(
        {"id": 1, "type": "config_entries/subentries/list", "entry_id": composed.entry_id}
    )
    response = await ws.receive_json()
    assert response["success"]
    assert response["result"] == [
        {
            "subentry_id": subentry.subentry_id,
            "subentry_type": "entity",
            "title": "Garden water",
            "unique_id": None,
        }
    ]


async def test_an_energy_sensor_in_wh_is_an_hourly_meter_in_kwh(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass,
        composed,
        {
            "name": "P1 house",
            "entity_id": P1_ENERGY,
            "kind": "electricity",
            "cadence_minutes": "60",
        },
        {"profile": "monthly", "max_gap_days": 7.0, "tolerance": 0.5, "rollover": 0},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["data"] == {
        "name": "P1 house",
        "key": "entity_p1_house",
        "entity_id": P1_ENERGY,
        "kind": "electricity",
        "source_unit": "Wh",
        "unit": "kWh",
        "cadence_minutes": 60,
        "time_zone": "Europe/London",
        "profile": "monthly",
        "temperature_entity": None,
        "max_gap_days": 7,
        "tolerance": 0.5,
        # 0: no rollover.
        "rollover": None,
    }
    assert isinstance(result["data"]["max_gap_days"], int)


async def test_an_input_number_without_a_unit_is_asked_its_unit(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, GAS_HAND)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "unit"
    assert result["description_placeholders"]["entity"] == "Gas reading"
    # The units of gas: volumes and kWh.
    assert selector_config(result, "source_unit")["options"] == list(UNITS["gas"])
    assert shown(result) == {"source_unit": "m³"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"source_unit": "ft³"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "spread"
    assert shown(result)["tolerance"] == 0.01
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "profile": "degree_days",
            "temperature_entity": OUTDOOR,
            "max_gap_days": 62,
            "rollover": 100000,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["title"] == "Gas by hand"
    await settle(hass)
    subentry = composed.subentries[subentry_id_of(composed, "Gas by hand")]
    assert subentry.data == {
        "name": "Gas by hand",
        "key": "entity_gas_by_hand",
        "entity_id": GAS_READING,
        "kind": "gas",
        "source_unit": "ft³",
        "unit": "m³",
        "cadence_minutes": 1440,
        "time_zone": "Europe/London",
        "profile": "degree_days",
        "temperature_entity": OUTDOOR,
        "max_gap_days": 62,
        "tolerance": 0.01,
        "rollover": 100000.0,
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_the_unit_step_offers_the_units_of_the_kind(
    hass: HomeAssistant, composed: ConfigEntry[Any], kind: str
) -> None:
    result = await add(hass, composed, {**GAS_HAND, "kind": kind})
    assert result["step_id"] == "unit"
    offered = selector_config(result, "source_unit")["options"]
    assert offered == list(UNITS[kind])
    # Each of them is a unit of the kind.
    assert {target_unit(kind, unit) for unit in offered} <= {"kWh", "m³"}


# ------------------------------------------------------------------------------ errors


async def test_an_entity_that_does_not_exist_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any], client: Any
) -> None:
    body = await post(client, SUBENTRY_FLOW, {"handler": [composed.entry_id, "entity"]})
    body = await post(
        client,
        f"{SUBENTRY_FLOW}/{body['flow_id']}",
        {**GARDEN_WATER, "entity_id": "sensor.not_there"},
    )
    assert body["type"] == "form"
    assert body["step_id"] == "user"
    assert body["errors"] == {"entity_id": "entity_missing"}
    assert body["description_placeholders"]["entity"] == "sensor.not_there"
    # The answers are shown again.
    fields = {field["name"]: field.get("default") for field in body["data_schema"]}
    assert fields == {**GARDEN_WATER, "entity_id": "sensor.not_there"}
    assert composed.subentries == {}


async def test_a_unit_that_is_not_of_the_kind_is_refused_with_what_and_why(
    hass: HomeAssistant, composed: ConfigEntry[Any], client: Any
) -> None:
    body = await post(client, SUBENTRY_FLOW, {"handler": [composed.entry_id, "entity"]})
    body = await post(
        client,
        f"{SUBENTRY_FLOW}/{body['flow_id']}",
        {"name": "Tap", "entity_id": P1_ENERGY, "kind": "water", "cadence_minutes": "60"},
    )
    assert body["type"] == "form"
    assert body["step_id"] == "user"
    assert body["errors"] == {"base": "unit_unsupported"}
    placeholders = body["description_placeholders"]
    assert (placeholders["entity"], placeholders["unit"], placeholders["kind"]) == (
        "P1 energy",
        "Wh",
        "water",
    )
    # Every placeholder of the error text is filled.
    text = strings()["config_subentries"]["entity"]["error"]["unit_unsupported"]
    assert placeholders_of(text) <= {k for k, v in placeholders.items() if v}


async def test_a_name_already_taken_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    await add_garden_water(hass, composed)
    result = await add(hass, composed, {**GARDEN_WATER, "entity_id": P1_ENERGY, "kind": "heat"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"name": "name_taken"}
    assert len(composed.subentries) == 1


async def test_a_name_of_a_meter_in_the_lake_is_taken(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    owner = MockConfigEntry(domain=DOMAIN, title="Elsewhere", data={"source": "water"})
    meter = MeterInfo(
        key="entity_cellar", supplier="entity", kind="water", unit="m³", name="Cellar"
    )
    async_get_lake(hass).register(owner.entry_id, owner.title, [meter], NoRows())
    result = await add(hass, composed, {**GARDEN_WATER, "name": "Cellar"})
    assert result["errors"] == {"name": "name_taken"}


async def test_a_name_without_letters_or_digits_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, {**GARDEN_WATER, "name": " !? "})
    assert result["errors"] == {"name": "name_invalid"}


async def test_a_name_taken_while_the_flow_was_open_asks_for_another(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    first = await add(hass, composed, GARDEN_WATER)
    assert first["step_id"] == "spread"
    await add_garden_water(hass, composed)
    result = await hass.config_entries.subentries.async_configure(
        first["flow_id"], {"profile": "linear"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"name": "name_taken"}
    assert shown(result) == GARDEN_WATER
    result = await hass.config_entries.subentries.async_configure(
        first["flow_id"], {**GARDEN_WATER, "name": "Garden water 2"}
    )
    assert result["step_id"] == "spread"
    result = await hass.config_entries.subentries.async_configure(
        first["flow_id"], {"profile": "linear"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["key"] == "entity_garden_water_2"


async def test_degree_days_need_a_temperature_sensor(
    hass: HomeAssistant, composed: ConfigEntry[Any], client: Any
) -> None:
    body = await post(client, SUBENTRY_FLOW, {"handler": [composed.entry_id, "entity"]})
    body = await post(client, f"{SUBENTRY_FLOW}/{body['flow_id']}", GAS_HAND)
    assert body["step_id"] == "unit"
    body = await post(client, f"{SUBENTRY_FLOW}/{body['flow_id']}", {"source_unit": "m³"})
    assert body["step_id"] == "spread"
    body = await post(client, f"{SUBENTRY_FLOW}/{body['flow_id']}", {"profile": "degree_days"})
    assert body["type"] == "form"
    assert body["step_id"] == "spread"
    assert body["errors"] == {"base": "temperature_missing"}
    # The answer is kept: add the sensor and it is saved.
    fields = {field["name"]: field.get("default") for field in body["data_schema"]}
    assert fields["profile"] == "degree_days"
    body = await post(
        client,
        f"{SUBENTRY_FLOW}/{body['flow_id']}",
        {"profile": "degree_days", "temperature_entity": OUTDOOR},
    )
    assert body["type"] == "create_entry", body


async def test_degree_days_are_for_gas_and_heat_only(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass, composed, GARDEN_WATER, {"profile": "degree_days", "temperature_entity": OUTDOOR}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "spread"
    assert result["errors"] == {"base": "degree_days_kind"}
    assert composed.subentries == {}


# ------------------------------------------------------------------------------ reconfiguring


async def test_reconfiguring_keeps_the_key_and_changes_the_profile(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    subentry_id = await add_gas_by_hand(hass, composed)
    result = await reconfigure(hass, composed, subentry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    # No name: it is the meter's key. The rest as saved.
    assert shown(result) == {
        "entity_id": GAS_READING,
        "kind": "gas",
        "cadence_minutes": "1440",
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"entity_id": GAS_READING, "kind": "gas", "cadence_minutes": "60"}
    )
    assert result["step_id"] == "unit"
    assert shown(result) == {"source_unit": "m³"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"source_unit": "m³"}
    )
    assert result["step_id"] == "spread"
    assert shown(result) == {
        "profile": "linear",
        "temperature_entity": None,
        "max_gap_days": 31,
        "tolerance": 0.01,
        "rollover": None,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"profile": "monthly", "max_gap_days": 45, "tolerance": 0.05}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await settle(hass)
    subentry = composed.subentries[subentry_id]
    assert subentry.title == "Gas by hand"
    assert subentry.data["key"] == "entity_gas_by_hand"
    assert subentry.data["profile"] == "monthly"
    assert subentry.data["cadence_minutes"] == 60
    assert subentry.data["max_gap_days"] == 45
    assert subentry.data["tolerance"] == 0.05


async def test_reconfiguring_onto_another_entity_of_the_same_unit_is_saved(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    """A new reader of the same meter in m³: the name, key and zone stay."""
    hass.states.async_set(
        "sensor.new_water_reader",
        "124",
        {"unit_of_measurement": "m³", "state_class": "total_increasing"},
    )
    subentry_id = await add_garden_water(hass, composed)
    result = await reconfigure(
        hass,
        composed,
        subentry_id,
        {"entity_id": "sensor.new_water_reader", "kind": "water", "cadence_minutes": "1440"},
        {"profile": "linear", "rollover": 1000},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert composed.subentries[subentry_id].data == GARDEN_WATER_DATA | {
        "entity_id": "sensor.new_water_reader",
        "source_unit": "m³",
        "rollover": 1000.0,
    }


async def test_optional_fields_emptied_on_reconfiguring_are_saved_empty(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    """The rollover cleared: no rollover; the tolerance cleared: the default of the unit."""
    result = await add(hass, composed, GARDEN_WATER, {"profile": "linear", "rollover": 100000})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry_id = subentry_id_of(composed, "Garden water")
    result = await reconfigure(
        hass,
        composed,
        subentry_id,
        {"entity_id": WATER_METER, "kind": "water", "cadence_minutes": "1440"},
    )
    assert shown(result)["rollover"] == 100000
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"profile": "degree_days", "temperature_entity": OUTDOOR}
    )
    assert result["errors"] == {"base": "degree_days_kind"}
    # Shown as submitted: the emptied fields stay empty.
    assert shown(result) == {
        "profile": "degree_days",
        "temperature_entity": OUTDOOR,
        "max_gap_days": 31,
        "tolerance": None,
        "rollover": None,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"profile": "linear"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert composed.subentries[subentry_id].data == GARDEN_WATER_DATA


async def test_reconfiguring_into_another_unit_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    """Its statistics are in m³: a meter in kWh would change them under the user's feet."""
    subentry_id = await add_garden_water(hass, composed)
    result = await reconfigure(
        hass,
        composed,
        subentry_id,
        {"entity_id": P1_ENERGY, "kind": "electricity", "cadence_minutes": "1440"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "unit_changed"}
    assert result["description_placeholders"]["unit"] == "m³"
    assert result["description_placeholders"]["to"] == "kWh"
    assert composed.subentries[subentry_id].data == GARDEN_WATER_DATA


async def test_reconfiguring_a_hand_reading_into_another_unit_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    """Gas read in m³, then said to be in kWh: refused on the unit step."""
    subentry_id = await add_gas_by_hand(hass, composed)
    result = await reconfigure(
        hass,
        composed,
        subentry_id,
        {"entity_id": GAS_READING, "kind": "gas", "cadence_minutes": "1440"},
        {"source_unit": "kWh"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "unit"
    assert result["errors"] == {"base": "unit_changed"}
    assert (
        result["description_placeholders"]["unit"],
        result["description_placeholders"]["to"],
    ) == ("m³", "kWh")
    assert shown(result) == {"source_unit": "kWh"}
    assert composed.subentries[subentry_id].data["source_unit"] == "m³"


# ------------------------------------------------------------------------------ strings


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_every_text_of_the_flow_is_translated(name: str) -> None:
    translated = strings(name)
    assert translated == strings()
    flow = translated["config_subentries"]["entity"]
    assert set(flow["initiate_flow"]) == {"user", "reconfigure"}
    assert flow["entry_type"]
    assert set(flow["error"]) == ERRORS
    assert set(flow["abort"]) == {"reconfigure_successful"}
    fields = {
        "user": {"name", "entity_id", "kind", "cadence_minutes"},
        "unit": {"source_unit"},
        "spread": {"profile", "temperature_entity", "max_gap_days", "tolerance", "rollover"},
    }
    for step_id, names in fields.items():
        step = flow["step"][step_id]
        assert step["title"] and step["description"]
        assert set(step["data"]) == set(step["data_description"]) == names
    # The placeholders its texts use are the ones the flow fills.
    texts = [*flow["error"].values()] + [step["description"] for step in flow["step"].values()]
    assert set().union(*map(placeholders_of, texts)) <= set(PLACEHOLDERS)
    selectors = translated["selector"]
    assert set(selectors[KIND_SELECTOR]["options"]) == set(KINDS)
    assert set(selectors[CADENCE_SELECTOR]["options"]) == {str(c) for c in CADENCES}
    assert set(selectors[PROFILE_SELECTOR]["options"]) == set(PROFILES)
    text = json.dumps([flow, selectors], ensure_ascii=False)
    assert "<" not in text
    assert ">" not in text


def test_the_flow_is_the_entity_subentry_flow() -> None:
    from custom_components.meterlake.config_flow import MeterLakeConfigFlow

    entry = MockConfigEntry(domain=DOMAIN, data={"source": "composed"})
    types = MeterLakeConfigFlow.async_get_supported_subentry_types(entry)
    assert types["entity"] is EntityMeterFlow
    assert set(types) == {"virtual", "master", "preferred", "entity", "file"}
