"""Sensor states of the demo household at a frozen moment, snapshot-tested, plus hand checks."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.meterlake.sources import demo


@pytest.fixture
def only_sensors() -> Generator[None]:
    """Set up the sensor platform alone (snapshot_platform looks at one platform)."""
    from unittest.mock import patch

    from homeassistant.const import Platform

    with patch("custom_components.meterlake.PLATFORMS", [Platform.SENSOR]):
        yield


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sensor_states(
    hass: HomeAssistant,
    only_sensors: None,
    loaded_demo: Any,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, loaded_demo.entry_id)


def _expected_day(meter: Any, day: str) -> pd.DataFrame:
    start = pd.Timestamp(day, tz="Europe/London").tz_convert("UTC").to_pydatetime()
    source = demo.DemoSource(_sync, now=lambda: datetime(2026, 11, 20, 12, 10, tzinfo=UTC))
    import asyncio

    return asyncio.run(source.async_fetch(meter, start, start + timedelta(days=1))).intervals


async def _sync(target: Any, *args: Any) -> Any:
    return target(*args)


async def test_today_and_yesterday_match_the_intervals(
    hass: HomeAssistant, loaded_demo: Any
) -> None:
    elec = demo.METERS[0]
    yesterday = await hass.async_add_executor_job(_expected_day, elec, "2026-11-19")
    today = await hass.async_add_executor_job(_expected_day, elec, "2026-11-20")
    state = hass.states.get("sensor.demo_electricity_consumption_yesterday")
    assert float(state.state) == pytest.approx(yesterday["value"].sum(), abs=1e-9)
    assert state.attributes["unit_of_measurement"] == "kWh"
    assert state.attributes["device_class"] == "energy"
    assert len(today) == 22  # 00:00 to 11:00 UTC = GMT
    assert float(hass.states.get("sensor.demo_electricity_consumption_today").state) == (
        pytest.approx(today["value"].sum(), abs=1e-9)
    )
    assert float(hass.states.get("sensor.demo_electricity_cost_yesterday").state) == (
        pytest.approx(yesterday["cost"].sum(), abs=1e-9)
    )
    gas_state = hass.states.get("sensor.demo_gas_consumption_today")
    assert gas_state.attributes["unit_of_measurement"] == "m³"
    assert gas_state.attributes["device_class"] == "gas"
    # 12:10 GMT is in the day band of the current tariff; 16:00 starts the peak band.
    assert float(hass.states.get("sensor.demo_electricity_current_rate").state) == 0.24
    nxt = hass.states.get("sensor.demo_electricity_next_rate")
    assert float(nxt.state) == 0.36
    assert nxt.attributes["start"] == "2026-11-20T16:00:00+00:00"
    assert float(hass.states.get("sensor.demo_electricity_standing_charge").state) == 0.6012
    assert hass.states.get("sensor.demo_gas_newest_data").state == "2026-11-20T11:00:00+00:00"


async def test_one_device_per_meter(
    hass: HomeAssistant, loaded_demo: Any, device_registry: dr.DeviceRegistry
) -> None:
    devices = dr.async_entries_for_config_entry(device_registry, loaded_demo.entry_id)
    assert sorted(d.name for d in devices) == ["Demo electricity", "Demo gas"]


async def test_new_intervals_appear_as_time_passes(
    hass: HomeAssistant, loaded_demo: Any, freezer: Any
) -> None:
    before = hass.states.get("sensor.demo_electricity_newest_data").state
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    after = hass.states.get("sensor.demo_electricity_newest_data").state
    assert before == "2026-11-20T11:00:00+00:00"
    assert after == "2026-11-20T11:30:00+00:00"


async def test_sensors_unavailable_when_a_poll_fails(
    hass: HomeAssistant, loaded_demo: Any, freezer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custom_components.meterlake.sources.base import SourceUnavailableError

    async def broken(*args: Any) -> Any:
        raise SourceUnavailableError("demo: down", retry_after=60)

    coordinator = loaded_demo.runtime_data.coordinator
    monkeypatch.setattr(coordinator.source, "async_fetch", broken)
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.demo_electricity_consumption_today").state == STATE_UNAVAILABLE
    assert coordinator.store.get("demo_electricity") == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
