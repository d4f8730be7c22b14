"""Adding and changing composed meters: the subentry flows as the user sees them.

The demo household (with its sub-meters) is loaded; the Composed meters entry is added from the
config flow; each composed meter is a subentry flow, driven through the subentry flow manager and,
for the error paths of each kind, over the HTTP API the frontend uses. What is asserted is what
the user sees: form errors (by field, or `base`), the created subentry's title and data, abort
reasons and the entry's state.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownHandler
from homeassistant.setup import async_setup_component
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.meterlake.config_flow import ComposedOptionsFlow, default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.lake import async_get_lake
from custom_components.meterlake.sources import demo
from custom_components.meterlake.sources.base import MeterInfo

from .conftest import load_household, settle, shown, subentry_id_of

GAS_FIGURES = {"calorific_value": 39.5, "volume_correction": 1.02264}
EVERYTHING_ELSE = {
    "name": "Everything else",
    "base": demo.ELECTRICITY,
    "add": [],
    "subtract": [demo.HEAT_PUMP, demo.EV_CHARGER],
}
# What every composed meter on the demo's electricity inherits from its first input.
ELECTRICITY_DESCRIPTION = {
    "unit": "kWh",
    "kind": "electricity",
    "cadence_minutes": 30,
    "time_zone": "Europe/London",
    "currency": "GBP",
    **GAS_FIGURES,
}
SUBENTRY_FLOW = "/api/config/config_entries/subentries/flow"


@pytest.fixture
async def household(hass: HomeAssistant, freezer: Any, tmp_path: Path) -> MockConfigEntry:
    """The demo with its sub-meters (two days of history), loaded: the inputs to choose from."""
    return await load_household(hass, freezer, tmp_path, backfill_days=2)


async def _start_composed_flow(hass: HomeAssistant) -> dict[str, Any]:
    """The add-source menu, then its Composed meters item."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert "composed" in result["menu_options"]
    return dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "composed"}
        )
    )


@pytest.fixture
async def composed(hass: HomeAssistant, household: MockConfigEntry) -> ConfigEntry[Any]:
    """The Composed meters entry, added from the config flow, loaded without any meter."""
    result = await _start_composed_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "composed"
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Composed meters"
    assert result["data"] == {"source": "composed"}
    entry: ConfigEntry[Any] = result["result"]
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    return entry


