"""The demo household: deterministic, shaped, with a replacement, a tariff change and spikes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

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
    # 2026-07-01 00:00 UTC is 01:00 BST: night band in both tariffs.
    assert set(before["rate"]) == {0.12}
    assert set(after["rate"]) == {0.10}


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
