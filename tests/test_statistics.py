"""Long-term statistics against the real recorder: sums equal the interval table's totals."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch
import warnings

from homeassistant.components.energy import data as energy_data
from homeassistant.components.energy.validate import async_validate
from homeassistant.components.recorder.core import Recorder
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.util.unit_conversion import EnergyConverter, VolumeConverter
import numpy as np
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.common import async_test_home_assistant
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake import statistics as stats
from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS
from custom_components.meterlake.sources.base import MeterInfo

ELEC = MeterInfo(
    key="octopus_electricity_1000000000000",
    supplier="octopus",
    kind="electricity",
    unit="kWh",
    name="Electricity",
    serials=("21L123",),
    currency="GBP",
    time_zone="Europe/London",
)
EXPORT = MeterInfo(
    key="octopus_electricity_1000000000099",
    supplier="octopus",
    kind="electricity",
    unit="kWh",
    name="Export",
    serials=("21L123",),
    is_export=True,
    currency="GBP",
)
GAS = MeterInfo(
    key="octopus_gas_1234567890",
    supplier="octopus",
    kind="gas",
    unit="m³",
    name="Gas",
    serials=("G4A1",),
    currency="GBP",
)


@pytest.fixture(autouse=True)
def _custom_integrations(request: pytest.FixtureRequest) -> Generator[None]:
    """Like conftest's: the real recorder (its database prepared before `hass`), then ours."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("recorder_mock")
        request.getfixturevalue("enable_custom_integrations")
    yield


