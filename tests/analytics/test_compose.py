"""Composed meters (analytics.compose): hand-computed cases and hypothesis properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
import math

from hypothesis import HealthCheck, given, settings, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import compose as c
from custom_components.meterlake.analytics.intervals import ns_of
from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MINUTE = 60_000_000_000
HALF_HOUR = 30 * MINUTE
QUARTER = 15 * MINUTE
T0 = ns_of(datetime(2024, 6, 1, tzinfo=UTC))
INGESTED = datetime(2026, 1, 1, tzinfo=UTC)

# multiples of 1/1024 up to 64: sums and differences of a few hundred are exact in binary
dyadic = st.integers(min_value=0, max_value=65536).map(lambda k: k / 1024)


def half_hours(values: list[float], *, first: int = T0, **kwargs: object) -> c.Slots:
    start = first + HALF_HOUR * np.arange(len(values), dtype=np.int64)
    return c.slots_of(start, start + HALF_HOUR, values, **kwargs)  # type: ignore[arg-type]


def local_midnight(day: str, tz: str) -> int:
    return int(pd.Timestamp(day).tz_localize(tz).value)


def same(got: np.ndarray, expected: list[float]) -> bool:
    """Equal element by element, NaN where NaN is expected."""
    return np.array_equal(got, np.asarray(expected, dtype=np.float64), equal_nan=True)


def within_ulps(got: float, exact: Fraction, ulps: int) -> bool:
    return abs(Fraction(got) - exact) <= ulps * Fraction(math.ulp(float(exact)))


# --------------------------------------------------------------------- virtual: hand cases


def test_everything_else_with_a_missing_input_and_a_late_arrival() -> None:
    house = half_hours([2.0, 1.5, 3.0, 1.0, 2.5], rate=[0.25] * 5)
    heat_pump = half_hours(
        [0.5, 0.5, 1.0, 0.25, 0.5], quality=["measured", "estimated", *["measured"] * 3]
    )
    # the EV charger's third half-hour has not arrived; its fifth is known to be unknown
    ev_all = half_hours([0.0, 0.75, 1.5, 0.25, math.nan])
    ev = c.Slots(
        *(
            np.delete(a, 2)
            for a in (ev_all.start, ev_all.end, ev_all.value, ev_all.rate, ev_all.quality)
        )
    )
    terms = [(-1, heat_pump), (-1, ev)]
    result = c.virtual(house, terms, tz="Europe/London")
    assert same(result.slots.value, [1.5, 0.25, math.nan, 0.5, math.nan])
    assert result.slots.start.tolist() == house.start.tolist()
    assert result.slots.rate is house.rate
    assert result.slots.quality.tolist() == ["measured", "estimated", *["measured"] * 3]
    assert result.clipped.empty
    assert list(result.clipped.columns) == ["day", "clipped"]
    assert same(result.clipped_by_slot, [0.0, 0.0, math.nan, 0.0, math.nan])

    # the late half-hour arrives: only its own slot is recomputed, and it fills in
    lo, hi = c.affected_window(ev_all.start[2], ev_all.end[2], 30, tz="Europe/London")
    assert (lo, hi) == (int(ev_all.start[2]), int(ev_all.end[2]))
    fresh = ev_all
    part = c.virtual(
        c.window(house, lo, hi),
        [(-1, c.window(heat_pump, lo, hi)), (-1, c.window(fresh, lo, hi))],
        tz="Europe/London",
    )
    assert same(part.slots.value, [0.5])
    merged = c.splice(result.slots, part.slots, lo, hi)
    full = c.virtual(house, [(-1, heat_pump), (-1, fresh)], tz="Europe/London")
    assert same(merged.value, [1.5, 0.25, 0.5, 0.5, math.nan])
    assert same(full.slots.value, merged.value.tolist())
    assert merged.quality.tolist() == full.slots.quality.tolist()


def test_fireplace_is_gas_minus_the_boiler_in_cubic_meters() -> None:
    cv, z = 39.5, 1.02264
    gas = half_hours([1.0, 0.8, 0.2], rate=[0.7, 0.7, 0.7])  # m³
    boiler_kwh = half_hours([5.0, 8.0, 3.0])
    boiler = c.convert_slots(boiler_kwh, "kWh", "m³", calorific_value=cv, volume_correction=z)
    # 5 kWh = 5 x 3.6 / (39.5 x 1.02264) m³ = 18 / 40.39428 = 0.4456076... m³
    per_kwh = Fraction("3.6") / (Fraction("39.5") * Fraction("1.02264"))
    for got, kwh in zip(boiler.value.tolist(), (5, 8, 3), strict=True):
        assert within_ulps(got, kwh * per_kwh, 2)
    assert round(boiler.value[0], 7) == 0.4456076
    result = c.virtual(gas, [(-1, boiler)], tz="Europe/London")
    fireplace = result.slots.value
    assert within_ulps(fireplace[0], 1 - 5 * per_kwh, 8)
    assert within_ulps(fireplace[1], Fraction("0.8") - 8 * per_kwh, 64)
    assert round(fireplace[0], 7) == 0.5543924
    assert round(fireplace[1], 7) == 0.0870278
    # 0.2 m³ of gas but 3 kWh (0.2674 m³) through the boiler: clipped at 0, accounted
    assert fireplace[2] == 0.0
    assert result.clipped["day"].tolist() == [date(2024, 6, 1)]
    assert result.clipped["clipped"].iloc[0] == pytest.approx(float(3 * per_kwh) - 0.2, rel=1e-12)
    # rate stays the gas rate per m³
    assert result.slots.rate.tolist() == [0.7, 0.7, 0.7]


def test_clip_accounting_is_per_local_day() -> None:
    # London summer time: 23:00 UTC on 1 June is already 2 June locally
    first = ns_of(datetime(2024, 6, 1, 21, 30, tzinfo=UTC))
    base = half_hours([1.0, 0.0, 2.0, 0.5, 0.25, 1.0], first=first)
    term = half_hours([1.5, 0.25, 1.0, 1.0, 1.0, 1.5], first=first)
    result = c.virtual(base, [(-1, term)], tz="Europe/London")
    # raw differences, 21:30 to 00:00 UTC: -0.5, -0.25, 1.0, -0.5, -0.75, -0.5
    # in London (BST) 23:00 UTC is already 2 June: 1 June loses 0.75, 2 June 1.75
    assert same(result.slots.value, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    assert result.clipped["day"].tolist() == [date(2024, 6, 1), date(2024, 6, 2)]
    assert result.clipped["clipped"].tolist() == [0.75, 1.75]
    assert result.clipped_by_slot.tolist() == [0.5, 0.25, 0.0, 0.5, 0.75, 0.5]
    # in UTC only the last half-hour is 2 June
    utc_days = c.virtual(base, [(-1, term)], tz="UTC").clipped
    assert utc_days["day"].tolist() == [date(2024, 6, 1), date(2024, 6, 2)]
    assert utc_days["clipped"].tolist() == [2.0, 0.5]
    # a day without clipping has no row
    calm = c.virtual(base, [(-1, term)], tz="Asia/Tokyo").clipped
    assert calm["day"].tolist() == [date(2024, 6, 2)]


def test_virtual_checks_signs_and_grids() -> None:
    base = half_hours([1.0, 2.0])
    with pytest.raises(ValueError, match="sign"):
        c.virtual(base, [(2, base)], tz="UTC")
    longer = c.slots_of([T0], [T0 + 2 * HALF_HOUR], [1.0])
    with pytest.raises(c.MisalignedSlots, match="resample first"):
        c.virtual(base, [(1, longer)], tz="UTC")
    same_starts = c.slots_of([T0], [T0 + HALF_HOUR + 1], [1.0])
    with pytest.raises(c.MisalignedSlots, match="resample first"):
        c.virtual(base, [(1, same_starts)], tz="UTC")
    shorter = c.slots_of(base.start, base.end - MINUTE, [1.0, 1.0])
    with pytest.raises(c.MisalignedSlots, match="resample first"):
        c.virtual(base, [(1, shorter)], tz="UTC")
    # a term with no slot at all: everything unknown, nothing silently 0
    nothing = c.virtual(base, [(1, c.empty_slots())], tz="UTC")
    assert np.isnan(nothing.slots.value).all()
    assert len(c.virtual(c.empty_slots(), [(1, base)], tz="UTC").slots) == 0
    # a term's slots off the base's grid are ignored, a term beyond its end too
    shifted = half_hours([5.0, 5.0, 5.0], first=T0 + HALF_HOUR)
    assert same(c.virtual(base, [(1, shifted)], tz="UTC").slots.value, [math.nan, 7.0])
    assert same(c.virtual(base, [(1, base)], tz="UTC").slots.value, [2.0, 4.0])
    assert same(c.virtual(base, [], tz="UTC").slots.value, [1.0, 2.0])


def test_virtual_aligns_every_kind_of_grid() -> None:
    # daily slots are 23, 24 or 25 hours long: aligned by search, not by slot number
    tz = "Europe/London"
    lo, hi = local_midnight("2024-03-30", tz), local_midnight("2024-04-02", tz)
    start = np.arange(lo, hi, HALF_HOUR, dtype=np.int64)
    halves = c.slots_of(start, start + HALF_HOUR, np.ones(len(start)))
    days = c.resample(halves, 1440, tz=tz)
    assert ((days.end - days.start) // (60 * MINUTE)).tolist() == [24, 23, 24]
    spring = c.window(days, int(days.start[1]), int(days.end[1]))
    assert same(c.virtual(days, [(-1, spring)], tz=tz).slots.value, [math.nan, 0.0, math.nan])
    # slots far apart: no lookup table across years, a search instead
    far = half_hours([1.0], first=T0 + 10 * 365 * 48 * HALF_HOUR)
    base = half_hours([1.0, 2.0])
    assert np.isnan(c.virtual(base, [(1, far)], tz="UTC").slots.value).all()
    # nanosecond slots in 2024 are beyond float precision: also a search
    tiny = c.slots_of([T0 + 1, T0 + 2, T0 + 3], [T0 + 2, T0 + 3, T0 + 4], [1.0, 2.0, 3.0])
    gappy = c.slots_of([T0 + 1, T0 + 3], [T0 + 2, T0 + 4], [1.0, 1.0])
    assert same(c.virtual(tiny, [(-1, gappy)], tz="UTC").slots.value, [0.0, math.nan, 2.0])


# ---------------------------------------------------------------------- master: hand cases


def test_master_day_night_registers_then_a_smart_meter() -> None:
    # the old meter's day and night registers report every half-hour (0 outside their hours)
    day = half_hours([0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 9.0], rate=[0.30] * 7)
    night = half_hours([1.5, 0.5, 0.0, 0.0, 0.0, 0.0, 9.0], rate=[0.10] * 7)
    # the smart meter was installed before the switch date; its early data is not used
    smart = half_hours([7.0, 7.0, 7.0, 7.0, 0.25, 1.75, 0.5, 1.0], rate=[0.20] * 8)
    switch = int(T0 + 4 * HALF_HOUR)
    periods = [
        c.Period(start=switch, end=None, inputs=(smart,)),  # any order
        c.Period(start=None, end=switch, inputs=(day, night)),
    ]
    series = c.master(periods)
    assert series.start.tolist() == smart.start.tolist()
    assert same(series.value, [1.5, 0.5, 1.0, 2.0, 0.25, 1.75, 0.5, 1.0])
    assert np.allclose(series.rate, [0.10, 0.10, 0.30, 0.30, 0.20, 0.20, 0.20, 0.20])
    # where both registers read 0 the rate is their mean (cost 0 either way)
    zero = c.master([c.Period(None, None, (day, night))])
    assert zero.value[4] == 0.0
    assert zero.rate[4] == pytest.approx(0.20)
    # the reading runs on from the old meter's last reading, without a jump at the switch
    reading = c.meter_reading(series, offset=12345.0)
    assert reading.tolist() == [
        12346.5,
        12347.0,
        12348.0,
        12350.0,
        12350.25,
        12352.0,
        12352.5,
        12353.5,
    ]
    steps = np.diff(np.append(12345.0, reading))
    assert steps.tolist() == series.value.tolist()
    assert reading[4] - reading[3] == 0.25


def test_master_missing_register_and_gaps() -> None:
    day = half_hours([1.0, 1.0, 1.0, 1.0], rate=[0.3, 0.3, math.nan, 0.3])
    # the night register's fourth half-hour never arrived, its second is unknown
    night = half_hours([0.0, math.nan, 0.0], rate=[0.1] * 3, quality="estimated")
    series = c.master([c.Period(None, None, (day, night))])
    assert same(series.value, [1.0, math.nan, 1.0, math.nan])
    # (1 x 0.3 + 0 x 0.1) / 1; unknown value; an unknown rate; a missing register
    assert same(series.rate, [0.3, math.nan, math.nan, math.nan])
    assert series.quality.tolist() == ["estimated", "estimated", "estimated", "measured"]
    # a gap between periods is simply missing; a period without data adds nothing
    gap = c.master(
        [
            c.Period(None, int(T0 + HALF_HOUR), (day,)),
            c.Period(int(T0 + 2 * HALF_HOUR), int(T0 + 3 * HALF_HOUR), (day,)),
            c.Period(int(T0 + 9 * HALF_HOUR), None, (day,)),
        ]
    )
    assert gap.start.tolist() == [T0, T0 + 2 * HALF_HOUR]
    reading = c.meter_reading(series)
    assert reading.tolist() == [1.0, 1.0, 2.0, 2.0]


def test_master_refuses_bad_periods() -> None:
    meter = half_hours([1.0])
    with pytest.raises(ValueError, match="at least one period"):
        c.master([])
    with pytest.raises(c.OverlappingPeriods):
        c.master([c.Period(None, T0 + 10, (meter,)), c.Period(T0 + 5, None, (meter,))])
    with pytest.raises(c.OverlappingPeriods):
        c.master([c.Period(None, None, (meter,)), c.Period(T0, T0 + 1, (meter,))])
    with pytest.raises(ValueError, match="end after"):
        c.master([c.Period(T0, T0, (meter,))])
    with pytest.raises(ValueError, match="at least one input"):
        c.master([c.Period(None, None, ())])
    assert isinstance(c.OverlappingPeriods("x"), ValueError)
    assert c.master([c.Period(T0 + HALF_HOUR, None, (meter,))]).start.tolist() == []
    with pytest.raises(ValueError, match="nothing to sum"):
        c.sum_slots([])
    assert c.sum_slots([meter]) is meter
    with pytest.raises(ValueError, match="finite"):
        c.meter_reading(meter, offset=math.nan)


# ------------------------------------------------------------------- preferred: hand cases


def test_preferred_falls_back_estimated_then_is_replaced() -> None:
    smart = half_hours([1.0, math.nan, 0.5], rate=[0.2, 0.2, 0.2])
    smart_late = c.Slots(
        *(a[:2] for a in (smart.start, smart.end, smart.value, smart.rate, smart.quality))
    )
    sensor = half_hours([1.1, 0.9, 0.6, 0.7], rate=[math.nan] * 4)
    result = c.preferred([smart_late, sensor])
    assert same(result.value, [1.0, 0.9, 0.6, 0.7])
    assert same(result.rate, [0.2, math.nan, math.nan, math.nan])
    assert result.quality.tolist() == ["measured", "estimated", "estimated", "estimated"]
    # the smart meter publishes its missing half-hours: they replace the fallback
    published = half_hours([1.0, 0.8, 0.5, 0.75], rate=[0.2] * 4)
    again = c.preferred([published, sensor])
    assert same(again.value, [1.0, 0.8, 0.5, 0.75])
    assert again.quality.tolist() == ["measured"] * 4
    # nobody knows a slot: NaN, with the quality of the first input that has it
    unknown = c.preferred([half_hours([math.nan]), half_hours([math.nan, math.nan])])
    assert np.isnan(unknown.value).all()
    assert unknown.quality.tolist() == ["measured", "estimated"]
    with pytest.raises(ValueError, match="at least one input"):
        c.preferred([])
    assert c.preferred([sensor]) is sensor


# ------------------------------------------------------------------- resample: hand cases


@pytest.mark.parametrize("tz", ["Europe/London", "Europe/Paris"])
@pytest.mark.parametrize(("day", "hours"), [("2024-03-31", 23), ("2024-10-27", 25)])
def test_resample_quarter_hours_to_days_on_dst_days(tz: str, day: str, hours: int) -> None:
    lo = local_midnight(day, tz)
    hi = local_midnight(str(date.fromisoformat(day) + timedelta(days=1)), tz)
    assert hi - lo == hours * 60 * MINUTE
    start = np.arange(lo, hi, QUARTER, dtype=np.int64)
    n = len(start)
    assert n == 4 * hours
    values = (np.arange(n) % 7 + 1) / 8
    rates = np.where(np.arange(n) % 2 == 0, 0.25, 0.5)
    quarters = c.slots_of(start, start + QUARTER, values, rates)
    halves = c.resample(quarters, 30, tz=tz)
    hourly = c.resample(halves, 60, tz=tz)
    daily = c.resample(hourly, 1440, tz=tz)
    assert (len(halves), len(hourly), len(daily)) == (2 * hours, hours, 1)
    assert (daily.start.tolist(), daily.end.tolist()) == ([lo], [hi])
    assert daily.value[0] == values.sum()
    assert halves.value.tolist() == (values[0::2] + values[1::2]).tolist()
    assert hourly.value.sum() == values.sum()
    # cost-weighted rate: the cost of the day over its consumption
    assert daily.rate[0] == pytest.approx((values * rates).sum() / values.sum(), rel=1e-12)
    assert halves.rate[0] == pytest.approx((values[0] * 0.25 + values[1] * 0.5) / values[:2].sum())
    # straight to daily from quarter-hours gives the same day
    direct = c.resample(quarters, 1440, tz=tz)
    assert direct.value.tolist() == daily.value.tolist()
    # one quarter-hour missing: its half-hour, hour and day are unknown, not short
    holed = c.Slots(
        *(np.delete(a, 5) for a in (start, start + QUARTER, values, rates, quarters.quality))
    )
    h30 = c.resample(holed, 30, tz=tz)
    assert len(h30) == 2 * hours
    assert np.isnan(h30.value[2]) and np.isnan(h30.rate[2])
    assert np.isnan(h30.value).sum() == 1
    assert np.isnan(c.resample(c.resample(h30, 60, tz=tz), 1440, tz=tz).value[0])
    # the daily grid passes through untouched
    assert c.resample(daily, 1440, tz=tz) is daily


def test_resample_hand_computed_rates_and_quality() -> None:
    quarters = c.slots_of(
        T0 + QUARTER * np.arange(6),
        T0 + QUARTER * np.arange(1, 7),
        [1.0, 3.0, 0.0, 0.0, 2.0, 2.0],
        [0.1, 0.3, 0.2, 0.4, math.nan, 0.5],
        ["measured", "corrected", "measured", "interpolated", "estimated", "bogus"],
    )
    halves = c.resample(quarters, 30, tz="UTC")
    assert halves.value.tolist() == [4.0, 0.0, 4.0]
    # (1 x 0.1 + 3 x 0.3) / 4 = 0.25; nothing used: plain mean 0.3; an unknown rate: NaN
    assert halves.rate[0] == pytest.approx(0.25)
    assert halves.rate[1] == pytest.approx(0.3)
    assert np.isnan(halves.rate[2])
    assert halves.quality.tolist() == ["corrected", "interpolated", "estimated"]
    assert c.resample(halves, 30, tz="UTC") is halves
    assert len(c.resample(c.empty_slots(), 60, tz="UTC")) == 0
    # a missing value (present slot, NaN) leaves the hour unknown too
    nan = half_hours([1.0, math.nan])
    assert np.isnan(c.resample(nan, 60, tz="UTC").value).all()


def test_resample_refuses_what_it_cannot_sum() -> None:
    hours = c.slots_of([T0], [T0 + 60 * MINUTE], [1.0])
    with pytest.raises(c.MisalignedSlots, match="cross"):
        c.resample(hours, 30, tz="UTC")
    odd = c.slots_of([T0 + 45 * MINUTE], [T0 + 75 * MINUTE], [1.0])
    with pytest.raises(c.MisalignedSlots, match="cross"):
        c.resample(odd, 60, tz="UTC")
    overlapping = c.Slots(
        np.asarray([T0, T0 + QUARTER], dtype=np.int64),
        np.asarray([T0 + HALF_HOUR, T0 + HALF_HOUR], dtype=np.int64),
        np.ones(2),
        np.ones(2),
        np.asarray(["measured"] * 2, dtype=object),
    )
    with pytest.raises(c.MisalignedSlots, match="overlap"):
        c.resample(overlapping, 60, tz="UTC")
    with pytest.raises(ValueError, match="divide a day"):
        c.resample(hours, 50, tz="UTC")
    with pytest.raises(ValueError, match="divide a day"):
        c.resample(hours, 2880, tz="UTC")
    with pytest.raises(TypeError):
        c.resample(hours, 30.0, tz="UTC")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.resample(hours, True, tz="UTC")


def test_affected_window_widens_to_composed_slots() -> None:
    tz = "Europe/London"
    at = ns_of(datetime(2024, 10, 27, 12, 10, tzinfo=UTC))
    assert c.affected_window(at, at + MINUTE, 30, tz=tz) == (at - 10 * MINUTE, at + 20 * MINUTE)
    assert c.affected_window(at, at + MINUTE, 60, tz=tz) == (at - 10 * MINUTE, at + 50 * MINUTE)
    day = (local_midnight("2024-10-27", tz), local_midnight("2024-10-28", tz))
    assert c.affected_window(at, at + MINUTE, 1440, tz=tz) == day
    assert day[1] - day[0] == 25 * 60 * MINUTE
    assert c.affected_window(at, at + MINUTE, 30, tz=tz, whole_local_days=True) == day
    # an end exactly on a slot boundary does not reach the next slot
    boundary = ns_of(datetime(2024, 10, 27, 12, 0, tzinfo=UTC))
    assert c.affected_window(boundary, boundary + HALF_HOUR, 30, tz=tz) == (
        boundary,
        boundary + HALF_HOUR,
    )
    # a day that starts off the UTC grid (India, UTC+05:30) still gives whole hours
    india = c.affected_window(at, at + MINUTE, 60, tz="Asia/Kolkata", whole_local_days=True)
    assert india[0] % (60 * MINUTE) == 0 and india[1] % (60 * MINUTE) == 0
    assert india[1] - india[0] == 25 * 60 * MINUTE
    with pytest.raises(ValueError, match="empty"):
        c.affected_window(at, at, 30, tz=tz)


# ------------------------------------------------------------------------ units: hand cases


def test_convert_between_units() -> None:
    gas = {"calorific_value": 39.5, "volume_correction": 1.02264}
    values = np.asarray([1500.0, 43.0])
    assert c.convert(values, "Wh", "kWh", **gas).tolist() == [1.5, 0.043]
    assert c.convert(np.asarray([0.043]), "MWh", "kWh", **gas).tolist() == [43.0]
    assert c.convert(np.asarray([43.0]), "kWh", "MWh", **gas).tolist() == [0.043]
    assert c.convert(np.asarray([1.0]), "kWh", "MJ", **gas).tolist() == [3.6]
    assert c.convert(np.asarray([3.6]), "GJ", "kWh", **gas).tolist() == [1000.0]
    assert c.convert(np.asarray([1500.0]), "L", "m³", **gas).tolist() == [1.5]
    assert c.convert(np.asarray([1.5]), "m3", "L", **gas).tolist() == [1500.0]
    assert c.convert(np.asarray([1.0]), "CCF", "ft³", **gas)[0] == pytest.approx(100.0)
    out = c.convert(values, "kWh", "kWh", **gas)
    assert out.tolist() == values.tolist() and out is not values
    # 100 m³ x 1.02264 x 39.5 / 3.6 = 1122.063333 kWh, and back
    kwh = c.convert(np.asarray([100.0]), "m³", "kWh", **gas)[0]
    assert kwh == 100.0 * 1.02264 * 39.5 / 3.6
    assert c.convert(np.asarray([kwh]), "kWh", "m³", **gas)[0] == pytest.approx(100.0, rel=1e-15)
    assert c.convert(np.asarray([100.0]), "m³", "MWh", **gas)[0] == pytest.approx(1.122063333)
    # the German bill: Brennwert 11.2 kWh/m³, z-number 0.95 -> 10 m³ = 106.4 kWh
    german = c.convert(
        np.asarray([10.0]), "m³", "kWh", calorific_value=11.2 * 3.6, volume_correction=0.95
    )
    assert german[0] == pytest.approx(106.4, rel=1e-15)
    ft3 = c.convert(np.asarray([35.3146667214886]), "ft³", "kWh", **gas)[0]
    assert ft3 == pytest.approx(1.02264 * 39.5 / 3.6, rel=1e-12)


def test_incompatible_units() -> None:
    gas = {"calorific_value": 39.5, "volume_correction": 1.02264}
    for a, b in (("kWh", "L"), ("gal", "kWh"), ("kWh", "W"), ("MW", "kWh"), ("foo", "bar")):
        assert not c.convertible(a, b)
        with pytest.raises(c.IncompatibleUnits):
            c.convert(np.asarray([1.0]), a, b, **gas)
    assert isinstance(c.IncompatibleUnits("x"), ValueError)
    for a, b in (("kWh", "Wh"), ("m³", "L"), ("m³", "kWh"), ("kWh", "ft³"), ("CCF", "MJ")):
        assert c.convertible(a, b)
    # the gas figures are checked where they are used, and only there
    bad = {"calorific_value": 0.0, "volume_correction": 1.0}
    assert c.convert(np.asarray([1.0]), "kWh", "Wh", **bad).tolist() == [1000.0]
    with pytest.raises(ValueError, match="calorific"):
        c.convert(np.asarray([1.0]), "m³", "kWh", **bad)
    with pytest.raises(ValueError, match="correction"):
        c.convert(np.asarray([1.0]), "m³", "kWh", calorific_value=39.5, volume_correction=math.inf)


def test_convert_slots_keeps_the_cost() -> None:
    gas = {"calorific_value": 39.5, "volume_correction": 1.02264}
    wh = half_hours([1500.0, 250.0], rate=[0.0002, 0.0004])
    kwh = c.convert_slots(wh, "Wh", "kWh", **gas)
    assert kwh.value.tolist() == [1.5, 0.25]
    assert kwh.rate.tolist() == pytest.approx([0.2, 0.4])
    assert (kwh.value * kwh.rate).tolist() == pytest.approx((wh.value * wh.rate).tolist())
    assert c.convert_slots(wh, "Wh", "Wh", **gas) is wh


# ------------------------------------------------------------------ frames and helpers


def test_slots_from_and_to_frame() -> None:
    tz_start = pd.date_range("2024-06-01 01:00", periods=3, freq="30min", tz="Europe/London")
    frame = pd.DataFrame(
        {
            "meter": "m",
            "start": tz_start[[2, 0, 1, 0]],
            "end": (tz_start + pd.Timedelta(minutes=30))[[2, 0, 1, 0]],
            "value": [3.0, 1.0, 2.0, 1.5],
            "rate": [0.1, 0.2, 0.3, 0.4],
            "quality": ["measured", "estimated", "measured", "corrected"],
            "ingested_at": pd.to_datetime(
                ["2025-01-01", "2025-01-03", "2025-01-01", "2025-01-02"], utc=True
            ),
        }
    )
    slots = c.slots_from_frame(frame)
    assert slots.start.tolist() == [ns_of(t.to_pydatetime()) for t in tz_start]
    # the newest ingestion of the first half-hour wins
    assert slots.value.tolist() == [1.0, 2.0, 3.0]
    assert slots.quality.tolist() == ["estimated", "measured", "measured"]
    no_ingest = c.slots_from_frame(frame.drop(columns=["ingested_at", "rate", "quality"]))
    assert no_ingest.value.tolist() == [1.5, 2.0, 3.0]  # the later row wins
    assert np.isnan(no_ingest.rate).all()
    assert no_ingest.quality.tolist() == ["measured"] * 3
    assert len(c.slots_from_frame(frame.iloc[:0])) == 0
    with pytest.raises(ValueError, match="one meter"):
        c.slots_from_frame(frame.assign(meter=["a", "b", "a", "a"]))
    with pytest.raises(ValueError, match="null"):
        c.slots_from_frame(frame.assign(end=[tz_start[0], pd.NaT, tz_start[1], tz_start[2]]))
    with pytest.raises(c.MisalignedSlots, match="end after"):
        c.slots_from_frame(frame.assign(end=frame["start"]))

    composed = half_hours([1.0, math.nan, 2.0], rate=[0.25, 0.25, math.nan])
    out = c.slots_to_frame(
        composed,
        meter="everything_else",
        supplier="meterlake",
        kind="electricity",
        unit="Wh",
        currency="GBP",
        ingested_at=INGESTED,
    )
    assert list(out.columns) == list(INTERVAL_COLUMNS)
    assert out["value"].tolist() == [1.0, 2.0]  # the unknown slot has no row
    assert out["energy_kwh"].tolist() == [0.001, 0.002]
    assert same(out["cost"].to_numpy(), [0.25, math.nan])
    assert out["start"].iloc[0] == pd.Timestamp(T0, tz="UTC")
    assert str(out["start"].dtype) == "datetime64[ns, UTC]"
    assert out["ingested_at"].iloc[0] == pd.Timestamp(INGESTED)
    assert out["serial"].isna().all()
    back = c.slots_from_frame(out)
    assert back.value.tolist() == [1.0, 2.0]
    everything = c.slots_to_frame(
        composed,
        meter="fireplace",
        supplier="meterlake",
        kind="gas",
        unit="m³",
        currency=None,
        ingested_at=INGESTED,
        calorific_value=40.0,
        volume_correction=1.0,
        known_only=False,
    )
    assert len(everything) == 3
    assert same(everything["energy_kwh"].to_numpy(), [40 / 3.6, math.nan, 80 / 3.6])
    water = c.slots_to_frame(
        composed,
        meter="w",
        supplier="s",
        kind="water",
        unit="L",
        currency=None,
        ingested_at=INGESTED,
    )
    assert water["energy_kwh"].isna().all()
    empty = c.slots_to_frame(
        c.empty_slots(),
        meter="w",
        supplier="s",
        kind="gas",
        unit="m³",
        currency=None,
        ingested_at=INGESTED,
    )
    assert empty.empty and list(empty.columns) == list(INTERVAL_COLUMNS)


def test_slots_helpers() -> None:
    meter = half_hours([1.0, 2.0, 3.0, 4.0])
    assert c.window(meter, T0 - 1, T0 + 10 * HALF_HOUR) is meter
    middle = c.window(meter, T0 + HALF_HOUR, T0 + 3 * HALF_HOUR)
    assert middle.value.tolist() == [2.0, 3.0]
    assert np.shares_memory(middle.value, meter.value)
    update = half_hours([9.0], first=T0 + HALF_HOUR)
    spliced = c.splice(meter, update, T0 + HALF_HOUR, T0 + 3 * HALF_HOUR)
    assert spliced.value.tolist() == [1.0, 9.0, 4.0]
    with pytest.raises(c.MisalignedSlots, match="outside"):
        c.splice(meter, update, T0, T0 + HALF_HOUR)
    assert len(c.splice(c.empty_slots(), c.empty_slots(), T0, T0 + 1)) == 0
    with pytest.raises(ValueError, match="same length"):
        c.Slots(meter.start, meter.end[:2], meter.value, meter.rate, meter.quality)
    with pytest.raises(c.MisalignedSlots, match="ascending"):
        c.slots_of([T0, T0], [T0 + 1, T0 + 2], [1.0, 1.0])
    with pytest.raises(c.MisalignedSlots, match="overlap"):
        c.slots_of([T0, T0 + 1], [T0 + 5, T0 + 6], [1.0, 1.0])
    # null quality counts as measured when combined; a virtual meter keeps its base's words
    nulls = c.slots_of([T0], [T0 + HALF_HOUR], [1.0], quality=np.asarray([None], dtype=object))
    assert c.sum_slots([nulls, nulls]).quality.tolist() == ["measured"]
    assert c.virtual(nulls, [(1, nulls)], tz="UTC").slots.quality.tolist() == [None]
    odd = c.slots_of([T0], [T0 + HALF_HOUR], [1.0], quality="corrected")
    assert c.virtual(odd, [(1, nulls)], tz="UTC").slots.quality.tolist() == ["corrected"]
    worse = c.virtual(
        odd, [(1, c.slots_of([T0], [T0 + HALF_HOUR], [1.0], quality="estimated"))], tz="UTC"
    )
    assert worse.slots.quality.tolist() == ["estimated"]
    assert odd.quality.tolist() == ["corrected"]  # the base's labels are not touched
    # labels are matched by object first, then by text: every spelling of a label counts
    text = "".join(["meas", "ured"])
    labels = np.asarray(
        [None, "measured", text, "estimated", math.nan, pd.NA, 3, "interpolated", text],
        dtype=object,
    )
    assert text is not "measured"  # noqa: F632 - two objects with the same text on purpose
    mixed = c.slots_of(
        T0 + HALF_HOUR * np.arange(9), T0 + HALF_HOUR * np.arange(1, 10), np.ones(9), quality=labels
    )
    assert c.sum_slots([mixed, mixed]).quality.tolist() == [
        "measured", "measured", "measured", "estimated", "measured", "measured", "estimated",
        "interpolated", "measured",
    ]  # fmt: skip
    again = c.slots_of(
        mixed.start,
        mixed.end,
        mixed.value,
        quality=labels[[1, 2, 7, 0]][[0, 1, 2, 3, 0, 1, 2, 3, 0]],
    )
    assert c.sum_slots([again, again]).quality.tolist() == [
        "measured",
        "measured",
        "interpolated",
        "measured",
    ] * 2 + ["measured"]
    # inputs on different cadences cannot be combined slot by slot
    halves = half_hours([1.0, 1.0])
    hour = c.slots_of([T0], [T0 + 60 * MINUTE], [2.0])
    with pytest.raises(c.MisalignedSlots, match="different lengths"):
        c.preferred([halves, hour])
    with pytest.raises(c.MisalignedSlots, match="overlap"):
        c.preferred([hour, half_hours([1.0], first=T0 + HALF_HOUR)])


# ------------------------------------------------------------------------------ properties


def _series(values: list[float | None], first: int = T0) -> c.Slots:
    """Half-hours from T0; None = the slot is absent, NaN stays a known-unknown slot."""
    present = [i for i, v in enumerate(values) if v is not None]
    start = first + HALF_HOUR * np.asarray(present, dtype=np.int64)
    return c.slots_of(start, start + HALF_HOUR, [values[i] for i in present])


maybe_value = st.one_of(dyadic, dyadic, dyadic, st.none(), st.just(math.nan))


@SETTINGS
@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(
            st.lists(dyadic, min_size=n, max_size=n),
            st.lists(dyadic, min_size=n, max_size=n),
            st.lists(dyadic, min_size=n, max_size=n),
            st.lists(dyadic, min_size=n, max_size=n),
            st.integers(min_value=0, max_value=n),
        )
    )
)
def test_virtual_of_master_equals_the_hand_sum(
    case: tuple[list[float], list[float], list[float], list[float], int],
) -> None:
    day, night, smart, heat_pump, split = case
    switch = T0 + split * HALF_HOUR
    house = c.master(
        [
            c.Period(None, switch, (_series(list(day)), _series(list(night)))),
            c.Period(switch, None, (_series(list(smart)),)),
        ]
    )
    result = c.virtual(house, [(-1, _series(list(heat_pump)))], tz="Europe/London")
    expected = []
    clipped = 0.0
    for i in range(len(day)):
        total = (day[i] + night[i] if i < split else smart[i]) - heat_pump[i]
        expected.append(max(total, 0.0))
        clipped += max(-total, 0.0)
    assert result.slots.value.tolist() == expected
    assert math.fsum(result.clipped["clipped"]) == clipped


@SETTINGS
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.lists(st.lists(maybe_value, min_size=n, max_size=n), min_size=1, max_size=4)
    ),
    st.lists(st.sampled_from([1, -1]), min_size=4, max_size=4),
)
def test_a_missing_input_always_propagates(
    columns: list[list[float | None]], signs: list[int]
) -> None:
    n = len(columns[0])
    base_values = [0.0 if v is None else v for v in columns[0]]  # the base has every slot
    base = _series(list(base_values))
    terms = [(sign, _series(col)) for sign, col in zip(signs, columns[1:], strict=False)]
    result = c.virtual(base, terms, tz="Europe/Paris")

    def missing(value: float | None) -> bool:
        return value is None or math.isnan(value)

    expected = [
        missing(base_values[i]) or any(missing(col[i]) for col in columns[1:]) for i in range(n)
    ]
    assert np.isnan(result.slots.value).tolist() == expected
    # and summing registers propagates it the same way
    summed = c.sum_slots([_series(col) for col in columns])
    for i, start in enumerate(T0 + HALF_HOUR * np.arange(n)):
        where = np.flatnonzero(summed.start == start)
        if any(col[i] is not None for col in columns):
            assert np.isnan(summed.value[where[0]]) == any(missing(col[i]) for col in columns)
        else:
            assert len(where) == 0


@SETTINGS
@given(
    st.lists(st.tuples(dyadic, dyadic, st.booleans()), min_size=1, max_size=200),
    st.sampled_from(["Europe/London", "Europe/Paris", "UTC", "America/New_York"]),
    st.integers(min_value=0, max_value=48 * 250),
)
def test_clipped_and_result_add_up(
    rows: list[tuple[float, float, bool]], tz: str, offset: int
) -> None:
    first = ns_of(datetime(2024, 3, 1, tzinfo=UTC)) + offset * HALF_HOUR
    base = _series([a if known else math.nan for a, _, known in rows], first=first)
    term = _series([b for _, b, _ in rows], first=first)
    result = c.virtual(base, [(-1, term)], tz=tz)
    unclipped = base.value - term.value
    known = ~np.isnan(unclipped)
    positive = np.where(known & (unclipped > 0), unclipped, 0.0)
    total_clipped = math.fsum(result.clipped["clipped"])
    # the result is the positive part; what clipping removed is the negative part, per day
    assert np.array_equal(result.slots.value, np.where(known, positive, np.nan), equal_nan=True)
    assert math.fsum(result.slots.value[known]) == math.fsum(positive)
    assert total_clipped + math.fsum(unclipped[known]) == math.fsum(positive)
    assert (result.clipped["clipped"] > 0).all()
    assert result.clipped["day"].is_unique
    # per slot: the negative part where known, NaN where not; the days add those up
    by_slot = result.clipped_by_slot
    assert np.array_equal(np.isnan(by_slot), ~known)
    assert by_slot[known].tolist() == np.maximum(-unclipped[known], 0.0).tolist()
    assert math.fsum(by_slot[known]) == total_clipped


@SETTINGS
@given(
    st.sampled_from(["Europe/London", "Europe/Paris"]),
    st.sampled_from(["2024-03-30", "2024-03-31", "2024-10-26", "2024-10-27", "2024-06-01"]),
    st.integers(min_value=1, max_value=3),
    st.data(),
)
def test_resample_preserves_totals_when_complete(
    tz: str, first_day: str, days: int, data: st.DataObject
) -> None:
    lo = local_midnight(first_day, tz)
    hi = local_midnight(str(date.fromisoformat(first_day) + timedelta(days=days)), tz)
    start = np.arange(lo, hi, QUARTER, dtype=np.int64)
    values = data.draw(st.lists(dyadic, min_size=len(start), max_size=len(start)))
    quarters = c.slots_of(start, start + QUARTER, values, np.full(len(start), 0.25))
    total = math.fsum(values)
    for cadence in (30, 60, 1440):
        coarse = c.resample(quarters, cadence, tz=tz)
        assert not np.isnan(coarse.value).any()
        assert math.fsum(coarse.value) == total
        assert coarse.end[-1] == hi and coarse.start[0] == lo
        assert math.fsum(coarse.value * coarse.rate) == pytest.approx(total * 0.25, abs=1e-9)
    assert len(c.resample(quarters, 1440, tz=tz)) == days


@SETTINGS
@given(
    st.lists(st.one_of(dyadic, st.just(math.nan)), max_size=200),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.integers(min_value=0, max_value=200),
)
def test_meter_reading_never_decreases(values: list[float], offset: float, cut: int) -> None:
    slots = _series(list(values))
    reading = c.meter_reading(slots, offset=offset)
    assert not np.isnan(reading).any()
    assert (np.diff(np.append(offset, reading)) >= 0).all()
    # a window recomputed from the reading before it gives the same floats
    cut = min(cut, len(values))
    if 0 < cut < len(values):
        tail = c.window(slots, int(slots.start[cut]), int(slots.end[-1]))
        again = c.meter_reading(tail, offset=float(reading[cut - 1]))
        assert again.tolist() == reading[cut:].tolist()


@SETTINGS
@given(
    st.integers(min_value=2, max_value=60).flatmap(
        lambda n: st.tuples(
            st.lists(maybe_value, min_size=n, max_size=n),
            st.lists(maybe_value, min_size=n, max_size=n),
            st.lists(maybe_value, min_size=n, max_size=n),
            st.lists(
                st.sampled_from(["measured", "estimated", "corrected"]), min_size=n, max_size=n
            ),
            st.integers(min_value=0, max_value=n - 1),
            st.integers(min_value=1, max_value=n),
            st.integers(min_value=0, max_value=n),
        )
    )
)
def test_a_recomputed_window_is_the_window_of_the_full_recompute(
    case: tuple[
        list[float | None], list[float | None], list[float | None], list[str], int, int, int
    ],
) -> None:
    old, new, term_values, labels, first, length, split = case
    first_at = ns_of(datetime(2024, 10, 26, 20, tzinfo=UTC))  # across the autumn change
    old_meter, new_meter, term = (_series(v, first=first_at) for v in (old, new, term_values))
    term = c.slots_of(
        term.start, term.end, term.value, quality=np.asarray(labels, dtype=object)[: len(term)]
    )
    switch = first_at + split * HALF_HOUR
    tz = "Europe/London"

    def chain(cut: slice | None) -> tuple[c.Slots, pd.DataFrame, np.ndarray]:
        def take(s: c.Slots) -> c.Slots:
            return s if cut is None else c.window(s, cut.start, cut.stop)

        house = c.master(
            [c.Period(None, switch, (take(old_meter),)), c.Period(switch, None, (take(new_meter),))]
        )
        rest = c.virtual(house, [(-1, take(term))], tz=tz)
        twice = c.virtual(rest.slots, [(1, take(term)), (-1, take(term))], tz=tz)
        return twice.slots, rest.clipped, c.meter_reading(twice.slots)

    full, clipped, reading = chain(None)
    changed = first_at + first * HALF_HOUR
    lo, hi = c.affected_window(changed, changed + length * MINUTE, 30, tz=tz, whole_local_days=True)
    at = int(np.searchsorted(full.start, lo))
    offset = float(reading[at - 1]) if at else 0.0
    part, part_clipped, _ = chain(slice(lo, hi))
    again = c.meter_reading(part, offset=offset)
    inside = c.window(full, lo, hi)
    assert part.start.tolist() == inside.start.tolist()
    assert np.array_equal(part.value, inside.value, equal_nan=True)
    assert part.quality.tolist() == inside.quality.tolist()
    assert again.tolist() == reading[at : at + len(part)].tolist()
    days = dict(zip(clipped["day"], clipped["clipped"], strict=True))
    for day, amount in zip(part_clipped["day"], part_clipped["clipped"], strict=True):
        assert days[day] == amount


def test_memos_never_outlive_their_arrays() -> None:
    import dataclasses

    meter = half_hours([1.0, 2.0], quality=["measured", "estimated"])
    assert c.sum_slots([meter, meter]).quality.tolist() == ["measured", "estimated"]
    relabelled = dataclasses.replace(
        meter, quality=np.asarray(["corrected", "measured"], dtype=object)
    )
    assert c.sum_slots([relabelled, relabelled]).quality.tolist() == ["corrected", "measured"]
    assert c.virtual(relabelled, [(1, meter)], tz="UTC").slots.quality.tolist() == [
        "corrected",
        "estimated",
    ]
    moved = dataclasses.replace(meter, start=meter.start + HALF_HOUR, end=meter.end + HALF_HOUR)
    assert same(c.virtual(meter, [(1, moved)], tz="UTC").slots.value, [math.nan, 3.0])
    assert repr(meter).count("_rank") == 0
    made = c.VirtualResult(meter, pd.DataFrame({"day": [], "clipped": []}))
    assert made.clipped_by_slot.tolist() == []
