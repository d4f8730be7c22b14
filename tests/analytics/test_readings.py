"""Meters from readings (analytics.readings): hand-computed cases and hypothesis properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import math
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import compose as c, readings as r
from custom_components.meterlake.analytics.intervals import ns_of
from custom_components.meterlake.analytics.units import to_kwh

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LONDON = "Europe/London"
PARIS = "Europe/Paris"
INGESTED = datetime(2026, 1, 1, tzinfo=UTC)


def local(tz: str, year: int, month: int, day: int, hour: int = 0) -> int:
    """A local wall time in `tz` as epoch ns."""
    return ns_of(datetime(year, month, day, hour, tzinfo=ZoneInfo(tz)))


def utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return ns_of(datetime(year, month, day, hour, tzinfo=UTC))


def pair_sums(result: r.Spread) -> dict[int, list[float]]:
    """Each pair's shares, in order."""
    out: dict[int, list[float]] = {}
    parts = result.parts()
    for pair, value in zip(parts.pair.tolist(), parts.value.tolist(), strict=True):
        out.setdefault(pair, []).append(value)
    return out


def by_day(result: r.Spread, tz: str) -> dict[date, float]:
    zone = ZoneInfo(tz)
    return {
        datetime.fromtimestamp(start / 1e9, zone).date(): value
        for start, value in zip(
            result.slots.start.tolist(), result.slots.value.tolist(), strict=True
        )
    }


# --------------------------------------------------------------------------- hand-computed


def test_monthly_hand_readings_of_a_water_meter_over_dst_months() -> None:
    # Read at 08:00 local on the 1st. March to April loses an hour (743 h), October to November
    # gains one (745 h); the meter ran at 1/64, 1/128 and 1/32 m³ an hour in the three months.
    times = [
        local(LONDON, 2024, 3, 1, 8),
        local(LONDON, 2024, 4, 1, 8),
        local(LONDON, 2024, 5, 1, 8),
        local(LONDON, 2024, 10, 1, 8),
        local(LONDON, 2024, 11, 1, 8),
    ]
    values = [1000.0, 1000 + 743 / 64, 1000 + 743 / 64 + 720 / 128, 1100.0, 1100 + 745 / 32]
    cleaned = r.clean_readings(times, values, tolerance=0.001)
    assert cleaned.resets == []
    assert cleaned.cumulative.tolist() == values
    result = r.spread(
        cleaned.times, cleaned.cumulative, cadence_minutes=1440, tz=LONDON, max_gap_ns=32 * DAY
    )
    days = by_day(result, LONDON)
    # the first and last day of each run are known only in part: left out
    assert date(2024, 3, 1) not in days
    assert date(2024, 5, 1) not in days
    assert date(2024, 10, 1) not in days
    assert date(2024, 11, 1) not in days
    # May to October is longer than max_gap: missing, not invented
    assert not any(date(2024, 5, 2) <= day <= date(2024, 9, 30) for day in days)
    assert result.gaps == [(times[2], times[3])]
    expected = {
        date(2024, 3, 2): 24 / 64,
        date(2024, 3, 30): 24 / 64,
        date(2024, 3, 31): 23 / 64,  # 23 hours
        date(2024, 4, 1): 8 / 64 + 16 / 128,  # a share of both pairs
        date(2024, 4, 2): 24 / 128,
        date(2024, 4, 30): 24 / 128,
        date(2024, 10, 2): 24 / 32,
        date(2024, 10, 27): 25 / 32,  # 25 hours
        date(2024, 10, 31): 24 / 32,
    }
    for day, value in expected.items():
        assert days[day] == pytest.approx(value, abs=1e-12), day
    assert len(days) == 30 + 30 + 30  # 2-31 March, 1-30 April, 2-31 October
    assert set(result.slots.quality.tolist()) == {"interpolated"}
    lengths = (result.slots.end - result.slots.start) // HOUR
    assert sorted(set(lengths.tolist())) == [23, 24, 25]
    # each pair's shares add up to its reading difference exactly
    for pair, shares in pair_sums(result).items():
        difference = values[pair + 1] - values[pair]
        assert sum(shares) == difference
        assert math.fsum(shares) == difference


