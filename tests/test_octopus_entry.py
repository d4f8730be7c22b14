"""A real Octopus entry end to end: setup, polls, sensors, auth failure -> reauth, outages.

Payloads (tests/fixtures/octopus/entry_*.json) are served by aioclient_mock; time is frozen at
2026-11-20 12:10 UTC, Europe/London (GMT in November, so local days are UTC days).

Hand-computed from the fixtures:
- electricity yesterday (19 Nov): 0.25 + 0.35 + 1.10 + 0.90 + 0.40 = 3.00 kWh; the 0.50 kWh of
  18 Nov 23:30 is the day before. Month so far: 3.50 kWh.
- unit rates (direct debit, inc. VAT): 20 p until 19 Nov 12:00 UTC, 30 p until 21 Nov 00:00,
  then 28 p. Cost yesterday: (0.25 + 0.35) x 0.20 + (1.10 + 0.90 + 0.40) x 0.30 = £0.84.
  Current rate £0.30/kWh, next £0.28/kWh from 21 Nov 00:00 UTC. Standing charge 50 p/day.
- gas (m³, SMETS2): 0.5 + 0.3 = 0.8 m³ yesterday = 0.8 x 1.02264 x 39.5 / 3.6 = 8.9765067 kWh,
  at 6 p/kWh: £0.5385904. Standing charge 30 p/day.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

# Imported before time is frozen: importing pandas' Cython modules for the first time in an
# executor thread under freezegun hangs (seen with pandas 2.3 / Python 3.14).
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.base import RetryPolicy
from custom_components.meterlake.sources.octopus import (
    discover_meters,
    meter_config,
    meter_infos,
)

from .conftest import load_fixture_json

API = "https://api.octopus.energy/v1"
KEY = "sk_live_ENTRYKEY0123456789"
NEW_KEY = "sk_live_ROTATED0123456789"
ACCOUNT = "A-BEEF1234"
NOW = "2026-11-20 12:10:00+00:00"
ELEC = "octopus_electricity_1200000000017"
GAS = "octopus_gas_9876543210"
ELEC_CONSUMPTION = f"{API}/electricity-meter-points/1200000000017/meters/24E1234567/consumption/"
GAS_CONSUMPTION = f"{API}/gas-meter-points/9876543210/meters/G4P00000000001/consumption/"
ELEC_TARIFF = f"{API}/products/VAR-22-11-01/electricity-tariffs/E-1R-VAR-22-11-01-A"
GAS_TARIFF = f"{API}/products/VAR-22-11-01/gas-tariffs/G-1R-VAR-22-11-01-A"
GAS_KWH_PER_M3 = 1.02264 * 39.5 / 3.6


def fx(name: str) -> Any:
    return load_fixture_json(f"octopus/{name}.json")


def mock_api(mock: AiohttpClientMocker, *, consumption: dict[str, Any] | None = None) -> None:
    """Account, consumption and tariffs; `consumption` replaces both consumption answers."""
    mock.clear_requests()
    mock.get(f"{API}/accounts/{ACCOUNT}/", json=fx("entry_account"))
    mock.get(ELEC_CONSUMPTION, **(consumption or {"json": fx("entry_elec_consumption")}))
    mock.get(GAS_CONSUMPTION, **(consumption or {"json": fx("entry_gas_consumption")}))
    mock.get(f"{ELEC_TARIFF}/standard-unit-rates/", json=fx("entry_elec_rates"))
    mock.get(f"{ELEC_TARIFF}/standing-charges/", json=fx("entry_elec_standing"))
    mock.get(f"{GAS_TARIFF}/standard-unit-rates/", json=fx("entry_gas_rates"))
    mock.get(f"{GAS_TARIFF}/standing-charges/", json=fx("entry_gas_standing"))


@pytest.fixture(autouse=True)
def _no_backoff() -> Generator[None]:
    """The production retry policy (3 retries) without its 2 s x 2^n waits."""
    with patch(
        "custom_components.meterlake.sources.octopus.RetryPolicy",
        partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
    ):
        yield


@pytest.fixture
def octopus_entry(tmp_path: Path) -> MockConfigEntry:
    """The entry the config flow creates for the fixture account (SMETS2 gas confirmed in m³)."""
    discovered = discover_meters(fx("entry_account"))
    meters = meter_infos(discovered, selected={m.key for m in discovered}, gas_units={GAS: "m³"})
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Octopus Energy {ACCOUNT}",
        data={
            "source": "octopus",
            "api_key": KEY,
            "account_number": ACCOUNT,
            "meters": [meter_config(m) for m in meters],
        },
        options=default_options() | {"archive_root": str(tmp_path / "lake"), "backfill_days": 3},
        unique_id=ACCOUNT,
    )


@pytest.fixture
async def loaded(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    octopus_entry: MockConfigEntry,
) -> MockConfigEntry:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/London")
    mock_api(aioclient_mock)
    octopus_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(octopus_entry.entry_id)
    await hass.async_block_till_done()
    assert octopus_entry.state is ConfigEntryState.LOADED
    return octopus_entry


def state_of(hass: HomeAssistant, meter: str, sensor: str) -> Any:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{meter}_{sensor}")
    assert entity_id is not None, f"no entity for {meter}_{sensor}"
    state = hass.states.get(entity_id)
    assert state is not None
    return state


def value_of(hass: HomeAssistant, meter: str, sensor: str) -> float:
    return float(state_of(hass, meter, sensor).state)


async def next_poll(hass: HomeAssistant, freezer: Any) -> None:
    """Let the coordinator's 30-minute timer fire."""
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    # Scheduled refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_sensors_from_fixtures(
    hass: HomeAssistant, loaded: MockConfigEntry, tmp_path: Path
) -> None:
    # Electricity.
    assert value_of(hass, ELEC, "consumption_yesterday") == pytest.approx(3.0)
    assert value_of(hass, ELEC, "consumption_month") == pytest.approx(3.5)
    assert value_of(hass, ELEC, "consumption_last_interval") == pytest.approx(0.4)
    assert value_of(hass, ELEC, "cost_yesterday") == pytest.approx(0.84)
    assert value_of(hass, ELEC, "current_rate") == pytest.approx(0.30)
    next_rate = state_of(hass, ELEC, "next_rate")
    assert float(next_rate.state) == pytest.approx(0.28)
    assert datetime.fromisoformat(next_rate.attributes["start"]) == datetime(
        2026, 11, 21, tzinfo=UTC
    )
    assert value_of(hass, ELEC, "standing_charge") == pytest.approx(0.50)
    newest = state_of(hass, ELEC, "newest_data").state
    assert datetime.fromisoformat(newest) == datetime(2026, 11, 20, tzinfo=UTC)
    consumption = state_of(hass, ELEC, "consumption_yesterday")
    assert consumption.attributes["unit_of_measurement"] == "kWh"
    assert consumption.attributes["device_class"] == "energy"
    assert state_of(hass, ELEC, "cost_yesterday").attributes["unit_of_measurement"] == "GBP"
    assert state_of(hass, ELEC, "current_rate").attributes["unit_of_measurement"] == "GBP/kWh"

    # Gas, metered in m³ and priced per kWh.
    gas = state_of(hass, GAS, "consumption_yesterday")
    assert float(gas.state) == pytest.approx(0.8)
    assert gas.attributes["unit_of_measurement"] == "m³"
    assert gas.attributes["device_class"] == "gas"
    assert value_of(hass, GAS, "cost_yesterday") == pytest.approx(0.8 * GAS_KWH_PER_M3 * 0.06)
    assert value_of(hass, GAS, "standing_charge") == pytest.approx(0.30)
    newest = state_of(hass, GAS, "newest_data").state
    assert datetime.fromisoformat(newest) == datetime(2026, 11, 19, 7, tzinfo=UTC)

    # The watermarks stand at the end of the newest interval delivered.
    store = loaded.runtime_data.coordinator.store
    assert store.get(ELEC) == datetime(2026, 11, 20, tzinfo=UTC)
    assert store.get(GAS) == datetime(2026, 11, 19, 7, tzinfo=UTC)
    # The archive went where the option points.
    assert any((tmp_path / "lake").rglob("*.parquet"))