class Ui:
    """The subentry flows as the frontend drives them, over Home Assistant's HTTP API."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def post(self, url: str, data: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client.post(url, json=data)
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body

    async def subentry(self, entry_id: str, kind: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """Open the `kind` form of the entry and submit each step; the last answer."""
        body = await self.post(SUBENTRY_FLOW, {"handler": [entry_id, kind]})
        for data in steps:
            assert body["type"] == "form", body
            body = await self.post(f"{SUBENTRY_FLOW}/{body['flow_id']}", data)
        return body


@pytest.fixture
async def ui(hass: HomeAssistant, hass_client: Any) -> Ui:
    assert await async_setup_component(hass, "config", {})
    return Ui(await hass_client())


async def add(
    hass: HomeAssistant, entry: ConfigEntry[Any], kind: str, *steps: dict[str, Any]
) -> dict[str, Any]:
    """Open the `kind` form of the entry and submit each step; the last result."""
    result = dict(
        await hass.config_entries.subentries.async_init(
            (entry.entry_id, kind), context={"source": SOURCE_USER}
        )
    )
    for data in steps:
        assert result["type"] is FlowResultType.FORM, result
        result = dict(await hass.config_entries.subentries.async_configure(result["flow_id"], data))
    return result


async def reconfigure(hass: HomeAssistant, entry: ConfigEntry[Any], subentry_id: str) -> Any:
    """Open the reconfigure form of one composed meter."""
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, entry.subentries[subentry_id].subentry_type),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )


async def add_everything_else(hass: HomeAssistant, entry: ConfigEntry[Any]) -> str:
    """The virtual meter house - heat pump - EV charger, saved and loaded; its subentry id."""
    result = await add(hass, entry, "virtual", EVERYTHING_ELSE)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await settle(hass)
    return subentry_id_of(entry, "Everything else")


def choices(result: Any, field: str) -> dict[str, str]:
    """The options a select field offers: value -> label."""
    schema = result["data_schema"].schema
    (selector,) = [value for key, value in schema.items() if str(key) == field]
    return {option["value"]: option["label"] for option in selector.config["options"]}


class NoRows:
    """A row provider with nothing stored: enough to offer a meter in the lake."""

    async def async_stored_rows(
        self, meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        return None

    def watermark(self, meter_key: str) -> datetime | None:
        return None


WATER = MeterInfo(key="garden_water", supplier="water", kind="water", unit="L", name="Garden tap")


def offer_water_meter(hass: HomeAssistant) -> MockConfigEntry:
    """A water meter in litres, offered in the lake by another entry (rows: a stub); its entry."""
    owner = MockConfigEntry(domain=DOMAIN, title="Garden water", data={"source": "water"})
    async_get_lake(hass).register(owner.entry_id, owner.title, [WATER], NoRows())
    return owner


# ------------------------------------------------------------------------------ the entry


async def test_the_composed_entry_is_one_per_installation(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await _start_composed_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 2


async def test_reconfiguring_the_composed_entry_confirms_and_reloads(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    before = composed.runtime_data.coordinator
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": composed.entry_id}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_composed"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await settle(hass)
    assert composed.state is ConfigEntryState.LOADED
    assert composed.runtime_data.coordinator is not before


async def test_saving_the_composed_entry_options_reloads_it(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    before = composed.runtime_data.coordinator
    result = await hass.config_entries.options.async_init(composed.entry_id)
    assert result["type"] is FlowResultType.FORM
    flow = hass.config_entries.options._progress[result["flow_id"]]
    assert isinstance(flow, ComposedOptionsFlow)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"backfill_days": 30}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    assert composed.options["backfill_days"] == 30
    assert composed.state is ConfigEntryState.LOADED
    assert composed.runtime_data.coordinator is not before


async def test_only_the_composed_entry_has_meter_types(
    hass: HomeAssistant, household: MockConfigEntry, composed: ConfigEntry[Any], ui: Ui
) -> None:
    assert set(composed.supported_subentry_types) == {
        "virtual",
        "master",
        "preferred",
        "entity",
        "file",
    }
    assert all(kind["supports_reconfigure"] for kind in composed.supported_subentry_types.values())
    assert household.supported_subentry_types == {}
    with pytest.raises(UnknownHandler):
        await hass.config_entries.subentries.async_init(
            (household.entry_id, "virtual"), context={"source": SOURCE_USER}
        )
    resp = await ui.client.post(SUBENTRY_FLOW, json={"handler": [household.entry_id, "virtual"]})
    assert resp.status == 404


# ------------------------------------------------------------------------------ virtual


async def test_a_virtual_meter_is_created_with_its_inputs_and_inherited_description(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, "virtual")
    assert result["step_id"] == "virtual"
    offered = choices(result, "base")
    assert offered[demo.HEAT_PUMP] == "Demo heat pump (kWh, MeterLake demo)"
    assert offered[demo.GAS] == "Demo gas (m³, MeterLake demo)"
    assert shown(result) == {"name": "", "add": [], "subtract": [], **GAS_FIGURES, "base": None}
    result = dict(
        await hass.config_entries.subentries.async_configure(result["flow_id"], EVERYTHING_ELSE)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Everything else"
    assert result["data"] == {
        **EVERYTHING_ELSE,
        "key": "composed_everything_else",
        **ELECTRICITY_DESCRIPTION,
    }
    await settle(hass)
    (subentry,) = composed.subentries.values()
    assert (subentry.subentry_type, subentry.title) == ("virtual", "Everything else")
    assert composed.state is ConfigEntryState.LOADED
    assert async_get_lake(hass).get("composed_everything_else") is not None


async def test_a_virtual_meter_name_already_taken_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui
) -> None:
    await add_everything_else(hass, composed)
    # Another spelling of the same name makes the same meter key.
    body = await ui.subentry(
        composed.entry_id,
        "virtual",
        {"name": "everything-else!", "base": demo.GAS, "subtract": [demo.BOILER], **GAS_FIGURES},
    )
    assert body["type"] == "form"
    assert body["step_id"] == "virtual"
    assert body["errors"] == {"name": "name_taken"}
    assert len(composed.subentries) == 1


async def test_a_virtual_meter_name_without_letters_or_digits_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui
) -> None:
    body = await ui.subentry(
        composed.entry_id, "virtual", {**EVERYTHING_ELSE, "name": " -- ", **GAS_FIGURES}
    )
    assert body["type"] == "form"
    assert body["errors"] == {"base": "name_invalid"}
    assert not composed.subentries


@pytest.mark.parametrize(
    ("add_", "subtract"),
    [
        ([demo.HEAT_PUMP], [demo.HEAT_PUMP]),
        ([], [demo.ELECTRICITY]),
        ([], [demo.HEAT_PUMP, demo.HEAT_PUMP]),
    ],
    ids=["added-and-subtracted", "base-subtracted", "subtracted-twice"],
)
async def test_a_meter_used_twice_in_a_virtual_meter_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui, add_: list[str], subtract: list[str]
) -> None:
    body = await ui.subentry(
        composed.entry_id,
        "virtual",
        {"name": "Twice", "base": demo.ELECTRICITY, "add": add_, "subtract": subtract},
    )
    assert body["type"] == "form"
    assert body["errors"] == {"base": "input_twice"}
    # Shown again as typed.
    fields = {field["name"]: field for field in body["data_schema"]}
    assert fields["name"]["default"] == "Twice"
    assert fields["subtract"]["default"] == subtract


async def test_units_that_cannot_convert_are_refused_with_what_and_why(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui
) -> None:
    offer_water_meter(hass)
    body = await ui.subentry(
        composed.entry_id,
        "virtual",
        {"name": "Dry house", "base": demo.ELECTRICITY, "subtract": ["garden_water"]},
    )
    assert body["type"] == "form"
    assert body["errors"] == {"base": "units"}
    assert body["description_placeholders"] == {
        "input": "Garden tap",
        "unit": "L",
        "to": "kWh",
        "meter": "",
    }
    assert not composed.subentries


@pytest.mark.parametrize(
    ("kind", "steps"),
    [
        ("virtual", [{"name": "Water", "base": WATER.key}]),
        ("preferred", [{"name": "Water", "inputs": [WATER.key]}]),
        ("master", [{"name": "Water"}, {"meters": [WATER.key], "another": False}]),
    ],
)
async def test_a_first_input_gone_before_submitting_is_reported_missing(
    hass: HomeAssistant, composed: ConfigEntry[Any], kind: str, steps: list[dict[str, Any]]
) -> None:
    """Its entry unloads while the form is open: the input is missing, the name is fine."""
    owner = offer_water_meter(hass)
    result = await add(hass, composed, kind, *steps[:-1])
    field = {"virtual": "base", "preferred": "inputs", "master": "meters"}[kind]
    assert WATER.key in choices(result, field)
    async_get_lake(hass).unregister(owner.entry_id)
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], steps[-1])
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "input_missing"}
    assert not composed.subentries


async def test_a_virtual_meter_that_would_depend_on_itself_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, "virtual", {"name": "B", "base": demo.ELECTRICITY})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    result = await add(
        hass, composed, "virtual", {"name": "A", "base": "composed_b", "subtract": [demo.HEAT_PUMP]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    b = subentry_id_of(composed, "B")
    result = await reconfigure(hass, composed, b)
    assert "composed_b" not in choices(result, "base")  # never itself
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"base": "composed_a"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cycle"}
    assert composed.subentries[b].data["base"] == demo.ELECTRICITY


async def test_a_composed_meter_not_loaded_is_still_offered_as_an_input(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    await add_everything_else(hass, composed)
    assert await hass.config_entries.async_unload(composed.entry_id)
    await settle(hass)
    result = await add(hass, composed, "virtual")
    assert choices(result, "base")["composed_everything_else"] == (
        "Everything else (kWh, Composed meters)"
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "Rest", "base": "composed_everything_else", "subtract": [demo.SMART_METER]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["base"] == "composed_everything_else"


async def test_reconfiguring_a_virtual_meter_keeps_its_key_and_changes_its_inputs(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    subentry_id = await add_everything_else(hass, composed)
    before = composed.runtime_data.coordinator
    result = await reconfigure(hass, composed, subentry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "virtual"
    # No name: it is the meter's key. The inputs as saved.
    assert shown(result) == {
        "base": demo.ELECTRICITY,
        "add": [],
        "subtract": [demo.HEAT_PUMP, demo.EV_CHARGER],
        **GAS_FIGURES,
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"base": demo.ELECTRICITY, "subtract": [demo.HEAT_PUMP]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await settle(hass)
    subentry = composed.subentries[subentry_id]
    assert subentry.title == "Everything else"
    assert subentry.data == {
        **EVERYTHING_ELSE,
        "subtract": [demo.HEAT_PUMP],
        "key": "composed_everything_else",
        **ELECTRICITY_DESCRIPTION,
    }
    assert composed.state is ConfigEntryState.LOADED
    assert composed.runtime_data.coordinator is not before


async def test_reconfiguring_a_meter_into_another_unit_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    """Its statistics are in kWh: a base in m³ would change them under the user's feet."""
    subentry_id = await add_everything_else(hass, composed)
    result = await reconfigure(hass, composed, subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"base": demo.GAS, "subtract": []}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unit_changed"}
    assert result["description_placeholders"]["unit"] == "kWh"
    assert result["description_placeholders"]["to"] == "m³"
    assert composed.subentries[subentry_id].data["base"] == demo.ELECTRICITY


