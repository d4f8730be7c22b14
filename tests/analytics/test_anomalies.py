"""Anomaly detectors (analytics.anomalies): each detector on its case, and what must not alarm."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
import math
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import anomalies as a
from custom_components.meterlake.analytics.intervals import empty_intervals
from custom_components.meterlake.analytics.schema import ANOMALY_COLUMNS
from custom_components.meterlake.sources import demo

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONDON = "Europe/London"
ZONE = ZoneInfo(LONDON)
DEFAULT = a.AnomalySettings()


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> pd.Timestamp:
    return pd.Timestamp(datetime(year, month, day, hour, minute, tzinfo=ZONE))


def slots(first: pd.Timestamp, last: pd.Timestamp, minutes: int = 30) -> pd.DatetimeIndex:
    """UTC starts of the slots from `first` up to `last` (local wall clock, DST-aware)."""
    return pd.date_range(first, last, freq=f"{minutes}min", inclusive="left").tz_convert(UTC)


def rows(starts: pd.DatetimeIndex, values: np.ndarray, minutes: int = 30) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter": "m",
            "start": starts,
            "end": starts + pd.Timedelta(minutes=minutes),
            "value": np.asarray(values, dtype=np.float64),
            "unit": "kWh",
        }
    )


def hours_of(starts: pd.DatetimeIndex) -> np.ndarray:
    wall = starts.tz_convert(LONDON)
    return np.asarray(wall.hour + wall.minute / 60, dtype=np.float64)


def household(starts: pd.DatetimeIndex, seed: int = 1) -> np.ndarray:
    """A half-hourly electricity shape by local time with some noise."""
    h = hours_of(starts)
    rng = np.random.default_rng(seed)
    shape = 0.1 + 0.25 * np.exp(-(((h - 7.5) / 1.0) ** 2)) + 0.45 * np.exp(-(((h - 18.5) / 2) ** 2))
    return np.round(shape * rng.uniform(0.85, 1.15, len(starts)), 3)


def run(
    frame: pd.DataFrame,
    *,
    now: datetime | pd.Timestamp | None = None,
    kind: str = "electricity",
    unit: str = "kWh",
    cadence: int = 30,
    since: datetime | None = None,
    **changes: object,
) -> a.Detection:
    if now is None:
        now = frame["end"].max()
    return a.detect(
        frame,
        meter="m",
        kind=kind,
        unit=unit,
        tz=LONDON,
        cadence_minutes=cadence,
        settings=replace(DEFAULT, **changes),  # type: ignore[arg-type]
        now=pd.Timestamp(now).to_pydatetime(),
        since=since,
    )


def of(detection: a.Detection, kind: str) -> pd.DataFrame:
    found = detection.anomalies
    return found[found["kind"] == kind].reset_index(drop=True)


# ------------------------------------------------------------------------------- high_day


def test_high_day_finds_a_heater_day_and_reports_its_numbers() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 21))
    values = np.full(len(starts), 0.25)  # 12 kWh a day
    day = (starts >= local(2024, 1, 18)) & (starts < local(2024, 1, 19))
    values[day] = 0.75  # 36 kWh: the heater left on
    found = of(run(rows(starts, values)), "high_day")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["start"] == local(2024, 1, 18) and row["end"] == local(2024, 1, 19)
    assert row["observed"] == pytest.approx(36.0)
    assert row["expected"] == pytest.approx(12.0)
    assert row["ratio"] == pytest.approx(3.0)
    assert row["unit"] == "kWh"
    assert row["reason"] == (
        "36 kWh on Thu 18 Jan 2024, 3 \u00d7 the 12 kWh a day of the 7 days before"
    )


def test_high_day_is_judged_only_once_the_next_day_is_complete() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 19))
    values = np.full(len(starts), 0.25)
    values[starts >= local(2024, 1, 18)] = 0.75
    detection = run(rows(starts, values))
    assert of(detection, "high_day").empty
    # 17 January is the newest day judged: it ends at midnight
    assert detection.evaluated_until["high_day"] == local(2024, 1, 18).to_pydatetime()


def test_a_new_level_that_lasts_is_not_a_high_day() -> None:
    starts = slots(local(2024, 9, 1), local(2024, 10, 10))
    values = np.full(len(starts), 0.05)
    values[starts >= local(2024, 10, 1)] = 0.4  # the heating season began
    assert of(run(rows(starts, values)), "high_day").empty


def test_the_first_day_back_from_a_week_away_is_not_a_high_day() -> None:
    starts = slots(local(2024, 3, 1), local(2024, 4, 20))
    values = household(starts)
    away = (starts >= local(2024, 4, 6)) & (starts < local(2024, 4, 13))
    values[away] = 0.05
    frame = rows(starts, values)
    assert of(run(frame), "high_day").empty
    # the plain rule alarms on it
    classic = a.classic_rule(frame, meter="m", unit="kWh", tz=LONDON, now=frame["end"].max())
    assert local(2024, 4, 13) in set(classic["start"])


@pytest.mark.parametrize(
    ("first", "last", "hours"),
    [((2024, 10, 1), (2024, 11, 10), 25), ((2024, 3, 1), (2024, 4, 10), 23)],
    ids=["autumn", "spring"],
)
def test_a_dst_day_is_neither_a_high_day_nor_a_spike(
    first: tuple[int, int, int], last: tuple[int, int, int], hours: int
) -> None:
    starts = slots(local(*first), local(*last))
    frame = rows(starts, household(starts))
    day = local(2024, 10, 27) if hours == 25 else local(2024, 3, 31)
    after = local(2024, 10, 28) if hours == 25 else local(2024, 4, 1)
    assert ((starts >= day) & (starts < after)).sum() == 2 * hours
    detection = run(frame, spike_weeks=4)
    assert detection.anomalies.empty
    # and both were judged
    assert detection.evaluated_until["high_day"] > day.to_pydatetime()
    assert detection.evaluated_until["spike"] > day.to_pydatetime()


def test_a_day_with_a_missing_slot_is_not_judged() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 21))
    values = np.full(len(starts), 0.25)
    day = (starts >= local(2024, 1, 18)) & (starts < local(2024, 1, 19))
    values[day] = 0.75
    keep = starts != local(2024, 1, 18, 12)
    assert of(run(rows(starts[keep], values[keep])), "high_day").empty


def test_high_day_needs_window_minus_two_complete_days_before() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 8))
    values = np.full(len(starts), 0.25)
    values[(starts >= local(2024, 1, 6)) & (starts < local(2024, 1, 7))] = 0.75
    detection = run(rows(starts, values))
    assert of(detection, "high_day")["start"].tolist() == [local(2024, 1, 6)]  # 5 days before
    starts = starts[starts >= local(2024, 1, 2)]  # 4 days before: not judged
    detection = run(rows(starts, np.where(starts.tz_convert(LONDON).day == 6, 0.75, 0.25)))
    assert of(detection, "high_day").empty
    assert "high_day" not in detection.evaluated_until


# ----------------------------------------------------------------------------------- spike


def spiky(extra: dict[pd.Timestamp, float]) -> pd.DataFrame:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = household(starts)
    for at, value in extra.items():
        values[starts == at] = value
    return rows(starts, values)


def test_a_spike_is_found_with_its_period_and_numbers() -> None:
    at = local(2024, 2, 21, 3)
    found = of(run(spiky({at: 2.0})), "spike")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["start"] == at and row["end"] == at + pd.Timedelta(minutes=30)
    assert row["observed"] == 2.0
    assert 0.08 < row["expected"] < 0.12  # the median of the Wednesdays 03:00 before
    assert row["ratio"] == pytest.approx(2.0 / row["expected"])
    assert row["reason"].startswith("2 kWh in 1 interval from 03:00 Wed 21 Feb 2024, ")
    assert row["reason"].endswith("(same weekday and time, 6 weeks before)")


def test_consecutive_spike_intervals_merge_into_one() -> None:
    at = local(2024, 2, 21, 3)
    half = pd.Timedelta(minutes=30)
    found = of(run(spiky({at: 2.0, at + half: 1.5, at + 2 * half: 2.5})), "spike")
    assert len(found) == 1
    assert found.loc[0, "start"] == at and found.loc[0, "end"] == at + 3 * half
    assert found.loc[0, "observed"] == pytest.approx(6.0)
    assert "in 3 intervals" in str(found.loc[0, "reason"])


def test_a_spike_needs_enough_weeks_of_history() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 25))
    values = household(starts)
    values[starts == local(2024, 1, 24, 3)] = 3.0  # 3 weeks after the start: 3 of 6
    detection = run(rows(starts, values))
    assert of(detection, "spike").empty
    assert "spike" not in detection.evaluated_until


def test_a_weekend_load_is_not_a_spike_but_the_same_load_on_a_weekday_is() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = household(starts)
    wall = starts.tz_convert(LONDON)
    weekend_noon = (wall.dayofweek >= 5) & (wall.hour == 12)
    values[weekend_noon] = 1.8  # the oven, every Saturday and Sunday
    values[starts == local(2024, 2, 21, 12)] = 1.8  # and once on a Wednesday
    found = of(run(rows(starts, values)), "spike")
    assert found["start"].tolist() == [local(2024, 2, 21, 12)]


def test_a_flat_series_does_not_alarm_on_a_small_wobble() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = np.full(len(starts), 0.2)
    values[starts == local(2024, 2, 21, 3)] = 0.26
    assert run(rows(starts, values)).anomalies.empty


def test_a_spike_repeated_the_next_day_is_a_new_level_not_a_spike() -> None:
    at = local(2024, 2, 20, 18)
    found = of(run(spiky({at: 3.0, at + pd.Timedelta(days=1): 3.0})), "spike")
    assert found["start"].tolist() == [at + pd.Timedelta(days=1)]  # the 2nd is not settled


def test_spike_weeks_zero_judges_nothing() -> None:
    detection = run(spiky({local(2024, 2, 21, 3): 2.0}), spike_weeks=0)
    assert of(detection, "spike").empty
    assert "spike" not in detection.evaluated_until


def test_demo_night_spikes_are_found_exactly_as_spikes() -> None:
    starts = pd.date_range("2026-01-05", periods=48 * 90, freq="30min", tz=UTC)
    values = demo.electricity_kwh(starts)
    detection = run(rows(starts, values))
    found = of(detection, "spike")
    mask = demo._anomalies(starts)
    nights = sorted(set(starts[mask].tz_convert(LONDON).normalize()))
    # judged once 4 of the 6 weeks before are known, and the next day's 03:00 too
    judged = [n for n in nights if starts[0] + pd.Timedelta(weeks=4) <= n < starts[-1]]
    assert len(judged) >= 4
    assert found["start"].tolist() == [n + pd.Timedelta(hours=3) for n in judged]
    assert found["end"].tolist() == [n + pd.Timedelta(hours=4) for n in judged]
    assert (found["observed"] / found["expected"] > 5).all()


def test_demo_has_no_high_day() -> None:
    starts = pd.date_range("2025-10-01", periods=48 * 120, freq="30min", tz=UTC)
    detection = run(rows(starts, demo.electricity_kwh(starts)))
    assert of(detection, "high_day").empty
    assert "high_day" in detection.evaluated_until


# ------------------------------------------------------------------------------- base_load


def test_a_raised_night_base_load_over_three_nights_is_one_anomaly() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 2, 20))
    values = household(starts)
    h = hours_of(starts)
    raised = (starts >= local(2024, 2, 10, 18)) & (starts < local(2024, 2, 13, 12))
    values[raised] += 0.25  # 0.5 kWh/h more, around the clock
    found = of(run(rows(starts, values), spike=False, high_day=False), "base_load")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["start"] == local(2024, 2, 11, 1) and row["end"] == local(2024, 2, 13, 5)
    assert row["unit"] == "kWh/h"
    night = (h >= 1) & (h < 5) & (starts < local(2024, 2, 10))
    assert row["expected"] == pytest.approx(2 * np.median(values[night]), rel=0.3)
    assert row["observed"] > 1.8 * row["expected"]
    assert "over 3 nights from Sun 11 Feb 2024" in row["reason"]


def test_a_single_raised_night_says_so() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 2, 20))
    values = household(starts)
    values[(starts >= local(2024, 2, 11, 0)) & (starts < local(2024, 2, 11, 6))] += 0.5
    found = of(run(rows(starts, values), spike=False), "base_load")
    assert len(found) == 1
    assert "on the night of Sun 11 Feb 2024" in str(found.loc[0, "reason"])


def water(leak_from: pd.Timestamp | None, hours: int, flow: float) -> pd.DataFrame:
    starts = slots(local(2024, 5, 1), local(2024, 7, 1), 60)
    h = hours_of(starts)
    rng = np.random.default_rng(3)
    values = np.where((h >= 6) & (h < 23), np.round(rng.uniform(0.0, 0.03, len(starts)), 4), 0.0)
    if leak_from is not None:
        leak = (starts >= leak_from) & (starts < leak_from + pd.Timedelta(hours=hours))
        values[leak] += flow
    frame = rows(starts, values, 60)
    frame["unit"] = "m³"
    return frame


def test_water_that_never_stops_for_a_day_is_a_leak() -> None:
    frame = water(local(2024, 6, 20, 9), 30, 0.002)
    detection = run(frame, kind="water", unit="m³", cadence=60, spike=False, high_day=False)
    found = of(detection, "base_load")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["start"] <= local(2024, 6, 20, 9)
    assert row["end"] >= local(2024, 6, 21, 15)
    assert row["unit"] == "m³/h"
    assert row["expected"] == 0 and math.isnan(row["ratio"])
    assert "water never stopped" in row["reason"]


def test_a_day_long_water_run_outside_the_night_is_still_a_leak() -> None:
    # from 06:00 to 06:00 the next day plus: the nights' minima see it too, merged into one
    frame = water(local(2024, 6, 20, 6), 26, 0.0005)
    found = of(run(frame, kind="water", unit="m³", cadence=60), "base_load")
    assert len(found) == 1


def test_clean_water_raises_nothing() -> None:
    frame = water(None, 0, 0.0)
    assert run(frame, kind="water", unit="m³", cadence=60).anomalies.empty


def test_base_load_needs_nights_of_at_most_an_hour_per_interval() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1), 1440)
    detection = run(rows(starts, np.full(len(starts), 10.0), 1440), cadence=1440)
    assert "base_load" not in detection.evaluated_until


# --------------------------------------------------------------------------------- no_data


def test_no_data_since_the_newest_row() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 10))
    frame = rows(starts, household(starts))
    now = local(2024, 1, 13, 6)
    detection = run(frame, now=now)
    found = of(detection, "no_data")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["start"] == local(2024, 1, 10) and row["end"] == now
    assert row["observed"] == 78.0 and row["expected"] == 36.0 and row["unit"] == "h"
    assert row["reason"] == (
        "no data for 78 h from 00:00 Wed 10 Jan 2024 (more than the 36 h allowed)"
    )
    assert detection.evaluated_until["no_data"] == now.to_pydatetime()


def test_a_gap_between_rows_longer_than_the_delay_is_no_data() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 10))
    keep = (starts < local(2024, 1, 4)) | (starts >= local(2024, 1, 6, 12))
    found = of(run(rows(starts[keep], household(starts)[keep])), "no_data")
    assert found["start"].tolist() == [local(2024, 1, 4)]
    assert found["end"].tolist() == [local(2024, 1, 6, 12)]


def test_rows_within_the_delay_are_not_no_data() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 10))
    detection = run(rows(starts, household(starts)), now=local(2024, 1, 11, 11))
    assert of(detection, "no_data").empty


def test_no_rows_at_all_raise_nothing() -> None:
    detection = run(empty_intervals(), now=datetime(2024, 1, 1, tzinfo=UTC))
    assert detection.anomalies.empty
    assert list(detection.anomalies.columns) == list(ANOMALY_COLUMNS)
    assert detection.evaluated_until == {"no_data": datetime(2024, 1, 1, tzinfo=UTC)}


# ----------------------------------------------------------------------------- implausible


def test_implausible_values_merge_when_consecutive_and_stay_out_of_the_rest() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 21))
    values = household(starts)
    at = np.flatnonzero(starts == local(2024, 1, 15, 12))[0]
    values[at : at + 2] = 1e6
    values[at + 10] = -0.5
    detection = run(rows(starts, values))
    found = of(detection, "implausible")
    assert len(found) == 2
    high, negative = found.iloc[0], found.iloc[1]
    assert high["start"] == starts[at] and high["end"] == starts[at + 2]
    assert high["observed"] == 2e6 and high["expected"] == 2 * 1000.0  # 2,000 kWh/h
    assert high["reason"] == (
        "2,000,000 kWh in 2 intervals from 12:00 Mon 15 Jan 2024: above the 2,000 kWh a "
        "home can use in that time"
    )
    assert negative["expected"] == 0 and math.isnan(negative["ratio"])
    assert negative["reason"].endswith("below zero")
    assert set(detection.anomalies["kind"]) == {"implausible"}  # no high day, no spike


def test_a_kind_without_a_bound_flags_only_negative_values() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 3))
    values = household(starts)
    values[5] = 1e9
    values[7] = -1.0
    found = of(run(rows(starts, values), kind="grid"), "implausible")
    assert found["start"].tolist() == [starts[7]]


# ------------------------------------------------------------------ since, switches, input


def test_since_reports_only_periods_ending_after_it() -> None:
    frame = spiky({local(2024, 2, 14, 3): 2.0, local(2024, 2, 21, 3): 2.0})
    every = of(run(frame), "spike")
    assert len(every) == 2
    later = of(run(frame, since=local(2024, 2, 14, 3, 30).to_pydatetime()), "spike")
    assert later["start"].tolist() == [local(2024, 2, 21, 3)]


@pytest.mark.parametrize("detector", ["high_day", "spike", "base_load", "no_data", "implausible"])
def test_a_detector_switched_off_reports_nothing(detector: str) -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = household(starts)
    values[starts == local(2024, 2, 21, 3)] = 2.0  # spike
    values[(starts >= local(2024, 2, 20)) & (starts < local(2024, 2, 21))] += 0.5  # high day
    values[starts == local(2024, 2, 25, 12)] = -1  # implausible
    frame = rows(starts, values)
    now = local(2024, 3, 5)
    on = run(frame, now=now)
    off = run(frame, now=now, **{detector: False})  # type: ignore[arg-type]
    assert detector in set(on.anomalies["kind"])
    assert detector not in set(off.anomalies["kind"])
    assert detector not in off.evaluated_until


def test_duplicate_starts_keep_the_later_row_and_nan_rows_are_absent() -> None:
    frame = spiky({local(2024, 2, 21, 3): 2.0})
    fixed = frame[frame["start"] == local(2024, 2, 21, 3)].assign(value=0.1)
    unknown = frame.iloc[:3].assign(value=np.nan)
    detection = run(pd.concat([frame, fixed, unknown], ignore_index=True))
    assert of(detection, "spike").empty


def test_anomalies_are_sorted_by_start_then_kind_with_the_schema_columns() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = household(starts)
    values[starts == local(2024, 2, 21, 3)] = 2.0
    values[(starts >= local(2024, 2, 21)) & (starts < local(2024, 2, 22))] += 0.5
    now = datetime(2024, 3, 5, tzinfo=UTC)
    found = run(rows(starts, values), now=now).anomalies
    assert list(found.columns) == list(ANOMALY_COLUMNS)
    assert found[["start", "kind"]].equals(found.sort_values(["start", "kind"])[["start", "kind"]])
    assert set(found["kind"]) == {"high_day", "spike", "base_load", "no_data"}
    assert (found["meter"] == "m").all() and (found["detected_at"] == now).all()


def test_cadence_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cadence_minutes"):
        run(spiky({}), cadence=0)


def test_classic_rule_flags_a_day_above_twice_the_week_before() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 20))
    values = np.full(len(starts), 0.25)
    values[(starts >= local(2024, 1, 18)) & (starts < local(2024, 1, 19))] = 0.75
    values[(starts >= local(2024, 1, 19))] = 0.75  # the next day too: still flagged
    frame = rows(starts, values)
    found = a.classic_rule(frame, meter="m", unit="kWh", tz=LONDON, now=frame["end"].max())
    assert found["kind"].unique().tolist() == ["high_day"]
    assert found["start"].tolist() == [local(2024, 1, 18), local(2024, 1, 19)]
    assert found.loc[0, "ratio"] == pytest.approx(3.0)
    empty = a.classic_rule(
        empty_intervals(), meter="m", unit="kWh", tz=LONDON, now=datetime.now(UTC)
    )
    assert empty.empty


def test_a_ratio_against_zero_is_far_above_and_numbers_read_plainly() -> None:
    assert a._ratio_text(1.0, 0.0) == "far above"
    assert a._num(1234.5) == "1,234" or a._num(1234.5) == "1,235"
    assert a._num(float("inf")) == "inf"
    assert a._num(0.01234) == "0.0123"


# ------------------------------------------------------------------------------ properties


@SETTINGS
@given(
    level=st.floats(min_value=0.001, max_value=100.0),
    minutes=st.sampled_from([30, 60]),
    first=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: pd.Timestamp(d.replace(minute=0, second=0, microsecond=0), tz=LONDON)
    ),
)
def test_a_constant_series_raises_nothing(level: float, minutes: int, first: pd.Timestamp) -> None:
    starts = slots(first.normalize(), first.normalize() + pd.Timedelta(days=60), minutes)
    frame = rows(starts, np.full(len(starts), level), minutes)
    assert run(frame, cadence=minutes).anomalies.empty


@SETTINGS
@given(power=st.integers(min_value=-8, max_value=3), seed=st.integers(0, 50))
def test_scaling_every_value_by_a_power_of_two_finds_the_same_periods(
    power: int, seed: int
) -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = household(starts, seed)
    rng = np.random.default_rng(seed)
    values[rng.integers(0, len(values), 5)] *= rng.uniform(3, 12, 5)
    base = run(rows(starts, values)).anomalies
    scaled = run(rows(starts, values * 2.0**power)).anomalies
    assert base[["kind", "start", "end"]].equals(scaled[["kind", "start", "end"]])
    assert np.allclose(scaled["observed"], base["observed"] * 2.0**power)


def test_every_detector_finds_nothing_before_now_ends_a_day() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 1, 21))
    values = np.full(len(starts), 0.25)
    values[(starts >= local(2024, 1, 18)) & (starts < local(2024, 1, 19))] = 0.75
    detection = run(rows(starts, values), now=local(2024, 1, 18, 23))
    assert of(detection, "high_day").empty
    assert (
        detection.evaluated_until["high_day"]
        <= (local(2024, 1, 18) - timedelta(days=1)).to_pydatetime()
    )


def test_a_day_whose_level_rose_throughout_has_no_spikes_but_a_far_higher_one_is() -> None:
    starts = slots(local(2024, 1, 1), local(2024, 3, 1))
    values = np.where(hours_of(starts) < 6, 0.0, 0.01)
    day = (starts >= local(2024, 2, 21, 6)) & (starts < local(2024, 2, 21, 22))
    values[day] = 0.2  # the heating came on for the day
    assert of(run(rows(starts, values)), "spike").empty
    values[starts == local(2024, 2, 21, 12)] = 1.5
    assert of(run(rows(starts, values)), "spike")["start"].tolist() == [local(2024, 2, 21, 12)]