async def test_gas_rate_is_priced_per_kwh_like_the_tariff(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """Octopus prices gas per kWh even for an m³ meter: the rate sensor says so in its unit."""
    rate = state_of(hass, GAS, "current_rate")
    assert rate.attributes["unit_of_measurement"] == "GBP/kWh"
    assert float(rate.state) == pytest.approx(0.06)


async def test_401_mid_life_starts_reauth(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    loaded: MockConfigEntry,
) -> None:
    mock_api(aioclient_mock, consumption={"status": 401})
    await next_poll(hass, freezer)

    flows = loaded.async_get_active_flows(hass, {SOURCE_REAUTH})
    (flow,) = list(flows)
    assert flow["step_id"] == "reauth_confirm"
    assert [f["flow_id"] for f in hass.config_entries.flow.async_progress()] == [flow["flow_id"]]
    assert state_of(hass, ELEC, "consumption_yesterday").state == STATE_UNAVAILABLE
    # One request, no retry: a refused key does not get better by asking again.
    calls = [c for c in aioclient_mock.mock_calls if c[1].path.endswith("/consumption/")]
    assert len(calls) == 1

    # The user pastes a new key; the entry reloads with it and polls again.
    mock_api(aioclient_mock)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {"api_key": NEW_KEY})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert loaded.data["api_key"] == NEW_KEY
    assert loaded.state is ConfigEntryState.LOADED
    assert value_of(hass, ELEC, "consumption_yesterday") == pytest.approx(3.0)
    assert not hass.config_entries.flow.async_progress()


