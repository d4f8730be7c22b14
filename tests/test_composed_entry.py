"""Composed meters end to end, built from the UI (HTTP API) on the demo household's meters.

"Everything else" = house electricity - heat pump - EV charger; a fireplace = gas (m³) - boiler
(kWh → m³); a master meter = day + night registers until the replacement, the smart meter after.
Their statistics are checked against sums computed here from the demo's own formulas, through a
restart, late data and a rebuild.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.recorder import get_instance
from homeassistant.setup import async_setup_component
import numpy as np
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources import demo

from .conftest import load_household

KWH_PER_M3 = 1.02264 * 39.5 / 3.6
FIRST = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


def _starts(first: datetime = FIRST, until: datetime = UNTIL) -> pd.DatetimeIndex:
    return pd.date_range(first, until, freq="30min", inclusive="left", tz=UTC)


def _sub(key: str, starts: pd.DatetimeIndex) -> pd.Series:
    values, published = demo.submeter_kwh(key, starts, kwh_per_m3=KWH_PER_M3)
    return pd.Series(np.where(published, values, 0.0), index=starts)


def expected_everything_else(until: datetime = UNTIL) -> pd.Series:
    starts = _starts(until=until)
    house = pd.Series(demo.electricity_kwh(starts), index=starts)
    return (house - _sub(demo.HEAT_PUMP, starts) - _sub(demo.EV_CHARGER, starts)).clip(lower=0)


def expected_fireplace() -> pd.Series:
    starts = _starts()
    gas = pd.Series(demo.gas_m3(starts), index=starts)
    return gas - _sub(demo.BOILER, starts) / KWH_PER_M3


def expected_master() -> pd.Series:
    starts = _starts()
    return pd.Series(demo.electricity_kwh(starts), index=starts)


def running(per_slot: pd.Series) -> pd.Series:
    """Hourly on UTC hours, accumulated: what the statistic's sum must be."""
    return per_slot.groupby(per_slot.index.floor("h")).sum().cumsum()


async def stored_sums(hass: HomeAssistant, stat_id: str) -> pd.Series:
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 1, 1, tzinfo=UTC),
        None,
        {stat_id},
        "hour",
        None,
        {"sum"},
    )
    found = rows.get(stat_id, [])
    return pd.Series(
        [row["sum"] for row in found],
        index=pd.DatetimeIndex([datetime.fromtimestamp(row["start"], UTC) for row in found]),
    )


async def assert_statistic(hass: HomeAssistant, stat_id: str, expected: pd.Series) -> None:
    stored = await stored_sums(hass, stat_id)
    assert list(stored.index) == list(expected.index)
    np.testing.assert_allclose(stored.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)


@pytest.fixture
async def household(hass: HomeAssistant, freezer: Any, tmp_path: Path) -> MockConfigEntry:
    """The demo with its sub-meters, 10 days of history, loaded."""
    return await load_household(hass, freezer, tmp_path, backfill_days=10)