async def test_a_name_in_any_script_gets_a_transliterated_key(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass,
        composed,
        "virtual",
        {"name": "Ölheizung", "base": demo.GAS, "subtract": [demo.BOILER], **GAS_FIGURES},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["key"] == "composed_olheizung"
    assert result["title"] == "Ölheizung"
    await settle(hass)


# ------------------------------------------------------------------------------ preferred


async def test_a_preferred_meter_is_created_with_its_inputs_in_order(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass,
        composed,
        "preferred",
        {"name": "Best guess", "inputs": [demo.EV_CHARGER, demo.HEAT_PUMP]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Best guess"
    assert result["data"] == {
        "name": "Best guess",
        "key": "composed_best_guess",
        "inputs": [demo.EV_CHARGER, demo.HEAT_PUMP],
        **ELECTRICITY_DESCRIPTION,
        # The sub-meters have no tariff.
        "currency": None,
    }
    await settle(hass)
    assert composed.state is ConfigEntryState.LOADED


async def test_a_preferred_meter_without_inputs_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui
) -> None:
    body = await ui.subentry(composed.entry_id, "preferred", {"name": "Nothing", "inputs": []})
    assert body["type"] == "form"
    assert body["step_id"] == "preferred"
    assert body["errors"] == {"base": "no_inputs"}
    assert not composed.subentries


# ------------------------------------------------------------------------------ master

REGISTERS = {"meters": [demo.DAY_REGISTER, demo.NIGHT_REGISTER], "until": "2026-11-15"}


async def test_a_master_meter_is_created_from_its_periods(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(hass, composed, "master", {"name": "House meter", "reading_offset": 1000})
    assert result["step_id"] == "period"
    assert result["description_placeholders"] == {"number": "1"}
    result = dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**REGISTERS, "another": True}
        )
    )
    assert result["step_id"] == "period"
    assert result["description_placeholders"] == {"number": "2"}
    result = dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"meters": [demo.SMART_METER], "another": False}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "House meter"
    assert result["data"] == {
        "name": "House meter",
        "key": "composed_house_meter",
        "periods": [REGISTERS, {"meters": [demo.SMART_METER], "until": None}],
        "reading_offset": 1000.0,
        **ELECTRICITY_DESCRIPTION,
        "currency": None,
    }
    await settle(hass)
    assert composed.state is ConfigEntryState.LOADED