async def test_outage_makes_sensors_unavailable_and_keeps_watermarks(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    loaded: MockConfigEntry,
) -> None:
    store = loaded.runtime_data.coordinator.store
    before = {meter: store.get(meter) for meter in (ELEC, GAS)}

    mock_api(aioclient_mock, consumption={"status": 500})
    await next_poll(hass, freezer)

    assert not loaded.runtime_data.coordinator.last_update_success
    for meter in (ELEC, GAS):
        assert state_of(hass, meter, "consumption_yesterday").state == STATE_UNAVAILABLE
        assert state_of(hass, meter, "current_rate").state == STATE_UNAVAILABLE
        assert store.get(meter) == before[meter]
    # The production policy: one request and three retries per serial, then it gives up.
    calls = [c for c in aioclient_mock.mock_calls if c[1].path.endswith("/consumption/")]
    assert len(calls) == 8  # every meter is tried (4 attempts each): one failing stops no other
    assert not list(loaded.async_get_active_flows(hass, {SOURCE_REAUTH}))

    # The supplier is back: the next poll brings the sensors back with the same values.
    mock_api(aioclient_mock)
    await next_poll(hass, freezer)
    assert value_of(hass, ELEC, "consumption_yesterday") == pytest.approx(3.0)
    assert value_of(hass, GAS, "cost_yesterday") == pytest.approx(0.8 * GAS_KWH_PER_M3 * 0.06)
    assert store.get(ELEC) == before[ELEC]


async def test_archive_and_statistics_hold_the_fixture_numbers(
    hass: HomeAssistant, loaded: MockConfigEntry, tmp_path: Path
) -> None:
    """Octopus through the real coordinator: DuckDB, Polars and the recorder agree."""
    import duckdb
    from homeassistant.components.recorder.statistics import statistics_during_period
    from homeassistant.helpers.recorder import get_instance
    import polars as pl
    from pytest_homeassistant_custom_component.components.recorder.common import (  # type: ignore[import-untyped]
        async_wait_recording_done,
    )

    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    root = tmp_path / "lake"
    glob = f"{root}/consumption/**/*.parquet"
    totals = {
        row[0]: row[1:]
        for row in duckdb.sql(
            f"SELECT meter, count(*), sum(value), sum(cost), sum(energy_kwh) "
            f"FROM read_parquet('{glob}', hive_partitioning=1) GROUP BY meter"
        ).fetchall()
    }
    recent = loaded.runtime_data.coordinator.recent
    for meter in (ELEC, GAS):
        rows = recent[recent["meter"] == meter]
        assert totals[meter][0] == len(rows)
        assert totals[meter][1] == pytest.approx(rows["value"].sum(), abs=1e-9)
        assert totals[meter][2] == pytest.approx(rows["cost"].sum(), abs=1e-9)
    # Gas in m³ converted with the default calorific value and correction.
    assert totals[GAS][3] == pytest.approx(totals[GAS][1] * GAS_KWH_PER_M3, rel=1e-12)
    polars_sum = (
        pl.scan_parquet(glob, hive_partitioning=True)
        .filter(pl.col("meter") == ELEC)
        .select(pl.col("value").sum())
        .collect()
        .item()
    )
    assert polars_sum == pytest.approx(totals[ELEC][1], abs=1e-9)
    ids = {f"meterlake:{ELEC}_consumption", f"meterlake:{ELEC}_cost", f"meterlake:{GAS}_energy"}
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 1, 1, tzinfo=UTC),
        None,
        ids,
        "hour",
        None,
        {"sum"},
    )
    assert stats[f"meterlake:{ELEC}_consumption"][-1]["sum"] == pytest.approx(
        totals[ELEC][1], abs=1e-9
    )
    assert stats[f"meterlake:{ELEC}_cost"][-1]["sum"] == pytest.approx(totals[ELEC][2], abs=1e-9)
    assert stats[f"meterlake:{GAS}_energy"][-1]["sum"] == pytest.approx(totals[GAS][3], abs=1e-9)


async def test_diagnostics_hold_no_identifier(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_client: Any
) -> None:
    from pytest_homeassistant_custom_component.components.diagnostics import (  # type: ignore[import-untyped]
        get_diagnostics_for_config_entry,
    )

    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    text = str(result)
    for secret in (KEY, ACCOUNT, "1200000000017", "9876543210", "24E1234567", "G4P00000000001"):
        assert secret not in text
    assert result["last_update_success"] is True
    assert {r["endpoint"] for r in result["last_poll"]["requests"]} >= {"account"}