class Ui:
    """The config flows as the frontend drives them, over HA's HTTP API."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def post(self, url: str, data: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client.post(url, json=data)
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body

    async def add_composed_entry(self) -> dict[str, Any]:
        flow = "/api/config/config_entries/flow"
        body = await self.post(flow, {"handler": DOMAIN, "show_advanced_options": False})
        body = await self.post(f"{flow}/{body['flow_id']}", {"next_step_id": "composed"})
        assert body["step_id"] == "composed"
        return await self.post(f"{flow}/{body['flow_id']}", {})

    async def subentry(self, entry_id: str, kind: str, *steps: dict[str, Any]) -> dict[str, Any]:
        flow = "/api/config/config_entries/subentries/flow"
        body = await self.post(flow, {"handler": [entry_id, kind]})
        for data in steps:
            assert body["type"] == "form", body
            body = await self.post(f"{flow}/{body['flow_id']}", data)
        return body


@pytest.fixture
async def ui(hass: HomeAssistant, hass_client: Any) -> Ui:
    assert await async_setup_component(hass, "config", {})
    # Before the client: HTTP routes cannot be added once it runs.
    assert await async_setup_component(hass, "diagnostics", {})
    return Ui(await hass_client())


GAS_FIGURES = {"calorific_value": 39.5, "volume_correction": 1.02264}


async def build_all(hass: HomeAssistant, ui: Ui) -> MockConfigEntry:
    created = await ui.add_composed_entry()
    assert created["type"] == "create_entry"
    entry = hass.config_entries.async_get_entry(created["result"]["entry_id"])
    assert entry is not None
    await _settle(hass)
    body = await ui.subentry(
        entry.entry_id,
        "virtual",
        {
            "name": "Everything else",
            "base": demo.ELECTRICITY,
            "add": [],
            "subtract": [demo.HEAT_PUMP, demo.EV_CHARGER],
            **GAS_FIGURES,
        },
    )
    assert body["type"] == "create_entry", body
    await _settle(hass)
    body = await ui.subentry(
        entry.entry_id,
        "virtual",
        {"name": "Fireplace", "base": demo.GAS, "subtract": [demo.BOILER], **GAS_FIGURES},
    )
    assert body["type"] == "create_entry", body
    await _settle(hass)
    body = await ui.subentry(
        entry.entry_id,
        "master",
        {"name": "House meter", "reading_offset": 1000.0},
        {
            "meters": [demo.DAY_REGISTER, demo.NIGHT_REGISTER],
            "until": "2026-11-15",
            "another": True,
        },
        {"meters": [demo.SMART_METER], "another": False},
    )
    assert body["type"] == "create_entry", body
    await _settle(hass)
    return entry  # type: ignore[return-value]


async def test_composed_meters_built_from_the_ui_equal_hand_sums(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui
) -> None:
    entry = await build_all(hass, ui)
    assert entry.state is ConfigEntryState.LOADED
    assert {s.title for s in entry.subentries.values()} == {
        "Everything else",
        "Fireplace",
        "House meter",
    }
    everything_else = expected_everything_else()
    await assert_statistic(
        hass, "meterlake:composed_everything_else_consumption", running(everything_else)
    )
    starts = everything_else.index
    cost = everything_else * demo.electricity_rate(starts)
    await assert_statistic(hass, "meterlake:composed_everything_else_cost", running(cost))
    fireplace = expected_fireplace()
    await assert_statistic(hass, "meterlake:composed_fireplace_consumption", running(fireplace))
    await assert_statistic(
        hass, "meterlake:composed_fireplace_energy", running(fireplace * KWH_PER_M3)
    )
    await assert_statistic(
        hass, "meterlake:composed_house_meter_consumption", running(expected_master())
    )


async def test_each_composed_meter_is_a_device_with_its_sensors(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui
) -> None:
    entry = await build_all(hass, ui)
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert {d.name for d in devices} == {"Everything else", "Fireplace", "House meter"}
    reading = hass.states.get("sensor.house_meter_meter_reading")
    assert reading is not None
    assert float(reading.state) == pytest.approx(1000.0 + expected_master().sum(), abs=1e-6)
    assert reading.attributes["state_class"] == "total_increasing"
    yesterday = hass.states.get("sensor.everything_else_consumption_yesterday")
    day = expected_everything_else()
    local = day.index.tz_convert("Europe/London")
    want = day[
        (local >= pd.Timestamp("2026-11-19", tz="Europe/London"))
        & (local < pd.Timestamp("2026-11-20", tz="Europe/London"))
    ].sum()
    assert float(yesterday.state) == pytest.approx(want, abs=1e-6)
    assert hass.states.get("sensor.everything_else_clipped_at_zero_today").state == "0.0"
    assert hass.states.get("sensor.everything_else_current_rate") is None


async def test_composed_rows_reach_the_archive(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui, tmp_path: Path
) -> None:
    await build_all(hass, ui)
    root = tmp_path / "config" / "meterlake"
    total = duckdb.sql(
        f"SELECT count(*), sum(value) FROM read_parquet('{root}/consumption/**/*.parquet', "
        "hive_partitioning=1) WHERE supplier = 'composed' AND meter = 'composed_fireplace'"
    ).fetchall()[0]
    assert total[0] == len(expected_fireplace())
    assert total[1] == pytest.approx(expected_fireplace().sum(), abs=1e-9)


async def test_sums_survive_a_restart_and_a_rebuild(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui
) -> None:
    entry = await build_all(hass, ui)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await _settle(hass)
    await assert_statistic(
        hass,
        "meterlake:composed_everything_else_consumption",
        running(expected_everything_else()),
    )
    response = await hass.services.async_call(
        DOMAIN,
        "rebuild_statistics",
        {"config_entry": entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response["meters"]["composed_fireplace"]["hours_written"] == 0  # type: ignore[index]
    await _settle(hass)
    await assert_statistic(
        hass, "meterlake:composed_fireplace_consumption", running(expected_fireplace())
    )


LATE_FROM = pd.Timestamp("2026-11-19 12:00", tz=UTC)
# Eight days back: older than any poll's re-read window; only a forced backfill reaches it.
GAP = (pd.Timestamp("2026-11-12 12:00", tz=UTC), pd.Timestamp("2026-11-12 18:00", tz=UTC))


def _hold_back(monkeypatch: pytest.MonkeyPatch, lo: pd.Timestamp, hi: pd.Timestamp) -> Any:
    """The heat pump has not published [lo, hi) yet; returns how to publish it."""
    real = demo.submeter_kwh

    def late(key: str, starts: pd.DatetimeIndex, *, kwh_per_m3: float) -> Any:
        values, published = real(key, starts, kwh_per_m3=kwh_per_m3)
        if key == demo.HEAT_PUMP:
            published = published & ~np.asarray((starts >= lo) & (starts < hi))
        return values, published

    monkeypatch.setattr(demo, "submeter_kwh", late)
    return lambda: monkeypatch.setattr(demo, "submeter_kwh", real)


@pytest.fixture
def late_heat_pump(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The heat pump's last day is not published yet."""
    return _hold_back(monkeypatch, LATE_FROM, pd.Timestamp("2100-01-01", tz=UTC))