async def test_a_master_period_without_meters_is_refused(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui
) -> None:
    body = await ui.subentry(
        composed.entry_id,
        "master",
        {"name": "House meter", "reading_offset": 0},
        {"meters": [], "until": "2026-11-15", "another": True},
    )
    assert body["type"] == "form"
    assert body["step_id"] == "period"
    assert body["errors"] == {"meters": "empty_period"}


async def test_a_master_period_must_end_after_the_previous_one(
    hass: HomeAssistant, composed: ConfigEntry[Any], ui: Ui
) -> None:
    body = await ui.subentry(
        composed.entry_id,
        "master",
        {"name": "House meter", "reading_offset": 0},
        {**REGISTERS, "another": True},
        {"meters": [demo.SMART_METER], "until": "2026-11-15", "another": False},
    )
    assert body["type"] == "form"
    assert body["errors"] == {"until": "periods_overlap"}
    assert body["description_placeholders"] == {"number": "2"}


async def test_only_the_last_master_period_may_be_open_ended(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass,
        composed,
        "master",
        {"name": "House meter"},
        {"meters": [demo.DAY_REGISTER], "another": True},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"until": "open_period_not_last"}
    assert result["description_placeholders"] == {"number": "1"}


async def test_a_master_meter_name_without_letters_shows_the_first_form_again(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass,
        composed,
        "master",
        {"name": "***", "reading_offset": 5},
        {"meters": [demo.SMART_METER], "another": False},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "master"
    assert result["errors"] == {"base": "name_invalid"}
    assert shown(result) == {"name": "***", "reading_offset": 5.0}
    # The periods are asked again from the first.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "House meter", "reading_offset": 5}
    )
    assert result["description_placeholders"] == {"number": "1"}


