"""The backfill action: windows, skipping what is stored, force, and translated errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake.const import DOMAIN


async def _backfill(hass: HomeAssistant, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, "backfill", data, blocking=True, return_response=True
    )


async def test_backfill_skips_stored_windows(hass: HomeAssistant, loaded_demo: Any) -> None:
    # Setup already fetched the 10 days of the backfill option: all stored.
    response = await _backfill(hass, config_entry=loaded_demo.entry_id, days=10)
    elec = response["meters"]["demo_electricity"]
    assert elec["windows_skipped"] == 1
    assert elec["windows_fetched"] == 0
    assert elec["rows_fetched"] == 0


async def test_backfill_fetches_older_history(hass: HomeAssistant, loaded_demo: Any) -> None:
    coordinator = loaded_demo.runtime_data.coordinator
    response = await _backfill(hass, config_entry=loaded_demo.entry_id, days=120)
    elec = response["meters"]["demo_electricity"]
    # 120 days = 4 windows of 30 days; only the newest 10 days were stored.
    assert elec["windows_fetched"] == 4
    assert elec["rows_fetched"] == 120 * 48 - 2
    assert elec["missing_intervals"] == 0
    assert coordinator.last_update_success
    # The held statistics import runs once afterwards and covers all 120 days.
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    rows = await coordinator.async_stored_rows(coordinator.source.meters[0], None, None)
    assert len(rows) == 120 * 48 - 2
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 1, 1, tzinfo=UTC),
        None,
        {"meterlake:demo_electricity_consumption"},
        "hour",
        None,
        {"sum"},
    )
    consumption = stats["meterlake:demo_electricity_consumption"]
    assert len(consumption) == 120 * 24 - 1
    assert consumption[-1]["sum"] == pytest.approx(rows["value"].sum(), abs=1e-9)


async def test_backfill_force_refetches(hass: HomeAssistant, loaded_demo: Any) -> None:
    response = await _backfill(hass, config_entry=loaded_demo.entry_id, days=10, force=True)
    elec = response["meters"]["demo_electricity"]
    assert elec["windows_fetched"] == 1
    assert elec["windows_skipped"] == 0
    # From 12:00 ten days ago (whole hours) to 11:00 today, the hour of lag: half-hourly.
    assert elec["rows_fetched"] == 10 * 48 - 2
    assert elec["rows_stored"] == 10 * 48 - 2


async def test_backfill_unknown_entry(hass: HomeAssistant, loaded_demo: Any) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _backfill(hass, config_entry="nope", days=10)
    assert err.value.translation_key == "entry_not_found"


async def test_backfill_unloaded_entry(hass: HomeAssistant, loaded_demo: Any) -> None:
    other = MockConfigEntry(domain=DOMAIN, data={"source": "demo"}, title="Other")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as err:
        await _backfill(hass, config_entry=other.entry_id, days=10)
    assert err.value.translation_key == "entry_not_loaded"


@pytest.mark.parametrize("days", [0, 3651])
async def test_backfill_days_out_of_range(hass: HomeAssistant, loaded_demo: Any, days: int) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _backfill(hass, config_entry=loaded_demo.entry_id, days=days)
    assert err.value.translation_key == "days_out_of_range"


async def test_backfill_source_failure(
    hass: HomeAssistant, loaded_demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custom_components.meterlake.sources.base import SourceUnavailableError

    async def broken(*args: Any) -> Any:
        raise SourceUnavailableError("demo: down")

    monkeypatch.setattr(loaded_demo.runtime_data.coordinator.source, "async_fetch", broken)
    with pytest.raises(HomeAssistantError) as err:
        await _backfill(hass, config_entry=loaded_demo.entry_id, days=10, force=True)
    assert err.value.translation_key == "backfill_failed"