@pytest.fixture
def old_gap_heat_pump(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Six hours of the heat pump, eight days back, were never delivered."""
    return _hold_back(monkeypatch, *GAP)


async def test_a_late_input_interval_fills_the_composed_meter_in(
    hass: HomeAssistant, freezer: Any, late_heat_pump: Any, household: MockConfigEntry, ui: Ui
) -> None:
    """Everything else is missing where the heat pump is, never too high; then it fills in."""
    await build_all(hass, ui)
    stored = await stored_sums(hass, "meterlake:composed_everything_else_consumption")
    assert stored.index.max() < LATE_FROM
    # The heat pump publishes; the next poll re-reads its last 3 days and the lake's signal
    # recomputes everything else for exactly that window.
    late_heat_pump()
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await _settle(hass)
    # 12:41 now: the demo has published up to 11:30.
    await assert_statistic(
        hass,
        "meterlake:composed_everything_else_consumption",
        running(expected_everything_else(until=UNTIL + timedelta(minutes=30))),
    )


async def test_a_backfill_deep_in_an_input_history_recomputes_that_window(
    hass: HomeAssistant, old_gap_heat_pump: Any, household: MockConfigEntry, ui: Ui
) -> None:
    await build_all(hass, ui)
    stored = await stored_sums(hass, "meterlake:composed_everything_else_consumption")
    assert not set(stored.index) & set(pd.date_range(*GAP, freq="h", inclusive="left"))
    old_gap_heat_pump()
    await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry": household.entry_id, "days": 9, "force": True},
        blocking=True,
        return_response=True,
    )
    await _settle(hass)
    await assert_statistic(
        hass,
        "meterlake:composed_everything_else_consumption",
        running(expected_everything_else()),
    )


async def test_an_input_that_goes_away_makes_the_meter_unavailable_with_a_repair(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui
) -> None:
    entry = await build_all(hass, ui)
    assert await hass.config_entries.async_unload(household.entry_id)
    await _settle(hass)
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"composed_input_missing_{entry.entry_id}_composed_fireplace"
    )
    assert issue is not None
    assert "demo_gas" in issue.translation_placeholders["inputs"]
    await hass.config_entries.async_reload(entry.entry_id)
    await _settle(hass)
    assert hass.states.get("sensor.fireplace_consumption_today").state == "unavailable"


async def test_a_preferred_meter_marks_fallback_intervals_estimated(
    hass: HomeAssistant, late_heat_pump: Any, household: MockConfigEntry, ui: Ui, tmp_path: Path
) -> None:
    """Heat pump first, EV charger as the fallback: where the heat pump is late, estimated."""
    created = await ui.add_composed_entry()
    entry_id = created["result"]["entry_id"]
    await _settle(hass)
    body = await ui.subentry(
        entry_id,
        "preferred",
        {"name": "Best guess", "inputs": [demo.HEAT_PUMP, demo.EV_CHARGER], **GAS_FIGURES},
    )
    assert body["type"] == "create_entry", body
    await _settle(hass)
    root = tmp_path / "config" / "meterlake"
    query = (
        f"SELECT quality, count(*) FROM read_parquet('{root}/consumption/**/*.parquet', "
        "hive_partitioning=1) WHERE meter = 'composed_best_guess' GROUP BY quality ORDER BY 1"
    )
    late_slots = int((pd.Timestamp(UNTIL) - LATE_FROM) / pd.Timedelta(minutes=30))
    assert duckdb.sql(query).fetchall() == [
        ("estimated", late_slots),
        ("measured", len(_starts()) - late_slots),
    ]


async def test_diagnostics_report_clipping_per_day(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui, hass_client: Any
) -> None:
    from pytest_homeassistant_custom_component.components.diagnostics import (
        get_diagnostics_for_config_entry,
    )

    created = await ui.add_composed_entry()
    entry = hass.config_entries.async_get_entry(created["result"]["entry_id"])
    await _settle(hass)
    # Boiler minus gas in kWh: the gas is 1.25 times the boiler, so this clips every slot with gas.
    body = await ui.subentry(
        entry.entry_id,
        "virtual",
        {"name": "Wrong way round", "base": demo.BOILER, "subtract": [demo.GAS], **GAS_FIGURES},
    )
    assert body["type"] == "create_entry", body
    await _settle(hass)
    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    composed = result["composed"]["meter_0"]
    assert composed["type"] == "virtual"
    gas = pd.Series(demo.gas_m3(_starts()), index=_starts())
    clipped = (gas * KWH_PER_M3 - _sub(demo.BOILER, _starts())).clip(lower=0)
    by_day = clipped.groupby(clipped.index.tz_convert("Europe/London").date).sum()
    assert sum(composed["clipped_by_day"].values()) == pytest.approx(by_day.sum(), rel=1e-9)
    state = hass.states.get("sensor.wrong_way_round_clipped_at_zero_today")
    assert float(state.state) == pytest.approx(by_day.iloc[-1], rel=1e-6)


async def test_every_composed_meter_has_a_reading_that_counts_its_intervals(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui
) -> None:
    await build_all(hass, ui)
    reading = hass.states.get("sensor.fireplace_meter_reading")
    assert float(reading.state) == pytest.approx(expected_fireplace().sum(), abs=1e-6)
    assert reading.attributes["unit_of_measurement"] == "m³"


async def test_a_backfill_of_a_composed_meter_recomputes_its_history(
    hass: HomeAssistant, household: MockConfigEntry, ui: Ui
) -> None:
    entry = await build_all(hass, ui)
    fireplace = "meterlake:composed_fireplace_consumption"
    before = await stored_sums(hass, fireplace)
    response = await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry": entry.entry_id, "days": 20, "force": True},
        blocking=True,
        return_response=True,
    )
    summary = response["meters"]["composed_fireplace"]  # type: ignore[index]
    assert summary["rows_fetched"] == len(expected_fireplace())
    assert "error" not in summary
    await _settle(hass)
    after = await stored_sums(hass, fireplace)
    pd.testing.assert_series_equal(after, before)