CALORIFIC = 1.02264 * 39.5 / 3.6  # kWh per m³ (the default gas figures)
T0 = datetime(2025, 1, 6, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def make_intervals(
    meter: MeterInfo,
    start: datetime,
    periods: int,
    *,
    minutes: int = 30,
    seed: int = 0,
    rate: float | None = 0.2451,
    serial: str | None = None,
    scale: float = 1.0,
) -> pd.DataFrame:
    """Rows of the interval table with varied values, cost = value x rate."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(start, periods=periods, freq=f"{minutes}min", tz=UTC)
    value = np.round(rng.uniform(0.05, 1.5, periods) * scale, 3)
    energy = value * CALORIFIC if meter.unit == "m³" else np.full(periods, np.nan)
    return pd.DataFrame(
        {
            "meter": meter.key,
            "serial": serial or (meter.serials[0] if meter.serials else None),
            "supplier": meter.supplier,
            "kind": meter.kind,
            "start": starts,
            "end": starts + pd.Timedelta(minutes=minutes),
            "value": value,
            "unit": meter.unit,
            "energy_kwh": energy,
            "rate": np.nan if rate is None else rate,
            "cost": np.nan if rate is None else value * rate,
            "currency": meter.currency,
            "quality": "measured",
            "ingested_at": pd.Timestamp("2025-06-01", tz=UTC),
        },
        columns=list(INTERVAL_COLUMNS),
    )


class Table:
    """The interval table of the tests: upsert on (meter, start), newest row wins."""

    def __init__(self) -> None:
        self.frame = pd.DataFrame(columns=list(INTERVAL_COLUMNS))

    def upsert(self, rows: pd.DataFrame) -> pd.DataFrame:
        with warnings.catch_warnings():
            # All-NA columns (no currency, no energy) keep their dtype either way.
            warnings.simplefilter("ignore", FutureWarning)
            merged = pd.concat([self.frame, rows]) if len(self.frame) else rows.copy()
        self.frame = (
            merged.drop_duplicates(["meter", "start"], keep="last")
            .sort_values(["meter", "start"])
            .reset_index(drop=True)
        )
        return rows

    def since(self, meter: MeterInfo, start: datetime) -> pd.DataFrame:
        rows = self.frame[(self.frame["meter"] == meter.key) & (self.frame["start"] >= start)]
        return rows.reset_index(drop=True)


def running_totals(
    frame: pd.DataFrame, column: str, *, extra: pd.Series | None = None
) -> pd.Series:
    """Independent reference: hourly sums on UTC hours, accumulated (absolute for export)."""
    values = frame[column].astype(float).abs()
    hourly = values.groupby(frame["start"].dt.floor("h")).sum()
    if extra is not None:
        hourly = hourly.add(extra, fill_value=0.0)
    return hourly.sort_index().cumsum()


async def stored(hass: HomeAssistant, stat_id: str) -> pd.DataFrame:
    """Every hourly row of one statistic: start, state, sum."""
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        EPOCH,
        None,
        {stat_id},
        "hour",
        None,
        {"sum", "state"},
    )
    found = rows.get(stat_id, [])
    return pd.DataFrame(
        {
            "start": pd.to_datetime([row["start"] for row in found], unit="s", utc=True),
            "state": [row["state"] for row in found],
            "sum": [row["sum"] for row in found],
        }
    )


async def assert_sums(hass: HomeAssistant, stat_id: str, expected: pd.Series) -> pd.DataFrame:
    """Stored hours are exactly the expected hours and every sum matches to 1e-9."""
    await async_wait_recording_done(hass)
    rows = await stored(hass, stat_id)
    assert list(rows["start"]) == list(expected.index)
    np.testing.assert_allclose(rows["sum"].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)
    last = await get_instance(hass).async_add_executor_job(
        get_last_statistics, hass, 1, stat_id, False, {"sum"}
    )
    assert last[stat_id][0]["sum"] == pytest.approx(expected.iloc[-1], abs=1e-9, rel=0)
    return rows


def sent_rows(spy: Any) -> int:
    """Rows handed to the recorder through the spied async_add_external_statistics."""
    return sum(len(list(call.args[2])) for call in spy.call_args_list)


def spy_writes() -> Any:
    return patch(
        "custom_components.meterlake.statistics.async_add_external_statistics",
        wraps=async_add_external_statistics,
    )


async def set_energy_prefs(hass: HomeAssistant, sources: Iterable[dict[str, Any]]) -> None:
    """Point the Energy dashboard at statistics, after validating with its own schema."""
    energy_sources = energy_data.ENERGY_SOURCE_SCHEMA(list(sources))
    manager = await energy_data.async_get_manager(hass)
    await manager.async_update({"energy_sources": energy_sources, "device_consumption": []})


async def assert_energy_valid(hass: HomeAssistant) -> None:
    result = (await async_validate(hass)).as_dict()
    assert result["energy_sources"], "no energy source configured"
    assert all(issues == [] for issues in result["energy_sources"]), result


def grid_source(
    consumption: MeterInfo, export: MeterInfo | None = None, *, cost: bool = True
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "type": "grid",
        "stat_energy_from": stats.statistic_id(consumption.key, "consumption"),
        "stat_cost": stats.statistic_id(consumption.key, "cost") if cost else None,
        "cost_adjustment_day": 0.0,
    }
    if export is not None:
        source["stat_energy_to"] = stats.statistic_id(export.key, "consumption")
        source["stat_compensation"] = stats.statistic_id(export.key, "cost")
    return source


# --- statistic ids -------------------------------------------------------------------------


def test_statistic_id_valid_and_slugified() -> None:
    assert stats.statistic_id(ELEC.key, "consumption") == (
        "meterlake:octopus_electricity_1000000000000_consumption"
    )
    assert stats.statistic_id("Octopus-Gas  123", "cost") == "meterlake:octopus_gas_123_cost"
    assert stats.statistic_id("_edge__key_", "energy") == "meterlake:edge_key_energy"
    with pytest.raises(ValueError, match="No valid statistic id"):
        stats.statistic_id("__", "cost")
    with pytest.raises(ValueError, match="No valid statistic id"):
        stats.statistic_id(ELEC.key, "")


# --- first, incremental and repeated imports ------------------------------------------------


async def test_first_import(recorder_mock: Recorder, hass: HomeAssistant) -> None:
    table = Table()
    # 3 days of half-hours and one more half-hour: the last hour is still incomplete.
    frame = table.upsert(make_intervals(ELEC, T0, 3 * 48 + 1))
    result = await stats.async_import_meter(hass, ELEC, frame)

    consumption = stats.statistic_id(ELEC.key, "consumption")
    cost = stats.statistic_id(ELEC.key, "cost")
    assert result == stats.StatisticsImport(
        meter=ELEC.key,
        hours_written=73,
        first_hour=T0,
        last_hour=T0 + timedelta(hours=72),
        statistic_ids=(consumption, cost),
    )
    rows = await assert_sums(hass, consumption, running_totals(table.frame, "value"))
    # The incomplete hour holds the state so far (one half-hour).
    assert rows["state"].iloc[-1] == pytest.approx(frame["value"].iloc[-1], abs=1e-12)
    assert rows["state"].iloc[0] == pytest.approx(frame["value"].iloc[:2].sum(), abs=1e-12)
    await assert_sums(hass, cost, running_totals(table.frame, "cost"))

    metadata = await get_instance(hass).async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={consumption, cost})
    )
    meta_c = metadata[consumption][1]
    assert meta_c["source"] == "meterlake"
    assert meta_c["mean_type"] is StatisticMeanType.NONE
    assert meta_c["has_sum"] is True
    assert meta_c["unit_of_measurement"] == "kWh"
    assert meta_c["unit_class"] == EnergyConverter.UNIT_CLASS
    assert meta_c["name"] == "Electricity consumption"
    assert metadata[cost][1]["unit_of_measurement"] == "GBP"
    assert metadata[cost][1]["unit_class"] is None

    assert await stats.async_last_imported_hour(hass, ELEC) == T0 + timedelta(hours=72)
    await set_energy_prefs(hass, [grid_source(ELEC)])
    await assert_energy_valid(hass)


async def test_incremental_then_idempotent(recorder_mock: Recorder, hass: HomeAssistant) -> None:
    table = Table()
    consumption = stats.statistic_id(ELEC.key, "consumption")
    cost = stats.statistic_id(ELEC.key, "cost")
    await stats.async_import_meter(hass, ELEC, table.upsert(make_intervals(ELEC, T0, 2 * 48 + 1)))

    # Next poll: the last half-hour of the incomplete hour plus one new hour, read back with a
    # one-day overlap window as the coordinator does. Only the completed and the new hour change.
    new_start = T0 + timedelta(hours=48, minutes=30)
    table.upsert(make_intervals(ELEC, new_start, 3, seed=7))
    window = table.since(ELEC, T0 + timedelta(days=1))
    with spy_writes() as spy:
        result = await stats.async_import_meter(hass, ELEC, window)
    assert result.hours_written == 2
    assert result.first_hour == T0 + timedelta(hours=48)
    assert result.last_hour == T0 + timedelta(hours=49)
    assert sent_rows(spy) == 4  # two hours x (consumption, cost)
    await assert_sums(hass, consumption, running_totals(table.frame, "value"))
    await assert_sums(hass, cost, running_totals(table.frame, "cost"))

    # The same poll again writes nothing: every sum is reproduced bit for bit.
    with spy_writes() as spy:
        again = await stats.async_import_meter(hass, ELEC, window)
    assert again.hours_written == 0
    assert again.first_hour is None
    assert spy.call_count == 0
    await assert_sums(hass, consumption, running_totals(table.frame, "value"))
    await set_energy_prefs(hass, [grid_source(ELEC)])
    await assert_energy_valid(hass)


async def test_correction_in_the_middle_shifts_later_sums(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    consumption = stats.statistic_id(ELEC.key, "consumption")
    cost = stats.statistic_id(ELEC.key, "cost")
    await stats.async_import_meter(hass, ELEC, table.upsert(make_intervals(ELEC, T0, 5 * 48)))
    before = await stored(hass, consumption)

    # A late correction of one half-hour on day 2 (10:30 UTC); the frame holds only day 2.
    day2 = table.since(ELEC, T0 + timedelta(days=1))
    day2 = day2[day2["start"] < T0 + timedelta(days=2)].copy()
    fixed = day2["start"] == T0 + timedelta(days=1, hours=10, minutes=30)
    day2.loc[fixed, "value"] += 0.75
    day2.loc[fixed, "cost"] = day2.loc[fixed, "value"] * 0.2451
    day2.loc[fixed, "quality"] = "corrected"
    table.upsert(day2)

    with spy_writes() as spy:
        result = await stats.async_import_meter(hass, ELEC, day2)
    # Hour 10 of day 2 and every later hour (13 + 3 x 24) are rewritten, nothing before.
    later = 14 + 3 * 24
    assert result.hours_written == later
    assert result.first_hour == T0 + timedelta(days=1, hours=10)
    assert result.last_hour == T0 + timedelta(days=5) - timedelta(hours=1)
    assert sent_rows(spy) == 2 * later
    after = await assert_sums(hass, consumption, running_totals(table.frame, "value"))
    await assert_sums(hass, cost, running_totals(table.frame, "cost"))

    shift = (after["sum"] - before["sum"]).to_numpy()
    corrected_at = 24 + 10
    np.testing.assert_allclose(shift[:corrected_at], 0.0, atol=0)
    np.testing.assert_allclose(shift[corrected_at:], 0.75, atol=1e-9, rtol=0)
    # The shifted hours keep their own state (hourly quantity); only the corrected one changed.
    state_change = (after["state"] - before["state"]).to_numpy()
    assert state_change[corrected_at] == pytest.approx(0.75, abs=1e-12)
    np.testing.assert_allclose(np.delete(state_change, corrected_at), 0.0, atol=0)


async def test_unknown_cost_adds_nothing_until_rates_arrive(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    cost = stats.statistic_id(ELEC.key, "cost")
    day1 = table.upsert(make_intervals(ELEC, T0, 48, seed=1))
    # Day 2 has no rate yet: costs unknown.
    day2 = table.upsert(make_intervals(ELEC, T0 + timedelta(days=1), 48, seed=2, rate=None))
    await stats.async_import_meter(hass, ELEC, table.since(ELEC, T0))
    # No invented cost: only day 1 has cost rows, and the sum stops there.
    rows = await assert_sums(hass, cost, running_totals(day1, "cost"))
    assert rows["start"].iloc[-1] == T0 + timedelta(hours=23)
    # A half-hour with unknown cost makes its whole hour unknown (no partial cost).
    partial = make_intervals(ELEC, T0 + timedelta(days=2), 2, seed=3)
    partial.loc[1, ["rate", "cost"]] = np.nan
    table.upsert(partial)
    await stats.async_import_meter(hass, ELEC, table.since(ELEC, T0 + timedelta(days=1)))
    await assert_sums(hass, cost, running_totals(day1, "cost"))

    # Rates published: day 2 and the partial hour are re-sent, priced, and sums continue.
    rated = table.since(ELEC, T0 + timedelta(days=1)).copy()
    rated["rate"] = 0.2451
    rated["cost"] = rated["value"] * 0.2451
    table.upsert(rated)
    result = await stats.async_import_meter(hass, ELEC, rated)
    assert result.hours_written == 25
    await assert_sums(hass, cost, running_totals(table.frame, "cost"))
    assert len(day2) == 48


async def test_meter_without_currency_has_no_cost(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    meter = MeterInfo(key="demo_heat_1", supplier="demo", kind="heat", unit="kWh", name="Heat")
    frame = make_intervals(meter, T0, 48, rate=None)
    frame["currency"] = None
    result = await stats.async_import_meter(hass, meter, frame)
    assert result.statistic_ids == ("meterlake:demo_heat_1_consumption",)
    await assert_sums(hass, result.statistic_ids[0], running_totals(frame, "value"))


# --- restart ---------------------------------------------------------------------------------


@pytest.mark.parametrize("persistent_database", [True])
async def test_restart_between_runs(async_test_recorder: Any, tmp_path: Any) -> None:
    table = Table()
    consumption = stats.statistic_id(ELEC.key, "consumption")
    cost = stats.statistic_id(ELEC.key, "cost")
    async with (
        async_test_home_assistant(config_dir=str(tmp_path)) as hass,
        async_test_recorder(hass),
    ):
        await stats.async_import_meter(hass, ELEC, table.upsert(make_intervals(ELEC, T0, 96)))
        await assert_sums(hass, consumption, running_totals(table.frame, "value"))
        await hass.async_stop()

    # A new Home Assistant on the same database: nothing in memory, all from the recorder.
    table.upsert(make_intervals(ELEC, T0 + timedelta(days=2), 24, seed=11))
    async with (
        async_test_home_assistant(config_dir=str(tmp_path)) as hass,
        async_test_recorder(hass),
    ):
        assert await stats.async_last_imported_hour(hass, ELEC) == T0 + timedelta(hours=47)
        window = table.since(ELEC, T0 + timedelta(days=1))
        result = await stats.async_import_meter(hass, ELEC, window)
        assert result.hours_written == 12
        assert result.first_hour == T0 + timedelta(days=2)
        await assert_sums(hass, consumption, running_totals(table.frame, "value"))
        await assert_sums(hass, cost, running_totals(table.frame, "cost"))
        await hass.async_stop()


# --- UK clock changes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local_day", "half_hours", "midnights_utc"),
    [
        (
            date(2025, 3, 30),
            46,
            (datetime(2025, 3, 30, 0, tzinfo=UTC), datetime(2025, 3, 30, 23, tzinfo=UTC)),
        ),
        (
            date(2025, 10, 26),
            50,
            (datetime(2025, 10, 25, 23, tzinfo=UTC), datetime(2025, 10, 27, 0, tzinfo=UTC)),
        ),
    ],
)
async def test_uk_dst_days(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    local_day: date,
    half_hours: int,
    midnights_utc: tuple[datetime, datetime],
) -> None:
    london = "Europe/London"
    start = pd.Timestamp(local_day, tz=london).tz_convert(UTC).to_pydatetime()
    end = pd.Timestamp(local_day + timedelta(days=1), tz=london).tz_convert(UTC).to_pydatetime()
    assert (end - start) / timedelta(minutes=30) == half_hours
    # The local day plus the next local day's first hour, so its standing charge lands too.
    frame = make_intervals(ELEC, start, half_hours + 2, seed=local_day.day)
    standing = pd.DataFrame(
        {
            "meter": ELEC.key,
            "day": [local_day, local_day + timedelta(days=1)],
            "charge": [0.5312, 0.6121],
            "currency": "GBP",
        }
    )
    result = await stats.async_import_meter(
        hass, ELEC, frame, standing=standing, standing_charge_in_cost=True, time_zone=london
    )
    consumption = stats.statistic_id(ELEC.key, "consumption")
    cost = stats.statistic_id(ELEC.key, "cost")
    assert result.hours_written == half_hours // 2 + 1
    rows = await assert_sums(hass, consumption, running_totals(frame, "value"))
    assert len(rows) == half_hours // 2 + 1
    assert all(ts.minute == 0 for ts in rows["start"])

    charges = pd.Series([0.5312, 0.6121], index=pd.DatetimeIndex(midnights_utc))
    cost_rows = await assert_sums(hass, cost, running_totals(frame, "cost", extra=charges))
    energy_cost = frame["cost"].groupby(frame["start"].dt.floor("h")).sum()
    for midnight, charge in zip(midnights_utc, charges, strict=True):
        state = cost_rows.loc[cost_rows["start"] == midnight, "state"].item()
        assert state == pytest.approx(energy_cost[pd.Timestamp(midnight)] + charge, abs=1e-12)
    # Re-importing with the same charges changes nothing (no charge counted twice).
    again = await stats.async_import_meter(
        hass, ELEC, frame, standing=standing, standing_charge_in_cost=True, time_zone=london
    )
    assert again.hours_written == 0


# --- meter replacement, export, gas ------------------------------------------------------------


async def test_meter_replacement_keeps_one_continuous_sum(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    consumption = stats.statistic_id(ELEC.key, "consumption")
    old = make_intervals(ELEC, T0, 60, serial="OLD-1", seed=21)  # to day 2, 06:00
    await stats.async_import_meter(hass, ELEC, table.upsert(old))

    # The new meter from day 2 05:00; both report 05:00-06:00 and the new one wins there.
    new = make_intervals(ELEC, T0 + timedelta(hours=29), 38, serial="NEW-2", seed=22)
    poll = pd.concat([old[old["start"] >= T0 + timedelta(days=1)], new], ignore_index=True)
    result = await stats.async_import_meter(hass, ELEC, poll)
    table.upsert(new)  # the table keeps the newest row per key: the new meter's rows
    reference = table.frame
    assert set(reference["serial"][reference["start"] >= T0 + timedelta(hours=29)]) == {"NEW-2"}
    assert result.first_hour == T0 + timedelta(hours=29)
    rows = await assert_sums(hass, consumption, running_totals(reference, "value"))
    assert rows["sum"].is_monotonic_increasing
    await assert_sums(hass, stats.statistic_id(ELEC.key, "cost"), running_totals(reference, "cost"))


async def test_export_meter_positive_sums(recorder_mock: Recorder, hass: HomeAssistant) -> None:
    table = Table()
    imports = table.upsert(make_intervals(ELEC, T0, 96, seed=31))
    exports = make_intervals(EXPORT, T0, 96, seed=32, rate=0.15)
    # A source that signs export negative still yields positive, increasing sums.
    exports.loc[::2, ["value", "cost"]] *= -1
    table.upsert(exports)
    await stats.async_import_meter(hass, ELEC, imports)
    result = await stats.async_import_meter(hass, EXPORT, exports)
    export_id = stats.statistic_id(EXPORT.key, "consumption")
    compensation = stats.statistic_id(EXPORT.key, "cost")
    assert result.statistic_ids == (export_id, compensation)
    rows = await assert_sums(hass, export_id, running_totals(exports, "value"))
    assert (rows["state"] > 0).all()
    assert rows["sum"].is_monotonic_increasing
    await assert_sums(hass, compensation, running_totals(exports, "cost"))
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(imports, "value")
    )
    await set_energy_prefs(hass, [grid_source(ELEC, EXPORT)])
    await assert_energy_valid(hass)


async def test_gas_in_cubic_metres_has_energy(recorder_mock: Recorder, hass: HomeAssistant) -> None:
    frame = make_intervals(GAS, T0, 96, seed=41, rate=0.75, scale=0.2)
    result = await stats.async_import_meter(hass, GAS, frame)
    volume = stats.statistic_id(GAS.key, "consumption")
    cost = stats.statistic_id(GAS.key, "cost")
    energy = stats.statistic_id(GAS.key, "energy")
    assert result.statistic_ids == (volume, cost, energy)
    await assert_sums(hass, volume, running_totals(frame, "value"))
    await assert_sums(hass, cost, running_totals(frame, "cost"))
    rows = await assert_sums(hass, energy, running_totals(frame, "energy_kwh"))
    volumes = await stored(hass, volume)
    np.testing.assert_allclose(rows["sum"], volumes["sum"] * CALORIFIC, rtol=1e-12)

    metadata = await get_instance(hass).async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={volume, energy})
    )
    assert metadata[volume][1]["unit_of_measurement"] == "m³"
    assert metadata[volume][1]["unit_class"] == VolumeConverter.UNIT_CLASS
    assert metadata[energy][1]["unit_of_measurement"] == "kWh"
    assert metadata[energy][1]["unit_class"] == EnergyConverter.UNIT_CLASS


async def test_energy_dashboard_accepts_all_statistics(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    await stats.async_import_meter(hass, ELEC, make_intervals(ELEC, T0, 48, seed=51))
    await stats.async_import_meter(hass, EXPORT, make_intervals(EXPORT, T0, 48, seed=52))
    await stats.async_import_meter(hass, GAS, make_intervals(GAS, T0, 48, seed=53, rate=0.07))
    await async_wait_recording_done(hass)
    await set_energy_prefs(
        hass,
        [
            grid_source(ELEC, EXPORT),
            {
                "type": "gas",
                "stat_energy_from": stats.statistic_id(GAS.key, "energy"),
                "stat_cost": stats.statistic_id(GAS.key, "cost"),
            },
        ],
    )
    await assert_energy_valid(hass)
    # The check is real: a statistic we never wrote is reported.
    missing = MeterInfo(key="nowhere", supplier="demo", kind="gas", unit="m³", name="x")
    await set_energy_prefs(
        hass,
        [
            {
                "type": "gas",
                "stat_energy_from": stats.statistic_id(missing.key, "energy"),
                "stat_cost": None,
            }
        ],
    )
    result = (await async_validate(hass)).as_dict()
    assert result["energy_sources"][0][0]["type"] == "statistics_not_defined"


# --- rebuild support, chunking ----------------------------------------------------------------


async def test_exact_rebuild_removes_hours_no_interval_covers(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    table.upsert(make_intervals(ELEC, T0, 96, seed=61))
    await stats.async_import_meter(hass, ELEC, table.frame)
    # The archive no longer has hour 10 (say it was stored in error): an exact rebuild drops it.
    kept = table.frame[
        (table.frame["start"] < T0 + timedelta(hours=10))
        | (table.frame["start"] >= T0 + timedelta(hours=11))
    ]
    result = await stats.async_import_meter(hass, ELEC, kept, exact=True)
    await stats.async_recorder_done(hass)
    rows = await stored(hass, stats.statistic_id(ELEC.key, "consumption"))
    assert T0 + timedelta(hours=10) not in set(rows["start"])
    assert len(rows) == 47
    assert result.hours_written == 37  # hours 11..47 move down by hour 10's value
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(kept, "value")
    )


async def test_rebuild_from_a_start_changes_nothing_when_nothing_changed(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    table.upsert(make_intervals(ELEC, T0, 96, seed=61))
    await stats.async_import_meter(hass, ELEC, table.frame)
    with spy_writes() as spy:
        again = await stats.async_import_meter(
            hass, ELEC, table.since(ELEC, T0 + timedelta(hours=13))
        )
    assert again.hours_written == 0
    assert spy.call_count == 0


async def test_large_import_is_sent_in_chunks(
    recorder_mock: Recorder, hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "FIRST_CHUNK_ROWS", 40)
    monkeypatch.setattr(stats, "MIN_CHUNK_ROWS", 25)
    frame = make_intervals(ELEC, T0, 20 * 24, minutes=60, seed=71)
    with spy_writes() as spy:
        result = await stats.async_import_meter(hass, ELEC, frame, job_seconds=0.0)
    sizes = [len(list(call.args[2])) for call in spy.call_args_list]
    assert result.hours_written == 480
    assert sum(sizes) == 2 * 480
    assert sizes[0] == 40
    assert max(sizes) <= 40
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(frame, "value")
    )


async def test_quarter_hours_sum_into_their_hour(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    frame = make_intervals(ELEC, T0 + timedelta(minutes=15), 4 * 6 - 1, minutes=15, seed=81)
    result = await stats.async_import_meter(hass, ELEC, frame)
    assert result.first_hour == T0
    rows = await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(frame, "value")
    )
    assert rows["state"].iloc[0] == pytest.approx(frame["value"].iloc[:3].sum(), abs=1e-12)
    assert rows["state"].iloc[1] == pytest.approx(frame["value"].iloc[3:7].sum(), abs=1e-12)


async def test_import_returns_once_committed(recorder_mock: Recorder, hass: HomeAssistant) -> None:
    """Back-to-back imports read what the previous one wrote: no wait needed in between."""
    table = Table()
    consumption = stats.statistic_id(ELEC.key, "consumption")
    for day in range(4):
        rows = make_intervals(ELEC, T0 + timedelta(days=day), 48, seed=90 + day)
        await stats.async_import_meter(hass, ELEC, table.upsert(rows))
        # Read at once through the recorder's executor, no async_wait_recording_done.
        found = await stored(hass, consumption)
        expected = running_totals(table.frame, "value")
        assert list(found["start"]) == list(expected.index)
        np.testing.assert_allclose(found["sum"], expected.to_numpy(), rtol=0, atol=1e-9)


# --- catch-up: each statistic compared with the archive on its own ----------------------------


async def test_reconcile_repairs_a_cost_statistic_restarted_at_zero(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    """A kill during the first import left cost starting late with sum 0; consumption is whole."""
    table = Table()
    table.upsert(make_intervals(ELEC, T0, 4 * 48, seed=91))
    await stats.async_import_meter(hass, ELEC, table.frame)
    cost_id = stats.statistic_id(ELEC.key, "cost")
    await stats.async_clear_statistic(hass, cost_id)
    await stats.async_import_meter(hass, ELEC, table.since(ELEC, T0 + timedelta(days=2)))
    assert len(await stored(hass, cost_id)) == 48

    with spy_writes() as spy:
        result = await stats.async_import_meter(hass, ELEC, table.frame, reconcile=True)
    written = {call.args[1]["statistic_id"] for call in spy.call_args_list}
    assert written == {cost_id}
    assert result.hours_written == 96
    await assert_sums(hass, cost_id, running_totals(table.frame, "cost"))
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(table.frame, "value")
    )


async def test_reconcile_fills_a_hole_inside_a_statistic(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    table.upsert(make_intervals(ELEC, T0, 96, seed=92))
    holed = table.frame[
        (table.frame["start"] < T0 + timedelta(hours=20))
        | (table.frame["start"] >= T0 + timedelta(hours=23))
    ]
    await stats.async_import_meter(hass, ELEC, holed, exact=True)
    consumption = stats.statistic_id(ELEC.key, "consumption")
    assert len(await stored(hass, consumption)) == 45

    await stats.async_import_meter(hass, ELEC, table.frame, reconcile=True)
    await assert_sums(hass, consumption, running_totals(table.frame, "value"))
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "cost"), running_totals(table.frame, "cost")
    )


async def test_reconcile_sends_nothing_when_every_statistic_matches(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    frame = make_intervals(GAS, T0, 96, seed=93)
    await stats.async_import_meter(hass, GAS, frame)
    with spy_writes() as spy:
        result = await stats.async_import_meter(hass, GAS, frame, reconcile=True)
    assert spy.call_count == 0
    assert result.hours_written == 0


async def test_reconcile_creates_a_statistic_that_was_never_written(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    """Killed after consumption and cost, before gas energy: energy is imported whole."""
    frame = make_intervals(GAS, T0, 96, seed=94)
    await stats.async_import_meter(hass, GAS, frame)
    energy = stats.statistic_id(GAS.key, "energy")
    await stats.async_clear_statistic(hass, energy)
    await stats.async_import_meter(hass, GAS, frame, reconcile=True)
    await assert_sums(hass, energy, running_totals(frame, "energy_kwh"))


# --- foreign statistics under our ids ---------------------------------------------------------


def _foreign_metadata(stat_id: str, unit: str) -> Any:
    return {
        "mean_type": StatisticMeanType.NONE,
        "has_sum": True,
        "name": "someone else's",
        "source": "meterlake",
        "statistic_id": stat_id,
        "unit_class": None,
        "unit_of_measurement": unit,
    }


async def test_foreign_unit_is_refused_and_left_untouched(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    cost_id = stats.statistic_id(ELEC.key, "cost")
    async_add_external_statistics(
        hass,
        _foreign_metadata(cost_id, "EUR"),
        [{"start": T0 - timedelta(hours=1), "state": 24000.0, "sum": 24000.0}],
    )
    await async_wait_recording_done(hass)
    result = await stats.async_import_meter(hass, ELEC, make_intervals(ELEC, T0, 48, seed=95))
    assert result.refused == {cost_id: "unit 'EUR', expected 'GBP'"}
    rows = await stored(hass, cost_id)
    assert list(rows["sum"]) == [24000.0]
    await assert_sums(
        hass,
        stats.statistic_id(ELEC.key, "consumption"),
        running_totals(make_intervals(ELEC, T0, 48, seed=95), "value"),
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"has_sum": False, "mean_type": StatisticMeanType.ARITHMETIC}, "it has no sum"),
        ({"mean_type": StatisticMeanType.ARITHMETIC}, "it has a mean"),
    ],
)
def test_foreign_reason_names_what_differs(change: dict[str, Any], reason: str) -> None:
    ours = _foreign_metadata("meterlake:x_consumption", "kWh")
    assert stats.foreign_reason({**ours, **change}, ours) == reason
    assert stats.foreign_reason(ours, ours) is None
    assert stats.foreign_reason(None, ours) is None


# --- long histories: month by month -----------------------------------------------------------

M0 = datetime(2025, 1, 1, tzinfo=UTC)


def months_of(frame: pd.DataFrame) -> list[str]:
    return sorted({f"{start:%Y-%m}" for start in frame["start"]})


class MonthReads:
    """A month reader over a Table, as the archive sink's: it records the windows asked for."""

    def __init__(self, table: Table, meter: MeterInfo) -> None:
        self.table = table
        self.meter = meter
        self.windows: list[tuple[datetime, datetime]] = []

    async def __call__(self, start: datetime, end: datetime) -> pd.DataFrame:
        self.windows.append((start, end))
        rows = self.table.since(self.meter, start)
        return rows[rows["start"] < end].reset_index(drop=True)


async def test_a_history_of_many_months_gets_the_sums_of_one_pass(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    frame = make_intervals(ELEC, M0 + timedelta(days=3), 96 * 48, seed=101)
    result = await stats.async_import_meter(hass, ELEC, frame)
    assert result.hours_written == 96 * 24
    assert result.first_hour == M0 + timedelta(days=3)
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(frame, "value")
    )
    await assert_sums(hass, stats.statistic_id(ELEC.key, "cost"), running_totals(frame, "cost"))


async def test_a_correction_moves_stored_hours_of_later_months(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    """Hours stored but missing from the frame keep their change and move with the sums before
    them, also at the start of a month (where one month of the import hands over to the next)."""
    table = Table()
    table.upsert(make_intervals(ELEC, M0, 90 * 48, seed=102))
    await stats.async_import_meter(hass, ELEC, table.frame)
    # January corrected upwards; February's first day missing from what is imported again.
    january = make_intervals(ELEC, M0, 31 * 48, seed=103)
    table.upsert(january)
    february = M0 + timedelta(days=31)
    frame = table.frame[
        (table.frame["start"] < february) | (table.frame["start"] >= february + timedelta(days=1))
    ]
    await stats.async_import_meter(hass, ELEC, frame)
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(table.frame, "value")
    )


async def test_a_stored_history_is_read_one_month_at_a_time(
    recorder_mock: Recorder, hass: HomeAssistant
) -> None:
    table = Table()
    table.upsert(make_intervals(ELEC, M0 + timedelta(days=10), 80 * 48, seed=104))
    read = MonthReads(table, ELEC)
    done = await stats.async_import_history(
        hass, ELEC, stats.month_windows(months_of(table.frame)), read, reconcile=True
    )
    assert done.intervals == 80 * 48
    assert [(lo.month, hi.month) for lo, hi in read.windows] == [(1, 2), (2, 3), (3, 4)]
    await assert_sums(
        hass, stats.statistic_id(ELEC.key, "consumption"), running_totals(table.frame, "value")
    )
    # A second catch-up finds nothing to repair.
    with spy_writes() as spy:
        again = await stats.async_import_history(
            hass, ELEC, stats.month_windows(months_of(table.frame)), read, reconcile=True
        )
    assert again.result.hours_written == 0 and spy.call_count == 0


def test_month_windows_start_at_the_rebuild_start() -> None:
    start = datetime(2025, 2, 10, 5, tzinfo=UTC)
    assert stats.month_windows(["2025-03", "2025-01", "2025-02"], start) == [
        (start, datetime(2025, 3, 1, tzinfo=UTC)),
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),
    ]