async def test_reconfiguring_a_master_meter_walks_its_periods_prefilled(
    hass: HomeAssistant, composed: ConfigEntry[Any]
) -> None:
    result = await add(
        hass,
        composed,
        "master",
        {"name": "House meter", "reading_offset": 1000},
        {**REGISTERS, "another": True},
        {"meters": [demo.SMART_METER], "another": False},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
    subentry_id = subentry_id_of(composed, "House meter")
    result = await reconfigure(hass, composed, subentry_id)
    assert result["step_id"] == "master"
    assert shown(result) == {"reading_offset": 1000.0}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"reading_offset": 1250}
    )
    assert result["step_id"] == "period"
    assert shown(result) == {**REGISTERS, "another": True}
    # The replacement was a day later than first entered.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**REGISTERS, "until": "2026-11-16", "another": True}
    )
    assert result["description_placeholders"] == {"number": "2"}
    assert shown(result) == {"meters": [demo.SMART_METER], "until": None, "another": False}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"meters": [demo.SMART_METER], "another": False}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await settle(hass)
    data = composed.subentries[subentry_id].data
    assert data["key"] == "composed_house_meter"
    assert data["reading_offset"] == 1250.0
    assert data["periods"] == [
        {**REGISTERS, "until": "2026-11-16"},
        {"meters": [demo.SMART_METER], "until": None},
    ]
    assert composed.state is ConfigEntryState.LOADED


# ------------------------------------------------------------------------------ broken data


async def test_a_hand_broken_meter_is_skipped_and_reported_not_fatal(
    hass: HomeAssistant, household: MockConfigEntry, hass_client: Any
) -> None:
    good = {**EVERYTHING_ELSE, "key": "composed_everything_else", **ELECTRICITY_DESCRIPTION}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Composed meters",
        data={"source": "composed"},
        options=default_options(),
        unique_id="composed",
        subentries_data=[
            ConfigSubentryData(
                data=good, subentry_type="virtual", title="Everything else", unique_id=None
            ),
            # Edited by hand: no key, unit, kind...
            ConfigSubentryData(
                data={"name": "Broken", "base": demo.GAS},
                subentry_type="virtual",
                title="Broken",
                unique_id=None,
            ),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert [meter.key for meter in entry.runtime_data.coordinator.source.meters] == [
        "composed_everything_else"
    ]
    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert result["composed"]["broken_subentries"] == ["definition_invalid"]  # type: ignore[index,call-overload]
    # Meters can still be added next to it.
    result = await add(hass, entry, "preferred", {"name": "Pumps", "inputs": [demo.HEAT_PUMP]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settle(hass)