def test_pulse_counter_with_a_reset_and_an_outage_longer_than_max_gap() -> None:
    t0 = utc(2024, 1, 1)
    hours = [0, 1, 2, 3, 4, 5, 77, 78, 79]
    pulses = [100, 103, 107, 2, 5, 9, 20, 21, 25]
    cleaned = r.clean_readings([t0 + h * HOUR for h in hours], pulses, tolerance=0)
    assert cleaned.resets == [r.Reset(t0 + 3 * HOUR, 107.0, 2.0, "reset")]
    assert cleaned.cumulative.tolist() == [100, 103, 107, 109, 112, 116, 127, 128, 132]
    result = r.spread(
        cleaned.times, cleaned.cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=2 * HOUR
    )
    slots = result.slots
    assert ((slots.start - t0) // HOUR).tolist() == [0, 1, 2, 3, 4, 77, 78]
    # the counter restarted from 0 and counted 2 in the hour of the reset
    assert slots.value.tolist() == [3, 4, 2, 3, 4, 1, 4]
    assert set(slots.quality.tolist()) == {"measured"}
    assert result.gaps == [(t0 + 5 * HOUR, t0 + 77 * HOUR)]
    # the outage's 11 pulses are nowhere: missing, not spread over 72 hours
    assert float(slots.value.sum()) == 132 - 100 - 11
    # an unknown slot never reaches the interval table
    frame = c.slots_to_frame(
        slots,
        meter="pulses",
        supplier="local",
        kind="water",
        unit="L",
        currency=None,
        ingested_at=INGESTED,
    )
    assert len(frame) == 7
    assert frame["quality"].tolist() == ["measured"] * 7


def test_energy_counter_in_wh_converted_by_the_caller() -> None:
    t0 = utc(2024, 6, 1)
    wh = np.asarray([1_234_000.0, 1_234_500.0, 1_235_750.0, 1_236_000.0])
    times = t0 + HOUR * np.arange(4, dtype=np.int64)
    kwh = to_kwh(wh, "Wh")
    cleaned = r.clean_readings(times, kwh, tolerance=0.001)
    result = r.spread(
        cleaned.times, cleaned.cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=HOUR
    )
    assert result.slots.value.tolist() == [0.5, 1.25, 0.25]
    # spreading Wh and converting the slots gives the same
    in_wh = r.spread(
        times,
        r.clean_readings(times, wh, tolerance=1).cumulative,
        cadence_minutes=60,
        tz="UTC",
        max_gap_ns=HOUR,
    )
    converted = c.convert_slots(in_wh.slots, "Wh", "kWh", calorific_value=39.5, volume_correction=1)
    assert converted.value.tolist() == [0.5, 1.25, 0.25]
    frame = c.slots_to_frame(
        result.slots,
        meter="counter",
        supplier="local",
        kind="electricity",
        unit="kWh",
        currency="GBP",
        ingested_at=INGESTED,
    )
    assert frame["energy_kwh"].tolist() == [0.5, 1.25, 0.25]
    assert frame["start"].tolist() == [pd.Timestamp(t0 + h * HOUR, tz=UTC) for h in range(3)]


def test_jitter_within_tolerance_never_makes_a_negative_consumption() -> None:
    times = utc(2024, 6, 1) + HOUR * np.arange(6, dtype=np.int64)
    values = [10.0, 10.5, 10.49, 10.495, 11.0, 10.999]
    cleaned = r.clean_readings(times, values, tolerance=0.02)
    assert cleaned.cumulative.tolist() == [10.0, 10.5, 10.5, 10.5, 11.0, 11.0]
    assert [(reset.before, reset.after, reset.kind) for reset in cleaned.resets] == [
        (10.5, 10.49, "jitter"),
        (10.5, 10.495, "jitter"),
        (11.0, 10.999, "jitter"),
    ]
    result = r.spread(
        cleaned.times, cleaned.cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=HOUR
    )
    assert result.slots.value.tolist() == [0.5, 0.0, 0.0, 0.5, 0.0]
    # held at the level: the reading after a jitter counts from 10.5, not from 10.49
    assert float(result.slots.value.sum()) == 1.0


def test_a_slow_creep_down_beyond_the_tolerance_is_a_reset() -> None:
    times = utc(2024, 6, 1) + HOUR * np.arange(4, dtype=np.int64)
    cleaned = r.clean_readings(times, [10.0, 9.99, 9.98, 9.97], tolerance=0.025)
    # compared with the level (10), not the reading before: the third drop is 0.03
    assert [reset.kind for reset in cleaned.resets] == ["jitter", "jitter", "reset"]
    assert cleaned.cumulative.tolist() == [10.0, 10.0, 10.0, 10.0 + 9.97]


def test_a_counter_wrapping_at_99999() -> None:
    times = utc(2024, 6, 1) + HOUR * np.arange(5, dtype=np.int64)
    cleaned = r.clean_readings(times, [99990, 99995, 99999, 4, 12], tolerance=0, rollover=100_000)
    assert cleaned.cumulative.tolist() == [99990, 99995, 99999, 100004, 100012]
    assert cleaned.resets == [r.Reset(int(times[3]), 99999.0, 4.0, "wrap")]
    result = r.spread(
        cleaned.times, cleaned.cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=HOUR
    )
    assert result.slots.value.tolist() == [5, 4, 5, 8]
    # the same counter without a rollover: a reset that counted 4 from 0
    assert r.clean_readings(times, [99990, 99995, 99999, 4, 12], tolerance=0).cumulative[3] == (
        99999 + 4
    )


def test_drops_that_are_no_wrap() -> None:
    times = utc(2024, 6, 1) + HOUR * np.arange(3, dtype=np.int64)
    # back less than half a turn: more likely a reset than a wrap of more than half a turn
    half = r.clean_readings(times, [99990, 60000, 60005], tolerance=0, rollover=100_000)
    assert [reset.kind for reset in half.resets] == ["reset"]
    assert half.cumulative.tolist() == [99990, 159990, 159995]
    # a reading at or above the rollover cannot come from that counter
    above = r.clean_readings(times, [100_500, 10, 20], tolerance=0, rollover=100_000)
    assert [reset.kind for reset in above.resets] == ["reset"]
    # a negative reading after a drop: restarted at it, nothing counted for that stretch
    negative = r.clean_readings(times, [50, -5, -2], tolerance=0, rollover=100)
    assert negative.cumulative.tolist() == [50, 50, 53]


def test_a_new_meter_with_the_old_meters_last_reading() -> None:
    times = utc(2024, 6, 1) + HOUR * np.arange(5, dtype=np.int64)
    # the old meter is read at 02:00 (5432.5) and a new one put in reading 0.25
    values = [5430.0, 5431.0, 5432.5, 1.25, 3.25]
    cleaned = r.clean_readings(times, values, tolerance=0.01, new_meter=[(int(times[2]), 0.25)])
    assert cleaned.times.tolist() == times.tolist()
    assert cleaned.cumulative.tolist() == [5430, 5431, 5432.5, 5433.5, 5435.5]
    assert not cleaned.unknown.any()
    assert cleaned.resets == [r.Reset(int(times[2]), 5432.5, 0.25, "new_meter")]
    result = r.spread(
        cleaned.times,
        cleaned.cumulative,
        cadence_minutes=60,
        tz="UTC",
        max_gap_ns=HOUR,
        unknown=cleaned.unknown,
    )
    assert result.slots.value.tolist() == [1.0, 1.5, 1.0, 2.0]


def test_a_new_meter_without_the_old_meters_last_reading_leaves_a_gap() -> None:
    t0 = utc(2024, 6, 1)
    times = [t0, t0 + HOUR, t0 + 3 * HOUR, t0 + 4 * HOUR]
    # the new meter went in at 02:00 reading 0; the old one was last read at 01:00
    cleaned = r.clean_readings(
        times, [700.0, 701.0, 0.5, 2.0], tolerance=0, new_meter=[(t0 + 2 * HOUR, 0.0)]
    )
    assert cleaned.times.tolist() == [t0 + h * HOUR for h in range(5)]
    assert cleaned.cumulative.tolist() == [700, 701, 701, 701.5, 703]
    assert cleaned.unknown.tolist() == [False, False, True, False, False]
    assert cleaned.resets == [r.Reset(t0 + 2 * HOUR, 701.0, 0.0, "new_meter")]
    result = r.spread(
        cleaned.times,
        cleaned.cumulative,
        cadence_minutes=60,
        tz="UTC",
        max_gap_ns=HOUR,
        unknown=cleaned.unknown,
    )
    assert ((result.slots.start - t0) // HOUR).tolist() == [0, 2, 3]
    assert result.slots.value.tolist() == [1.0, 0.5, 1.5]
    assert result.gaps == [(t0 + HOUR, t0 + 2 * HOUR)]


def test_new_meter_markers_at_the_edges() -> None:
    t0 = utc(2024, 6, 1)
    times = [t0 + HOUR, t0 + 2 * HOUR]
    # before every reading: the series starts at the new meter's first reading
    first = r.clean_readings(times, [5.0, 6.0], tolerance=0, new_meter=[(t0, 4.0)])
    assert first.cumulative.tolist() == [4, 5, 6]
    assert not first.unknown.any()
    [declared] = first.resets
    assert (declared.time, declared.after, declared.kind) == (t0, 4.0, "new_meter")
    assert math.isnan(declared.before)  # there was no old meter's reading
    # on the last reading: nothing after it yet, only the event
    last = r.clean_readings(times, [5.0, 6.0], tolerance=0, new_meter=[(t0 + 2 * HOUR, 0.0)])
    assert last.cumulative.tolist() == [5, 6]
    assert last.resets == [r.Reset(t0 + 2 * HOUR, 6.0, 0.0, "new_meter")]
    # two markers at one time: the last wins; a first reading below the new meter's start
    # within the tolerance is jitter, beyond it a reset
    twice = r.clean_readings(
        [t0, t0 + HOUR, t0 + 2 * HOUR],
        [5.0, 9.99, 12.0],
        tolerance=0.02,
        new_meter=[(t0, 3.0), (t0, 10.0)],
    )
    assert twice.cumulative.tolist() == [5.0, 5.0, 7.0]
    assert [reset.kind for reset in twice.resets] == ["new_meter", "jitter"]
    below = r.clean_readings([t0, t0 + HOUR], [5.0, 2.0], tolerance=0, new_meter=[(t0, 10.0)])
    assert below.cumulative.tolist() == [5.0, 7.0]
    assert [reset.kind for reset in below.resets] == ["new_meter", "reset"]
    # a marker right after another one's reading: the point of its own wins
    both = r.clean_readings(
        [t0, t0 + 2 * HOUR],
        [5.0, 8.0],
        tolerance=0,
        new_meter=[(t0, 0.0), (t0 + HOUR, 1.0)],
    )
    assert both.times.tolist() == [t0, t0 + HOUR, t0 + 2 * HOUR]
    assert both.cumulative.tolist() == [5.0, 5.0, 12.0]
    assert both.unknown.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="finite"):
        r.clean_readings(times, [5.0, 6.0], tolerance=0, new_meter=[(t0, math.nan)])


def test_unsorted_readings_duplicates_and_non_numbers() -> None:
    t0 = utc(2024, 6, 1)
    cleaned = r.clean_readings(
        [t0 + 2 * HOUR, t0, t0 + HOUR, t0 + HOUR, t0 + 3 * HOUR],
        [3.0, 1.0, 1.5, 2.0, math.nan],
        tolerance=0,
    )
    # the last reading given for 01:00 wins; NaN is no reading
    assert cleaned.times.tolist() == [t0, t0 + HOUR, t0 + 2 * HOUR]
    assert cleaned.cumulative.tolist() == [1.0, 2.0, 3.0]
    empty = r.clean_readings([], [], tolerance=0)
    assert len(empty.times) == 0
    assert empty.resets == []


def test_many_resets_are_found_one_after_another() -> None:
    # a saw tooth: every 5th reading a reset, past several stretches of the search
    times = utc(2024, 1, 1) + HOUR * np.arange(3000, dtype=np.int64)
    values = (np.arange(3000) % 5).astype(np.float64)
    values[:1200] = np.arange(1200, dtype=np.float64)  # a long run first: the stretch grows
    cleaned = r.clean_readings(times, values, tolerance=0)
    assert len(cleaned.resets) == len(np.flatnonzero(np.diff(values) < 0))
    assert np.array_equal(np.diff(cleaned.cumulative), np.where(np.diff(values) < 0, 0, 1))


def test_readings_every_minute_into_hours() -> None:
    # 60 readings in an hour: many pairs inside one slot (summed by reduceat)
    t0 = utc(2024, 6, 1)
    times = t0 + MINUTE * np.arange(3 * 60 + 1, dtype=np.int64)
    used = np.resize([0.001, 0.002, 0.004], len(times) - 1)
    cumulative = np.concatenate([[100.0], 100.0 + np.cumsum(used)])
    result = r.spread(times, cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=HOUR)
    assert len(result.slots) == 3
    assert set(result.slots.quality.tolist()) == {"measured"}
    for hour in range(3):
        assert result.slots.value[hour] == pytest.approx(
            cumulative[60 * (hour + 1)] - cumulative[60 * hour], rel=1e-12
        )
    parts = result.parts()
    for index in range(3):
        assert result.slots.value[index] == pytest.approx(
            math.fsum(parts.value[parts.slot == index].tolist()), rel=1e-15
        )


def test_many_gaps() -> None:
    # every sixth hourly reading lost, max_gap one hour: a gap around each, 100 of them
    t0 = utc(2024, 6, 1)
    hours = [h for h in range(600) if h % 6 != 5]
    times = [t0 + h * HOUR + 30 * MINUTE for h in hours]
    cumulative = [float(h) for h in hours]
    result = r.spread(times, cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=HOUR)
    assert len(result.gaps) == 99
    # per run of five readings (h .. h+4 at half past), three whole hours in between
    assert len(result.slots) == 100 * 3
    assert set(result.slots.value.tolist()) == {1.0}
    starts = ((result.slots.start - t0) // HOUR).tolist()
    assert starts[:6] == [1, 2, 3, 7, 8, 9]
    assert set(result.slots.quality.tolist()) == {"interpolated"}


def test_a_meter_read_again_after_years() -> None:
    # hourly readings for a day, then again five years later: far more hours than readings
    t0 = utc(2019, 1, 1)
    later = utc(2024, 1, 1)
    times = [t0 + h * HOUR for h in range(25)] + [later + h * HOUR for h in range(25)]
    cumulative = [float(h) for h in range(25)] + [1000.0 + h for h in range(25)]
    result = r.spread(times, cumulative, cadence_minutes=60, tz="UTC", max_gap_ns=2 * HOUR)
    assert len(result.slots) == 48
    assert set(result.slots.value.tolist()) == {1.0}
    assert result.slots.start[24] == later
    assert result.gaps == [(t0 + 24 * HOUR, later)]


def test_readings_on_the_hour_are_measured_and_sparse_ones_interpolated() -> None:
    t0 = utc(2024, 6, 1)
    # read a few seconds after the hour: still measured; every other hour: interpolated
    times = [t0 + 7_000_000_000, t0 + HOUR + 3_000_000_000, t0 + 2 * HOUR + 1_000_000_000]
    times += [t0 + 4 * HOUR + 1_000_000_000]
    result = r.spread(
        times, [0.0, 1.0, 2.0, 4.0], cadence_minutes=60, tz="UTC", max_gap_ns=3 * HOUR
    )
    assert ((result.slots.start - t0) // HOUR).tolist() == [1, 2, 3]
    assert result.slots.quality.tolist() == ["measured", "interpolated", "interpolated"]
    # daily readings at 08:00 measure local days
    mornings = [local(PARIS, 2024, 3, day, 8) for day in range(29, 33 - 1)]
    daily = r.spread(mornings, [0.0, 1.0, 2.0], cadence_minutes=1440, tz=PARIS, max_gap_ns=2 * DAY)
    assert daily.slots.quality.tolist() == ["measured"]


def test_degree_day_weights() -> None:
    tz = LONDON
    times = [local(tz, 2024, 1, 1), local(tz, 2024, 1, 3)]
    weights = r.degree_day_weights({date(2024, 1, 1): 5.5, date(2024, 1, 2): 10.5}, tz=tz)
    assert weights.weight.tolist() == [10.0, 5.0]
    result = r.spread(
        times, [0.0, 30.0], cadence_minutes=1440, tz=tz, max_gap_ns=3 * DAY, weights=weights
    )
    assert result.slots.value.tolist() == pytest.approx([20.0, 10.0], abs=1e-12)
    assert math.fsum(result.slots.value.tolist()) == 30.0
    # hourly slots follow the day's weight: 10/240 and 5/240 of the total an hour
    hourly = r.spread(
        times, [0.0, 30.0], cadence_minutes=60, tz=tz, max_gap_ns=3 * DAY, weights=weights
    )
    assert hourly.slots.value[:24] == pytest.approx([30 / 36] * 24, abs=1e-12)
    assert hourly.slots.value[24:] == pytest.approx([30 / 72] * 24, abs=1e-12)
    assert sum(hourly.slots.value.tolist()) == 30.0
    # warm days only, a day without a temperature, readings past the profile: linear
    warm = r.degree_day_weights({date(2024, 1, 1): 20.0, date(2024, 1, 2): 21.0}, tz=tz)
    holes = r.degree_day_weights({date(2024, 1, 1): 5.5, date(2024, 1, 3): 10.5}, tz=tz)
    short = r.degree_day_weights({date(2024, 1, 1): 5.5}, tz=tz)
    for linear in (warm, holes, short, r.degree_day_weights({}, tz=tz)):
        plain = r.spread(
            times, [0.0, 30.0], cadence_minutes=1440, tz=tz, max_gap_ns=3 * DAY, weights=linear
        )
        assert plain.slots.value.tolist() == [15.0, 15.0]
    # a baseload: hot water whatever the weather
    summer = r.degree_day_weights(
        {date(2024, 1, 1): 20.0, date(2024, 1, 2): 12.5}, tz=tz, baseload=3.0
    )
    assert summer.weight.tolist() == [3.0, 6.0]
    with pytest.raises(ValueError, match="baseload"):
        r.degree_day_weights({date(2024, 1, 1): 5.0}, tz=tz, baseload=-1.0)


def test_weights_over_a_dst_day_are_a_rate() -> None:
    # the same weight on the 23-hour day: 23/24 of a 24-hour day's share
    tz = PARIS
    times = [local(tz, 2024, 3, 30), local(tz, 2024, 4, 1)]
    weights = r.degree_day_weights({date(2024, 3, 30): 5.5, date(2024, 3, 31): 5.5}, tz=tz)
    result = r.spread(
        times, [0.0, 47.0], cadence_minutes=1440, tz=tz, max_gap_ns=3 * DAY, weights=weights
    )
    assert result.slots.value.tolist() == pytest.approx([24.0, 23.0], abs=1e-12)
    assert sum(result.slots.value.tolist()) == 47.0


def test_monthly_weights_learned_from_the_meters_own_history() -> None:
    tz = LONDON
    # two years read at local midnight every day; January uses 3 an hour, July 1, others 2
    days = pd.date_range("2022-01-01", "2024-01-01", freq="D", tz=tz)
    times = np.asarray([ns_of(day.to_pydatetime()) for day in days], dtype=np.int64)
    rate = np.where(days.month[:-1] == 1, 3.0, np.where(days.month[:-1] == 7, 1.0, 2.0))
    hours = np.diff(times) / HOUR
    cumulative = np.concatenate([[0.0], np.cumsum(rate * hours)])
    profile = r.monthly_weights(times, cumulative, tz)
    mean = (3 + 1 + 2 * 10) / 12
    assert profile.factors[0] == pytest.approx(3 / mean)
    assert profile.factors[6] == pytest.approx(1 / mean)
    assert profile.factors[3] == pytest.approx(2 / mean)
    assert profile.tz == tz
    # hand readings mid-January to mid-February: January days get 3/2 of February's
    hand = [local(tz, 2025, 1, 15, 9), local(tz, 2025, 2, 15, 9)]
    weights = profile.weights(hand[0], hand[1])
    assert weights.edges.tolist() == [
        local(tz, 2025, 1, 1),
        local(tz, 2025, 2, 1),
        local(tz, 2025, 3, 1),
    ]
    result = r.spread(
        hand, [100.0, 200.0], cadence_minutes=1440, tz=tz, max_gap_ns=40 * DAY, weights=weights
    )
    per_day = by_day(result, tz)
    assert per_day[date(2025, 1, 20)] / per_day[date(2025, 2, 10)] == pytest.approx(1.5)
    assert math.fsum(result.parts().value.tolist()) == 100.0


def test_monthly_weights_without_anything_to_learn() -> None:
    ones = (1.0,) * 12
    t0 = utc(2024, 1, 1)
    assert r.monthly_weights([t0], [5.0], "UTC").factors == ones
    # nothing used: no shape
    assert r.monthly_weights([t0, t0 + DAY], [5.0, 5.0], "UTC").factors == ones
    # all pairs too far apart, or unknown
    assert r.monthly_weights([t0, t0 + DAY], [5.0, 6.0], "UTC", max_gap_ns=HOUR).factors == ones
    assert (
        r.monthly_weights([t0, t0 + DAY], [5.0, 6.0], "UTC", unknown=[False, True]).factors == ones
    )
    # months never seen get 1
    seen = r.monthly_weights([t0, t0 + DAY], [5.0, 6.0], "UTC")
    assert seen.factors == ones


def test_respread_window() -> None:
    times = [10, 20, 30]
    assert r.respread_window(times, 25) == (20, 30)
    assert r.respread_window(times, 20) == (10, 30)  # a corrected reading
    assert r.respread_window(times, 5) == (5, 10)
    assert r.respread_window(times, 35) == (30, 35)
    assert r.respread_window([], 7) == (7, 7)


def test_recomputing_the_window_of_a_late_hand_reading() -> None:
    tz = LONDON
    times = [local(tz, 2024, 3, day, 9) for day in (1, 11, 21, 31)]
    cumulative = [0.0, 10.0, 20.0, 30.0]
    before = r.spread(times, cumulative, cadence_minutes=1440, tz=tz, max_gap_ns=20 * DAY)
    late = local(tz, 2024, 3, 15, 18)
    new_times = sorted([*times, late])
    new_cumulative = [0.0, 10.0, 16.0, 20.0, 30.0]
    full = r.spread(new_times, new_cumulative, cadence_minutes=1440, tz=tz, max_gap_ns=20 * DAY)
    lo, hi = r.respread_window(times, late)
    assert (lo, hi) == (times[1], times[2])
    a, b = c.affected_window(lo, hi, 1440, tz=tz)
    t = np.asarray(new_times)
    first = int(np.searchsorted(t, a, side="right")) - 1
    last = int(np.searchsorted(t, b, side="left"))
    part = r.spread(
        t[first : last + 1],
        new_cumulative[first : last + 1],
        cadence_minutes=1440,
        tz=tz,
        max_gap_ns=20 * DAY,
    )
    spliced = c.splice(before.slots, c.window(part.slots, a, b), a, b)
    assert np.array_equal(spliced.start, full.slots.start)
    assert np.array_equal(spliced.value, full.slots.value)
    assert spliced.quality.tolist() == full.slots.quality.tolist()


def test_nothing_to_spread() -> None:
    t0 = utc(2024, 1, 1)
    for times, values in (([], []), ([t0], [1.0])):
        empty = r.spread(times, values, cadence_minutes=60, tz="UTC", max_gap_ns=HOUR)
        assert len(empty.slots) == 0
        assert empty.gaps == []
    apart = r.spread(
        [t0, t0 + 3 * HOUR, t0 + 4 * HOUR, t0 + 9 * HOUR],
        [1.0, 2.0, 3.0, 4.0],
        cadence_minutes=60,
        tz="UTC",
        max_gap_ns=2 * HOUR,
        unknown=[False, False, True, False],
    )
    assert len(apart.slots) == 0
    assert len(apart.parts().value) == 0
    assert apart.gaps == [(t0, t0 + 9 * HOUR)]


def test_refusals() -> None:
    t0 = utc(2024, 1, 1)
    with pytest.raises(ValueError, match="same length"):
        r.clean_readings([t0], [1.0, 2.0], tolerance=0)
    with pytest.raises(ValueError, match="tolerance"):
        r.clean_readings([t0], [1.0], tolerance=-1)
    with pytest.raises(ValueError, match="rollover"):
        r.clean_readings([t0], [1.0], tolerance=0, rollover=0)
    ok = {"cadence_minutes": 60, "tz": "UTC", "max_gap_ns": HOUR}
    with pytest.raises(ValueError, match="same length"):
        r.spread([t0], [1.0, 2.0], **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divide a day"):
        r.spread([t0], [1.0], cadence_minutes=7, tz="UTC", max_gap_ns=HOUR)
    with pytest.raises(TypeError, match="int"):
        r.spread([t0], [1.0], cadence_minutes=True, tz="UTC", max_gap_ns=HOUR)
    with pytest.raises(ValueError, match="max_gap_ns"):
        r.spread([t0], [1.0], cadence_minutes=60, tz="UTC", max_gap_ns=0)
    with pytest.raises(ValueError, match="ascending"):
        r.spread([t0, t0], [1.0, 2.0], **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        r.spread([t0, t0 + 1], [1.0, math.inf], **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="never decrease"):
        r.spread([t0, t0 + 1], [2.0, 1.0], **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one flag per reading"):
        r.spread([t0, t0 + 1], [1.0, 2.0], unknown=[False], **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one edge more"):
        r.Weights(np.asarray([1, 2], dtype=np.int64), np.asarray([1.0, 2.0]))
    with pytest.raises(ValueError, match="ascending"):
        r.Weights(np.asarray([2, 1], dtype=np.int64), np.asarray([1.0]))
    with pytest.raises(ValueError, match="not negative"):
        r.Weights(np.asarray([1, 2], dtype=np.int64), np.asarray([-1.0]))


# --------------------------------------------------------------------------- properties

TIMEZONES = st.sampled_from([LONDON, PARIS])
CADENCES = st.sampled_from([15, 30, 60, 1440])
# around the spring and autumn changes of 2024 in London and Paris
ORIGINS = st.sampled_from([utc(2024, 3, 29), utc(2024, 10, 25)])
# any float difference: small, large, not dyadic
increments = st.one_of(
    st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10_000).map(lambda k: k / 10),
    st.just(0.0),
)


@st.composite
def readings(
    draw: st.DrawFn, *, min_size: int = 2, max_size: int = 25
) -> tuple[list[int], list[float]]:
    """Ascending unique reading times (ns) over about 5 days, and cumulative readings."""
    origin = draw(ORIGINS)
    offsets = draw(
        st.lists(
            st.integers(min_value=0, max_value=5 * DAY),
            min_size=min_size,
            max_size=max_size,
            unique=True,
        )
    )
    times = sorted(origin + offset for offset in offsets)
    start = draw(st.floats(min_value=0, max_value=1e9, allow_nan=False))
    steps = draw(st.lists(increments, min_size=len(times) - 1, max_size=len(times) - 1))
    cumulative = [start]
    for step in steps:
        cumulative.append(max(cumulative[-1], cumulative[-1] + step))
    return times, cumulative


@st.composite
def profiles(draw: st.DrawFn, tz: str) -> r.Weights | None:
    """None (linear), or degree-day weights over the test days, some days unknown or warm."""
    if not draw(st.booleans()):
        return None
    first = date(2024, 3, 27) if draw(st.booleans()) else date(2024, 10, 23)
    temperatures = draw(
        st.lists(st.one_of(st.floats(-10, 25), st.just(math.nan)), min_size=12, max_size=12)
    )
    return r.degree_day_weights(
        {first + timedelta(days=k): value for k, value in enumerate(temperatures)}, tz=tz
    )


@SETTINGS
@given(
    data=readings(),
    cadence=CADENCES,
    tz=TIMEZONES,
    gap_hours=st.integers(1, 48),
    profile=st.data(),
)
def test_shares_add_up_to_each_pairs_difference_exactly(
    data: tuple[list[int], list[float]],
    cadence: int,
    tz: str,
    gap_hours: int,
    profile: st.DataObject,
) -> None:
    times, cumulative = data
    weights = profile.draw(profiles(tz))
    result = r.spread(
        times,
        cumulative,
        cadence_minutes=cadence,
        tz=tz,
        max_gap_ns=gap_hours * HOUR,
        weights=weights,
    )
    shares = pair_sums(result)
    for i in range(len(times) - 1):
        if times[i + 1] - times[i] > gap_hours * HOUR:
            assert i not in shares
            continue
        difference = cumulative[i + 1] - cumulative[i]
        assert sum(shares[i]) == difference
        assert math.fsum(shares[i]) == difference
        assert min(shares[i]) >= 0
    # a slot is the sum of its shares, left to right; shares of left-out slots are kept apart
    parts = result.parts()
    known = parts.slot >= 0
    assert np.array_equal(np.unique(parts.slot[known]), np.arange(len(result.slots)))
    for index in range(len(result.slots)):
        mine = parts.value[parts.slot == index].tolist()
        assert result.slots.value[index] == sum(mine)
        span = parts.end[parts.slot == index] - parts.start[parts.slot == index]
        assert int(span.sum()) == int(result.slots.end[index] - result.slots.start[index])
    # no slot overlaps a gap; every stretch not in a gap is covered by a slot or a left-out part
    for lo, hi in result.gaps:
        assert not ((result.slots.start < hi) & (result.slots.end > lo)).any()
    # quality: measured exactly where the readings nearest both boundaries are < half a slot off
    for start, end, quality in zip(
        result.slots.start.tolist(),
        result.slots.end.tolist(),
        result.slots.quality.tolist(),
        strict=True,
    ):
        near = [min(abs(when - edge) for when in times) for edge in (start, end)]
        expected = all(2 * d < end - start for d in near)
        assert quality == ("measured" if expected else "interpolated")


@SETTINGS
@given(
    origin=ORIGINS,
    cadence=CADENCES,
    tz=TIMEZONES,
    slots=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    data=st.data(),
)
def test_slots_of_readings_on_slot_boundaries_add_up_exactly(
    origin: int, cadence: int, tz: str, slots: list[int], data: st.DataObject
) -> None:
    # readings on slot boundaries: every slot belongs to one pair
    if cadence == 1440:
        first = datetime.fromtimestamp(origin / 1e9, ZoneInfo(tz)).date()
        boundaries = [0, *np.cumsum(slots).tolist()]
        times = [
            ns_of(datetime.combine(first + timedelta(days=k), datetime.min.time(), ZoneInfo(tz)))
            for k in boundaries
        ]
    else:
        step = cadence * MINUTE
        times = [origin + k * step for k in [0, *np.cumsum(slots).tolist()]]
    cumulative = [data.draw(st.floats(min_value=0, max_value=1e6, allow_nan=False))]
    for _ in slots:
        cumulative.append(cumulative[-1] + data.draw(increments))
    result = r.spread(times, cumulative, cadence_minutes=cadence, tz=tz, max_gap_ns=40 * DAY)
    assert len(result.slots) == sum(slots)
    parts = result.parts()
    owner = parts.pair[parts.slot >= 0]
    for i in range(len(slots)):
        values = result.slots.value[owner == i].tolist()
        assert sum(values) == cumulative[i + 1] - cumulative[i]
        assert math.fsum(values) == cumulative[i + 1] - cumulative[i]
    # measured exactly where readings are at both boundaries
    bounded = [
        start in times and end in times
        for start, end in zip(result.slots.start.tolist(), result.slots.end.tolist(), strict=True)
    ]
    assert result.slots.quality.tolist() == [
        "measured" if both else "interpolated" for both in bounded
    ]


@SETTINGS
@given(data=readings(min_size=2, max_size=15), cadence=CADENCES, tz=TIMEZONES, choice=st.data())
def test_a_reading_added_in_the_past_changes_only_slots_between_its_neighbours(
    data: tuple[list[int], list[float]], cadence: int, tz: str, choice: st.DataObject
) -> None:
    times, cumulative = data
    new = choice.draw(st.integers(min_value=times[0] - DAY, max_value=times[-1] + DAY))
    assume(new not in times)
    at = int(np.searchsorted(times, new))
    low = cumulative[at - 1] if at > 0 else max(cumulative[0] - 100.0, 0.0)
    high = cumulative[at] if at < len(times) else cumulative[-1] + 100.0
    value = choice.draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    gap = choice.draw(st.integers(1, 72)) * HOUR
    weights = choice.draw(profiles(tz))

    def spread(times: list[int], cumulative: list[float]) -> r.Spread:
        return r.spread(
            times, cumulative, cadence_minutes=cadence, tz=tz, max_gap_ns=gap, weights=weights
        )

    before = spread(times, cumulative)
    after = spread([*times[:at], new, *times[at:]], [*cumulative[:at], value, *cumulative[at:]])
    lo, hi = r.respread_window(times, new)

    def outside(s: c.Slots) -> list[tuple[int, int, float, str]]:
        keep = (s.end <= lo) | (s.start >= hi)
        return list(
            zip(
                s.start[keep].tolist(),
                s.end[keep].tolist(),
                s.value[keep].tolist(),
                s.quality[keep].tolist(),
                strict=True,
            )
        )

    assert outside(before.slots) == outside(after.slots)


@SETTINGS
@given(
    tz=TIMEZONES,
    origin=ORIGINS,
    offsets=st.lists(st.integers(0, 4 * DAY), min_size=2, max_size=30, unique=True),
    steps=st.lists(st.integers(0, 65536), min_size=29, max_size=29),
)
def test_spread_over_dst_days_keeps_totals(
    tz: str, origin: int, offsets: list[int], steps: list[int]
) -> None:
    times = sorted(origin + offset for offset in offsets)
    # multiples of 1/1024: every sum of them here is exact, so totals can be compared with ==
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(steps[: len(times) - 1]) / 1024)])
    result = r.spread(times, cumulative, cadence_minutes=1440, tz=tz, max_gap_ns=5 * DAY)
    total = float(cumulative[-1] - cumulative[0])
    parts = result.parts()
    assert math.fsum(parts.value.tolist()) == total
    known = parts.slot >= 0
    in_slots = math.fsum(result.slots.value.tolist())
    left_out = math.fsum(parts.value[~known].tolist())
    assert in_slots + left_out == pytest.approx(total, rel=1e-14, abs=1e-12)
    # local days are 23, 24 or 25 hours, and start at local midnight
    zone = ZoneInfo(tz)
    for start, end in zip(result.slots.start.tolist(), result.slots.end.tolist(), strict=True):
        day = datetime.fromtimestamp(start / 1e9, zone)
        assert (day.hour, day.minute) == (0, 0)
        following = datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), zone)
        assert end == ns_of(following)


@st.composite
def raw_counters(draw: st.DrawFn) -> tuple[list[int], list[float], list[tuple[int, float]]]:
    """Readings that go up, jitter, wrap at 1000, reset; some repeated times and markers."""
    n = draw(st.integers(0, 40))
    times = draw(st.lists(st.integers(0, 100).map(lambda k: k * HOUR), min_size=n, max_size=n))
    value = draw(st.floats(0, 999))
    values = []
    for _ in range(n):
        move = draw(
            st.one_of(
                st.floats(0, 50),  # up
                st.floats(-0.05, 0),  # jitter
                st.floats(-1000, 0),  # a reset or a wrap
                st.just(math.nan),
            )
        )
        value = value + move if not math.isnan(move) else value
        values.append(value if not math.isnan(move) else math.nan)
        value = value % 1000 if value >= 1000 else value
    markers = draw(
        st.lists(
            st.tuples(st.integers(0, 100).map(lambda k: k * HOUR + 1), st.floats(0, 10)), max_size=3
        )
    )
    return times, values, markers


@SETTINGS
@given(
    data=raw_counters(),
    tolerance=st.sampled_from([0.0, 0.1]),
    rollover=st.sampled_from([None, 1000.0]),
)
def test_cumulative_after_cleaning_never_decreases(
    data: tuple[list[int], list[float], list[tuple[int, float]]],
    tolerance: float,
    rollover: float | None,
) -> None:
    times, values, markers = data
    cleaned = r.clean_readings(
        times, values, tolerance=tolerance, rollover=rollover, new_meter=markers
    )
    assert (np.diff(cleaned.times) > 0).all()
    assert (np.diff(cleaned.cumulative) >= 0).all()
    assert np.isfinite(cleaned.cumulative).all()
    assert len(cleaned.unknown) == len(cleaned.times)
    assert [reset.time for reset in cleaned.resets] == sorted(
        reset.time for reset in cleaned.resets
    )
    # and it always spreads
    r.spread(
        cleaned.times,
        cleaned.cumulative,
        cadence_minutes=60,
        tz="UTC",
        max_gap_ns=3 * HOUR,
        unknown=cleaned.unknown,
    )


@SETTINGS
@given(steps=st.lists(st.floats(0, 1e6), min_size=1, max_size=30), start=st.floats(0, 1e9))
def test_a_counter_that_only_goes_up_is_its_own_cumulative(
    steps: list[float], start: float
) -> None:
    values = np.concatenate([[start], start + np.cumsum(steps)])
    values = np.maximum.accumulate(values)
    times = np.arange(len(values), dtype=np.int64) * HOUR
    cleaned = r.clean_readings(times, values, tolerance=0)
    assert cleaned.cumulative.tolist() == values.tolist()
    assert cleaned.resets == []