async def test_a_first_import_logs_its_progress_per_statistic(
    recorder_mock: Recorder, hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    frame = make_intervals(ELEC, M0, 90 * 24, minutes=60, seed=105)
    caplog.set_level("INFO", logger="custom_components.meterlake.statistics")
    with patch.object(stats, "PROGRESS_SECONDS", 0.0):
        await stats.async_import_meter(hass, ELEC, frame)
    consumption = stats.statistic_id(ELEC.key, "consumption")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(consumption)]
    # One line per month: January's 744 hours, then February's 672, then March's 744.
    assert lines == [
        f"{consumption}: 744/2160 hours imported",
        f"{consumption}: 1416/2160 hours imported",
        f"{consumption}: 2160/2160 hours imported",
    ]
    cost = stats.statistic_id(ELEC.key, "cost")
    assert f"{cost}: 2160/2160 hours imported" in caplog.messages


async def test_progress_lines_are_spaced_out(
    recorder_mock: Recorder, hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """At most one line per statistic every PROGRESS_SECONDS, and always the last one."""
    frame = make_intervals(ELEC, M0, 90 * 24, minutes=60, seed=106)
    caplog.set_level("INFO", logger="custom_components.meterlake.statistics")
    await stats.async_import_meter(hass, ELEC, frame)
    consumption = stats.statistic_id(ELEC.key, "consumption")
    lines = [m for m in caplog.messages if m.startswith(consumption)]
    assert lines == [
        f"{consumption}: 744/2160 hours imported",
        f"{consumption}: 2160/2160 hours imported",
    ]


async def test_a_poll_within_a_month_logs_no_progress(
    recorder_mock: Recorder, hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="custom_components.meterlake.statistics")
    await stats.async_import_meter(hass, ELEC, make_intervals(ELEC, T0, 3 * 48, seed=107))
    assert not [m for m in caplog.messages if "hours imported" in m]
