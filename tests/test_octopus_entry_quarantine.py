"""An Octopus entry fed `1e12` kWh and `true` in one day: neither reaches a sensor or a statistic.

The fixture account and tariffs of test_octopus_entry.py, with the electricity consumption of
tests/fixtures/octopus/faulty_elec_consumption.json: entry_elec_consumption.json with `1e12` at
19 Nov 18:00 and `true` at 18:30 UTC. Time is frozen at 2026-11-20 12:10 UTC (Europe/London,
GMT: local days are UTC days).

Hand-computed from the plausible rows: yesterday (19 Nov) 0.25 + 0.35 + 0.40 = 1.00 kWh; with
18 Nov 23:30's 0.50 kWh the month - and the consumption statistic's sum - is 1.50 kWh.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

# Imported before time is frozen (see test_octopus_entry.py).
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.base import RetryPolicy
from custom_components.meterlake.sources.octopus import discover_meters, meter_config, meter_infos

from .conftest import load_fixture_json

API = "https://api.octopus.energy/v1"
ACCOUNT = "A-BEEF1234"
NOW = "2026-11-20 12:10:00+00:00"
ELEC = "octopus_electricity_1200000000017"
GAS = "octopus_gas_9876543210"
ELEC_CONSUMPTION = f"{API}/electricity-meter-points/1200000000017/meters/24E1234567/consumption/"
GAS_CONSUMPTION = f"{API}/gas-meter-points/9876543210/meters/G4P00000000001/consumption/"
ELEC_TARIFF = f"{API}/products/VAR-22-11-01/electricity-tariffs/E-1R-VAR-22-11-01-A"
GAS_TARIFF = f"{API}/products/VAR-22-11-01/gas-tariffs/G-1R-VAR-22-11-01-A"


def fx(name: str) -> Any:
    return load_fixture_json(f"octopus/{name}.json")


@pytest.fixture(autouse=True)
def _no_backoff() -> Generator[None]:
    with patch(
        "custom_components.meterlake.sources.octopus.RetryPolicy",
        partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
    ):
        yield


@pytest.fixture
async def loaded(
    hass: HomeAssistant, freezer: Any, aioclient_mock: AiohttpClientMocker, tmp_path: Path
) -> MockConfigEntry:
    """The fixture account set up with the faulty electricity payload."""
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/London")
    aioclient_mock.get(f"{API}/accounts/{ACCOUNT}/", json=fx("entry_account"))
    aioclient_mock.get(ELEC_CONSUMPTION, json=fx("faulty_elec_consumption"))
    aioclient_mock.get(GAS_CONSUMPTION, json=fx("entry_gas_consumption"))
    aioclient_mock.get(f"{ELEC_TARIFF}/standard-unit-rates/", json=fx("entry_elec_rates"))
    aioclient_mock.get(f"{ELEC_TARIFF}/standing-charges/", json=fx("entry_elec_standing"))
    aioclient_mock.get(f"{GAS_TARIFF}/standard-unit-rates/", json=fx("entry_gas_rates"))
    aioclient_mock.get(f"{GAS_TARIFF}/standing-charges/", json=fx("entry_gas_standing"))
    discovered = discover_meters(fx("entry_account"))
    meters = meter_infos(discovered, selected={m.key for m in discovered}, gas_units={GAS: "m³"})
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Octopus Energy {ACCOUNT}",
        data={
            "source": "octopus",
            "api_key": "sk_live_ENTRYKEY0123456789",
            "account_number": ACCOUNT,
            "meters": [meter_config(m) for m in meters],
        },
        options=default_options() | {"archive_root": str(tmp_path / "lake"), "backfill_days": 3},
        unique_id=ACCOUNT,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


def value_of(hass: HomeAssistant, meter: str, sensor: str) -> float:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{meter}_{sensor}")
    assert entity_id is not None, f"no entity for {meter}_{sensor}"
    state = hass.states.get(entity_id)
    assert state is not None
    return float(state.state)


async def test_daily_consumption_counts_only_plausible_readings(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    assert value_of(hass, ELEC, "consumption_yesterday") == pytest.approx(1.0)
    assert value_of(hass, ELEC, "consumption_month") == pytest.approx(1.5)


async def test_consumption_statistic_never_sees_the_absurd_reading(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    from homeassistant.components.recorder.statistics import statistics_during_period
    from homeassistant.helpers.recorder import get_instance
    from pytest_homeassistant_custom_component.components.recorder.common import (  # type: ignore[import-untyped]
        async_wait_recording_done,
    )

    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    stat_id = f"meterlake:{ELEC}_consumption"
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 11, 1, tzinfo=UTC),
        None,
        {stat_id},
        "hour",
        None,
        {"sum"},
    )
    sums = [row["sum"] for row in stats[stat_id]]
    assert sums[-1] == pytest.approx(1.5)
    assert max(s for s in sums if s is not None) == pytest.approx(1.5)
