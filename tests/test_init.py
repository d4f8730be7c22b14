"""Setup, unload, reload and removal of an entry."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meterlake.const import DOMAIN


async def test_setup_unload_reload(hass: HomeAssistant, loaded_demo: Any) -> None:
    assert loaded_demo.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.demo_electricity_consumption_today") is not None
    assert await hass.config_entries.async_unload(loaded_demo.entry_id)
    await hass.async_block_till_done()
    assert loaded_demo.state is ConfigEntryState.NOT_LOADED
    assert await hass.config_entries.async_setup(loaded_demo.entry_id)
    await hass.async_block_till_done()
    assert loaded_demo.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_reload(loaded_demo.entry_id)
    await hass.async_block_till_done()
    assert loaded_demo.state is ConfigEntryState.LOADED
    assert float(hass.states.get("sensor.demo_electricity_consumption_today").state) > 0


async def test_unknown_source_fails_setup(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data={"source": "nonexistent"}, unique_id="x")
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR


async def test_remove_entry_forgets_watermarks(
    hass: HomeAssistant, loaded_demo: Any, hass_storage: dict[str, Any]
) -> None:
    coordinator = loaded_demo.runtime_data.coordinator
    assert coordinator.store.get("demo_electricity") is not None
    await hass.config_entries.async_remove(loaded_demo.entry_id)
    await hass.async_block_till_done()
    assert f"{DOMAIN}.{loaded_demo.entry_id}" not in hass_storage


async def test_devices_of_meters_no_longer_followed_are_removed(
    hass: HomeAssistant, loaded_demo: Any
) -> None:
    from homeassistant.helpers import device_registry as dr

    registry = dr.async_get(hass)
    stale = registry.async_get_or_create(
        config_entry_id=loaded_demo.entry_id, identifiers={(DOMAIN, "demo_water")}, name="Old"
    )
    assert await hass.config_entries.async_reload(loaded_demo.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get(stale.id) is None
    kept = dr.async_entries_for_config_entry(registry, loaded_demo.entry_id)
    assert sorted(d.name for d in kept) == ["Demo electricity", "Demo gas"]
