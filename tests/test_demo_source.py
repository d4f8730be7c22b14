"""The demo household: deterministic, shaped, with a replacement, a tariff change and spikes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS
from custom_components.meterlake.sources import demo


async def _run[T](target: Callable[..., T], *args: Any) -> T:
    return target(*args)


NOW = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)


def _source(now: datetime = NOW) -> demo.DemoSource:
    return demo.DemoSource(_run, now=lambda: now)


def _fetch(meter: Any, start: datetime, end: datetime, now: datetime = NOW) -> Any:
    return asyncio.run(_source(now).async_fetch(meter, start, end))


ELEC, GAS = demo.METERS


def test_same_window_same_numbers_whatever_the_request() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    whole = _fetch(ELEC, start, start + timedelta(days=2)).intervals
    first = _fetch(ELEC, start, start + timedelta(days=1)).intervals
    second = _fetch(ELEC, start + timedelta(days=1), start + timedelta(days=2)).intervals
    pieces = pd.concat([first, second], ignore_index=True)
    assert list(whole.columns) == list(INTERVAL_COLUMNS)
    assert len(whole) == 96
    assert whole["value"].tolist() == pieces["value"].tolist()
    assert whole["cost"].tolist() == pieces["cost"].tolist()


def test_data_lags_an_hour_behind_now() -> None:
    result = _fetch(ELEC, NOW - timedelta(hours=6), NOW)
    # 12:10 minus the hour of lag, floored to the half-hour: 11:00 is the end of the newest slot.
    assert result.complete_until == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert result.intervals["end"].max() == pd.Timestamp("2026-11-20 11:00", tz="UTC")
    assert len(result.intervals) == 9  # 06:30 .. 10:30


def test_meter_replacement_switches_serial() -> None:
    result = _fetch(
        ELEC, demo.REPLACED_AT - timedelta(hours=1), demo.REPLACED_AT + timedelta(hours=1)
    )
    serials = result.intervals.set_index("start")["serial"]
    assert (
        serials[pd.Timestamp(demo.REPLACED_AT - timedelta(minutes=30))]
        == demo.OLD_ELECTRICITY_SERIAL
    )
    assert serials[pd.Timestamp(demo.REPLACED_AT)] == demo.NEW_ELECTRICITY_SERIAL
    assert result.intervals["meter"].unique().tolist() == ["demo_electricity"]


def test_cost_is_value_times_time_of_use_rate() -> None:
    day = datetime(2026, 11, 18, tzinfo=UTC)  # GMT: local hours equal UTC hours
    frame = _fetch(ELEC, day, day + timedelta(days=1)).intervals.set_index("start")
    night = frame.loc[pd.Timestamp("2026-11-18 03:30", tz="UTC")]
    peak = frame.loc[pd.Timestamp("2026-11-18 17:00", tz="UTC")]
    day_slot = frame.loc[pd.Timestamp("2026-11-18 12:00", tz="UTC")]
    assert night["rate"] == 0.10
    assert peak["rate"] == 0.36
    assert day_slot["rate"] == 0.24
    assert peak["cost"] == peak["value"] * 0.36
    assert frame["currency"].unique().tolist() == ["GBP"]


def test_tariff_change_applies_from_its_start() -> None:
    before = _fetch(ELEC, demo.TARIFF_CHANGE - timedelta(hours=1), demo.TARIFF_CHANGE).intervals
    after = _fetch(ELEC, demo.TARIFF_CHANGE, demo.TARIFF_CHANGE + timedelta(hours=1)).intervals
    # 23:00-24:00 BST on 30 June is the old tariff's day band; midnight starts the new night band.
    assert set(before["rate"]) == {0.26}
    assert set(after["rate"]) == {0.10}


def test_tariff_changes_at_local_midnight() -> None:
    london = ZoneInfo("Europe/London")
    assert demo.TARIFF_CHANGE.astimezone(london) == datetime(2026, 7, 1, tzinfo=london)
    assert demo.TARIFF_CHANGE.astimezone(UTC) == datetime(2026, 6, 30, 23, tzinfo=UTC)
    result = _fetch(
        ELEC, datetime(2026, 6, 29, 23, tzinfo=UTC), datetime(2026, 7, 1, 23, tzinfo=UTC)
    )
    rates = result.rates[result.rates["valid_from"] < pd.Timestamp("2026-07-01 23:00", tz="UTC")]
    tariffs_by_local_day = rates.groupby(rates["valid_from"].dt.tz_convert(london).dt.day)["tariff"]
    assert tariffs_by_local_day.unique().map(list).to_dict() == {
        30: [demo.ELECTRICITY_TARIFF_OLD],
        1: [demo.ELECTRICITY_TARIFF_NEW],
    }
    new_agreement = result.agreements.set_index("tariff").loc[demo.ELECTRICITY_TARIFF_NEW]
    assert new_agreement["valid_from"] == pd.Timestamp("2026-06-30 23:00", tz="UTC")


def test_gas_is_in_cubic_metres_with_energy_converted() -> None:
    day = datetime(2026, 1, 14, tzinfo=UTC)
    frame = _fetch(GAS, day, day + timedelta(days=1)).intervals
    assert frame["unit"].unique().tolist() == ["m³"]
    expected = frame["value"] * 1.02264 * 39.5 / 3.6
    assert frame["energy_kwh"].tolist() == pytest.approx(expected.tolist(), rel=1e-12)
    assert frame["cost"].tolist() == pytest.approx((frame["value"] * demo.GAS_RATE_PER_M3).tolist())
    # Heating in January: far more gas in the evening than at 03:00.
    by_hour = frame.groupby(frame["start"].dt.hour)["value"].sum()
    assert by_hour[19] > 5 * by_hour[3]


def test_winter_uses_more_than_summer_and_spikes_exist() -> None:
    winter = _fetch(ELEC, datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 24, tzinfo=UTC))
    summer = _fetch(ELEC, datetime(2026, 7, 10, tzinfo=UTC), datetime(2026, 7, 24, tzinfo=UTC))
    assert winter.intervals["value"].sum() > 1.3 * summer.intervals["value"].sum()
    frame = winter.intervals
    spikes = frame[frame["value"] > 1.0]
    assert not spikes.empty
    local = spikes["start"].dt.tz_convert("Europe/London")
    assert set(local.dt.hour) == {3}


def test_rates_reach_a_day_ahead_and_standing_charges_follow_agreements() -> None:
    result = _fetch(ELEC, NOW - timedelta(days=1), NOW)
    assert result.rates["valid_to"].max() >= pd.Timestamp(NOW + timedelta(hours=12))
    charges = result.standing_charges.set_index("tariff")["charge"]
    assert (
        charges[demo.ELECTRICITY_TARIFF_NEW] == demo.STANDING_CHARGES[demo.ELECTRICITY_TARIFF_NEW]
    )
    assert result.agreements["tariff"].tolist() == [
        demo.ELECTRICITY_TARIFF_OLD,
        demo.ELECTRICITY_TARIFF_NEW,
    ]
    assert result.unrated == 0
    assert result.audit[0].rows == len(result.intervals)


def test_window_in_the_future_is_empty() -> None:
    result = _fetch(ELEC, NOW + timedelta(hours=1), NOW + timedelta(hours=3))
    assert result.intervals.empty
    assert result.complete_until is None


# --- sub-meters (for composed meters) ----------------------------------------------------------


def _sub_fetch(key: str, start: datetime, end: datetime) -> Any:
    source = demo.DemoSource(_run, now=lambda: NOW, submeters=True)
    meter = next(m for m in source.meters if m.key == key)
    return asyncio.run(source.async_fetch(meter, start, end))


def test_entries_without_submeters_keep_two_meters() -> None:
    assert [m.key for m in _source().meters] == [demo.ELECTRICITY, demo.GAS]


def test_heat_pump_and_ev_charger_stay_inside_the_house_total() -> None:
    start, end = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 17, tzinfo=UTC)
    house = _fetch(ELEC, start, end).intervals.set_index("start")["value"]
    heat_pump = _sub_fetch(demo.HEAT_PUMP, start, end).intervals.set_index("start")["value"]
    charger = _sub_fetch(demo.EV_CHARGER, start, end).intervals.set_index("start")["value"]
    assert len(heat_pump) == len(charger) == len(house) == 7 * 48
    assert (house - heat_pump - charger).min() >= 0
    assert heat_pump.sum() > 0
    assert charger.sum() > 0


def test_boiler_is_metered_in_kwh_at_four_fifths_of_the_gas() -> None:
    start = datetime(2026, 11, 10, tzinfo=UTC)
    gas = _fetch(GAS, start, start + timedelta(days=1)).intervals.set_index("start")["value"]
    boiler = _sub_fetch(demo.BOILER, start, start + timedelta(days=1)).intervals
    assert set(boiler["unit"]) == {"kWh"}
    kwh_per_m3 = 1.02264 * 39.5 / 3.6
    expected = (gas * kwh_per_m3 * demo.BOILER_SHARE).round(3)
    assert boiler.set_index("start")["value"].tolist() == pytest.approx(expected.tolist())


def test_registers_then_smart_meter_add_up_to_the_house_total() -> None:
    start = demo.REGISTERS_REPLACED_AT - timedelta(days=1)
    end = demo.REGISTERS_REPLACED_AT + timedelta(days=1)
    house = _fetch(ELEC, start, end).intervals.set_index("start")["value"]
    parts = [
        _sub_fetch(key, start, end).intervals.set_index("start")["value"]
        for key in (demo.DAY_REGISTER, demo.NIGHT_REGISTER, demo.SMART_METER)
    ]
    day, night, smart = parts
    assert day.index.max() < pd.Timestamp(demo.REGISTERS_REPLACED_AT)
    assert smart.index.min() == pd.Timestamp(demo.REGISTERS_REPLACED_AT)
    combined = day.add(night, fill_value=0).add(smart, fill_value=0)
    assert combined.tolist() == pytest.approx(house.tolist())
    assert (night[night.index.hour >= 8] == 0).all()
