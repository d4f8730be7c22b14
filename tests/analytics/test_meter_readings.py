"""A meter's readings table as interval rows (analytics.meter_readings): pure, no Home Assistant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
import math
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import meter_readings as mr
from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS, READING_COLUMNS

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LONDON = "Europe/London"
ZONE = ZoneInfo(LONDON)
INGESTED = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2024, 1, 1, tzinfo=UTC)

type Row = (
    tuple[datetime, object] | tuple[datetime, object, str] | tuple[datetime, object, str, str]
)


def counter(
    *,
    kind: str = "electricity",
    unit: str = "kWh",
    cadence_minutes: int = 60,
    max_gap_ns: int = 3 * HOUR,
    tolerance: float = 0.001,
    profile: str = mr.PROFILE_LINEAR,
) -> mr.CounterSettings:
    return mr.CounterSettings(
        meter="entity_x",
        supplier="entity",
        kind=kind,
        unit=unit,
        cadence_minutes=cadence_minutes,
        tz=LONDON,
        max_gap_ns=max_gap_ns,
        tolerance=tolerance,
        profile=profile,
    )


def table(rows: Sequence[Row]) -> pd.DataFrame:
    """A readings table (schema.READING_COLUMNS) of (time, reading[, unit[, source]]) rows."""
    return pd.DataFrame(
        {
            "meter": "entity_x",
            "supplier": "entity",
            "time": pd.to_datetime([row[0] for row in rows], utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            "reading": [float(row[1]) for row in rows],  # type: ignore[arg-type]
            "unit": [row[2] if len(row) > 2 else "kWh" for row in rows],
            "source": [row[3] if len(row) > 3 else "state" for row in rows],
            "reset": None,
            "ingested_at": pd.Timestamp(INGESTED),
        },
        columns=list(READING_COLUMNS),
    )


def at(hours: float = 0, *, seconds: int = 0, base: datetime = T0) -> datetime:
    return base + timedelta(hours=hours, seconds=seconds)


def midnight(year: int, month: int, day: int) -> datetime:
    """Local midnight in London (a daily slot boundary)."""
    return datetime(year, month, day, tzinfo=ZONE)


def run(
    rows: Sequence[Row] | pd.DataFrame,
    settings_: mr.CounterSettings | None = None,
    *,
    start: datetime = T0,
    end: datetime | None = None,
    temperatures: dict[date, float] | None = None,
) -> mr.Counted:
    frame = rows if isinstance(rows, pd.DataFrame) else table(rows)
    return mr.count(
        frame,
        settings_ or counter(),
        start=start,
        end=end or start + timedelta(days=400),
        now=INGESTED,
        temperatures=temperatures,
    )


def starts(counted: mr.Counted) -> list[datetime]:
    return [stamp.to_pydatetime() for stamp in counted.intervals["start"]]


def values(counted: mr.Counted) -> list[float]:
    return counted.intervals["value"].tolist()


def by_day(counted: mr.Counted) -> dict[date, float]:
    return {
        stamp.tz_convert(ZONE).date(): value
        for stamp, value in zip(counted.intervals["start"], values(counted), strict=True)
    }


def every_ten_seconds(first: datetime, last: datetime, *, reset_at: datetime | None) -> list[Row]:
    """A pulse counter read every 10 s, one pulse a reading, restarting from 0 at reset_at."""
    rows: list[Row] = []
    pulses = 1000
    moment = first
    while moment <= last:
        if moment == reset_at:
            pulses = 0
        rows.append((moment, pulses))
        pulses += 1
        moment += timedelta(seconds=10)
    return rows


# --------------------------------------------------------------------------- reading_of


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.5, 12.5),
        (7, 7.0),
        ("42", 42.0),
        (" 12.5 ", 12.5),
        ("1e3", 1000.0),
        (np.float64(3.25), 3.25),
    ],
)
def test_reading_of_numbers_and_numeric_strings_are_readings(
    value: object, expected: float
) -> None:
    result = mr.reading_of(value)
    assert result == expected
    assert isinstance(result, float)


def test_reading_of_zero_is_a_reading_not_a_reason() -> None:
    assert mr.reading_of(0) == 0.0
    assert mr.reading_of("0") == 0.0
    assert isinstance(mr.reading_of(0), float)


@pytest.mark.parametrize("value", ["unknown", "unavailable", "", None, "  ", "Unknown", "None"])
def test_reading_of_missing_states_are_unavailable(value: object) -> None:
    assert mr.reading_of(value) == "unavailable"


@pytest.mark.parametrize(
    "value", ["abc", "nan", "inf", "-inf", True, False, math.nan, math.inf, "1e400"]
)
def test_reading_of_text_nan_infinity_and_booleans_are_not_numeric(value: object) -> None:
    assert mr.reading_of(value) == "not_numeric"


@pytest.mark.parametrize("value", [-1, -0.001, "-5"])
def test_reading_of_below_zero_is_negative(value: object) -> None:
    assert mr.reading_of(value) == "negative"


def test_reading_of_an_int_too_large_for_a_float_is_not_numeric() -> None:
    assert mr.reading_of(10**400) == "not_numeric"


@given(number=st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False))
@SETTINGS
def test_reading_of_a_number_and_its_text_agree(number: float) -> None:
    assert mr.reading_of(number) == number
    assert mr.reading_of(f"  {number!r}\n") == number


# --------------------------------------------------------------------------- thin


def test_thin_bucket_is_a_twelfth_of_a_slot() -> None:
    assert mr.thin_bucket_ns(60) == 5 * MINUTE
    assert mr.thin_bucket_ns(1440) == 2 * HOUR
    assert mr.thin_bucket_ns(30) == 150 * SECOND


def test_thin_keeps_only_the_last_state_reading_of_each_bucket() -> None:
    # given out of order: the bucket's last reading in time is kept, not the last given
    rows: list[Row] = [
        (at(seconds=299), 3),
        (at(seconds=10), 1),
        (at(seconds=60), 2),
        (at(seconds=300), 4),  # the next bucket starts at 5 minutes
        (at(seconds=420), 5),
        (at(seconds=900), 6),
    ]
    thinned = mr.thin(table(rows), mr.thin_bucket_ns(60))
    assert thinned["reading"].tolist() == [3.0, 5.0, 6.0]
    assert thinned.index.tolist() == [0, 1, 2]
    assert list(thinned.columns) == list(READING_COLUMNS)


def test_thin_keeps_statistics_hand_and_new_meter_rows_whole() -> None:
    rows: list[Row] = [
        (at(seconds=10), 1, "kWh", "state"),
        (at(seconds=20), 1.5, "kWh", "statistics"),
        (at(seconds=30), 1.6, "kWh", "hand"),
        (at(seconds=40), 2, "kWh", "state"),
        (at(seconds=50), 0.5, "kWh", "new_meter"),
        (at(seconds=60), 1.7, "kWh", "hand"),
        (at(seconds=70), 3, "kWh", "state"),
    ]
    thinned = mr.thin(table(rows), mr.thin_bucket_ns(60))
    assert thinned["source"].tolist() == ["statistics", "hand", "new_meter", "hand", "state"]
    assert thinned["reading"].tolist() == [1.5, 1.6, 0.5, 1.7, 3.0]


def test_thin_leaves_an_empty_table_or_a_single_state_reading_alone() -> None:
    empty = table([])
    assert mr.thin(empty, mr.thin_bucket_ns(60)) is empty
    one = table([(at(seconds=10), 1), (at(seconds=20), 2, "kWh", "hand")])
    assert mr.thin(one, mr.thin_bucket_ns(60)) is one


def test_a_reset_inside_a_bucket_is_still_seen_by_count_after_thinning() -> None:
    rows = every_ten_seconds(at(-0.5), at(3), reset_at=at(1, seconds=32 * 60 + 30))
    thinned = mr.thin(table(rows), mr.thin_bucket_ns(60))
    assert len(thinned) < len(rows) / 10
    counted = run(thinned, end=at(3))
    # the bucket's last reading is below the level: the counter restarted
    assert [reset.kind for reset in counted.resets] == ["reset"]
    assert counted.readings["reset"].tolist().count("reset") == 1


def test_thinning_a_counter_read_every_ten_seconds_keeps_its_consumption() -> None:
    rows = every_ten_seconds(at(-0.5), at(3), reset_at=None)
    whole = run(rows, end=at(3))
    thinned = run(mr.thin(table(rows), mr.thin_bucket_ns(60)), end=at(3))
    assert starts(thinned) == starts(whole) == [at(0), at(1), at(2)]
    assert values(thinned) == pytest.approx(values(whole), abs=1e-9)
    assert values(whole) == [360.0, 360.0, 360.0]
    assert set(thinned.intervals["quality"]) == {"measured"}


def test_thinning_keeps_consumption_when_the_reset_falls_on_a_bucket_boundary() -> None:
    rows = every_ten_seconds(at(-0.5), at(3), reset_at=at(1, seconds=35 * 60))
    whole = run(rows, end=at(3))
    thinned = run(mr.thin(table(rows), mr.thin_bucket_ns(60)), end=at(3))
    assert math.fsum(values(thinned)) == pytest.approx(math.fsum(values(whole)), abs=1e-9)
    assert values(thinned) == pytest.approx(values(whole), abs=1e-9)


def test_thinning_a_counter_read_every_ten_seconds_with_a_reset_keeps_its_consumption() -> None:
    rows = every_ten_seconds(at(-0.5), at(3), reset_at=at(1, seconds=32 * 60 + 30))
    whole = run(rows, end=at(3))
    thinned = run(mr.thin(table(rows), mr.thin_bucket_ns(60)), end=at(3))
    assert starts(thinned) == starts(whole)
    assert math.fsum(values(thinned)) == pytest.approx(math.fsum(values(whole)), abs=1e-9)


# --------------------------------------------------------------------------- count: units


def test_count_converts_wh_readings_of_a_kwh_meter() -> None:
    rows: list[Row] = [(at(0), 1_000_000, "Wh"), (at(1), 1_000_500, "Wh"), (at(2), 1_001_750, "Wh")]
    counted = run(rows)
    assert values(counted) == pytest.approx([0.5, 1.25], abs=1e-9)
    assert counted.intervals["unit"].tolist() == ["kWh", "kWh"]
    assert counted.reading == pytest.approx(1001.75)
    assert counted.set_aside == {}


def test_an_entity_switching_from_wh_to_kwh_reads_on_without_a_jump() -> None:
    rows: list[Row] = [(at(0), 1_000_000, "Wh"), (at(1), 1_000_500, "Wh"), (at(2), 1001.75, "kWh")]
    counted = run(rows)
    assert values(counted) == pytest.approx([0.5, 1.25], abs=1e-9)
    assert counted.resets == []


def test_a_reading_in_an_inconvertible_unit_is_set_aside_and_never_becomes_zero() -> None:
    rows: list[Row] = [(at(0), 10), (at(1), 11), (at(1.5), 2000, "W"), (at(2), 12)]
    counted = run(rows)
    assert counted.set_aside == {"unit": 1}
    # a 0 (or 2000 read as kWh) there would be a reset; the counter simply went on
    assert counted.resets == []
    assert values(counted) == [1.0, 1.0]
    assert counted.total == 12.0
    assert counted.readings["reset"].tolist() == [None] * 4


def test_readings_without_a_unit_are_set_aside_per_reading() -> None:
    frame = table([(at(0), 10), (at(1), 11), (at(2), 12), (at(3), 13)])
    frame["unit"] = ["kWh", None, "W", "W"]
    counted = run(frame)
    assert counted.set_aside == {"unit": 3}
    assert counted.reading == 10.0
    assert len(counted.intervals) == 0


def test_a_set_aside_reading_at_a_resets_time_is_not_labelled() -> None:
    rows: list[Row] = [(at(0), 10), (at(1), 11), (at(2), 3), (at(2), 3000, "W")]
    counted = run(rows)
    assert counted.readings["reset"].tolist() == [None, None, "reset", None]


def test_a_gas_meter_in_cubic_metres_gets_its_energy_from_the_calorific_value() -> None:
    rows: list[Row] = [(at(0), 500, "m³"), (at(1), 501, "m³"), (at(2), 503, "m³")]
    counted = run(rows, counter(kind="gas", unit="m³"))
    assert values(counted) == [1.0, 2.0]
    assert counted.intervals["kind"].tolist() == ["gas", "gas"]
    per_m3 = 1.02264 * 39.5 / 3.6
    assert counted.intervals["energy_kwh"].tolist() == pytest.approx([per_m3, 2 * per_m3])


# --------------------------------------------------------------------------- count: sources


def test_a_hand_reading_beats_a_state_at_the_same_time() -> None:
    # the hand reading is given first: rank decides, not order
    rows: list[Row] = [
        (at(0), 10),
        (at(1), 11.25, "kWh", "hand"),
        (at(1), 11),
        (at(2), 12),
    ]
    counted = run(rows)
    assert values(counted) == [1.25, 0.75]


def test_a_state_beats_a_statistic_at_the_same_time() -> None:
    rows: list[Row] = [
        (at(0), 10),
        (at(1), 11),
        (at(1), 11.5, "kWh", "statistics"),
        (at(2), 12),
    ]
    counted = run(rows)
    assert values(counted) == [1.0, 1.0]


def test_the_newest_reading_of_the_best_source_is_the_reading() -> None:
    rows: list[Row] = [
        (at(0), 10),
        (at(2), 12.5, "kWh", "hand"),
        (at(2), 12),
        (at(2), 11.5, "kWh", "statistics"),
        (at(1), 11),
    ]
    counted = run(rows)
    assert counted.reading == 12.5
    assert counted.reading_at == pd.Timestamp(at(2))
    assert counted.total == 12.5


def test_statistics_alone_make_intervals() -> None:
    rows: list[Row] = [(at(h), 10 + h, "kWh", "statistics") for h in range(4)]
    counted = run(rows)
    assert values(counted) == [1.0, 1.0, 1.0]


# --------------------------------------------------------------------------- count: new meters


def new_meter_rows() -> list[Row]:
    return [
        (at(0), 100, "kWh", "hand"),
        (at(1), 101, "kWh", "hand"),
        (at(2), 102, "kWh", "hand"),  # the old meter's final reading
        (at(2), 5, "kWh", "new_meter"),  # the new meter reads 5 when put in
        (at(3), 6, "kWh", "state"),
        (at(4), 7.5, "kWh", "state"),
    ]


def test_a_new_meter_continues_the_sum_from_the_old_meters_final_reading() -> None:
    counted = run(new_meter_rows())
    assert values(counted) == [1.0, 1.0, 1.0, 1.5]
    # old part (102 - 100) plus new part (7.5 - 5)
    assert math.fsum(values(counted)) == 2.0 + 2.5
    assert counted.total == 100 + 2.0 + 2.5
    assert [(reset.before, reset.after, reset.kind) for reset in counted.resets] == [
        (102.0, 5.0, "new_meter")
    ]
    assert counted.gaps == []


def test_a_new_meter_row_is_labelled_new_meter_and_the_old_reading_is_not() -> None:
    counted = run(new_meter_rows())
    labels = dict(zip(counted.readings["source"], counted.readings["reset"], strict=False))
    assert counted.readings["reset"].tolist() == [None, None, None, "new_meter", None, None]
    assert labels["new_meter"] == "new_meter"


def test_a_new_meter_declaration_is_never_the_reading() -> None:
    rows = new_meter_rows()[:4]  # declared, but not read since
    counted = run(rows)
    assert counted.reading == 102.0
    assert counted.reading_at == pd.Timestamp(at(2))


# --------------------------------------------------------------------------- count: resets


def test_a_drop_labels_that_reading_reset_and_counts_from_zero() -> None:
    rows: list[Row] = [(at(0), 50), (at(1), 51), (at(2), 3), (at(3), 4)]
    counted = run(rows)
    assert counted.readings["reset"].tolist() == [None, None, "reset", None]
    assert [(reset.before, reset.after, reset.kind) for reset in counted.resets] == [
        (51.0, 3.0, "reset")
    ]
    assert values(counted) == [1.0, 3.0, 1.0]
    assert counted.total == 55.0
    # the reading is the counter as read, the total the series across the reset
    assert counted.reading == 4.0


def test_a_drop_within_the_tolerance_labels_jitter_and_counts_nothing() -> None:
    rows: list[Row] = [(at(0), 50), (at(1), 51), (at(2), 50.9995), (at(3), 52)]
    counted = run(rows)
    assert counted.readings["reset"].tolist() == [None, None, "jitter", None]
    assert values(counted) == [1.0, 0.0, 1.0]


def test_a_negative_reading_in_the_table_is_skipped_not_a_reset() -> None:
    rows: list[Row] = [(at(0), 10), (at(1), -5), (at(2), 12)]
    counted = run(rows)
    assert counted.resets == []
    assert values(counted) == [1.0, 1.0]


# --------------------------------------------------------------------------- count: window


def test_only_intervals_starting_in_the_window_are_returned() -> None:
    rows: list[Row] = [(at(h), 10 + 2 * h) for h in range(7)]
    counted = run(rows, start=at(2), end=at(4))
    assert starts(counted) == [at(2), at(3)]
    assert values(counted) == [2.0, 2.0]
    assert list(counted.intervals.columns) == list(INTERVAL_COLUMNS)
    assert counted.intervals["meter"].tolist() == ["entity_x"] * 2
    assert counted.intervals["supplier"].tolist() == ["entity"] * 2
    assert counted.intervals["ingested_at"].tolist() == [pd.Timestamp(INGESTED)] * 2
    # the reading and total do not depend on the window
    assert counted.reading == 22.0
    assert counted.total == 22.0


def test_hourly_intervals_from_readings_on_the_hour_are_measured() -> None:
    counted = run([(at(h), 10 + h) for h in range(5)])
    assert starts(counted) == [at(h) for h in range(4)]
    assert counted.intervals["quality"].tolist() == ["measured"] * 4
    assert (counted.intervals["end"] - counted.intervals["start"]).tolist() == [
        pd.Timedelta(hours=1)
    ] * 4


def test_a_gap_longer_than_max_gap_gives_no_intervals_in_it() -> None:
    rows: list[Row] = [(at(0), 10), (at(1), 11), (at(2), 12), (at(10), 30), (at(11), 31)]
    counted = run(rows, counter(max_gap_ns=3 * HOUR))
    assert starts(counted) == [at(0), at(1), at(10)]
    assert values(counted) == [1.0, 1.0, 1.0]
    assert counted.gaps == [(pd.Timestamp(at(2)).value, pd.Timestamp(at(10)).value)]


def test_a_window_without_slots_gives_an_empty_interval_table() -> None:
    counted = run([(at(h), 10 + h) for h in range(3)], start=at(100), end=at(200))
    assert counted.intervals.empty
    assert list(counted.intervals.columns) == list(INTERVAL_COLUMNS)
    assert counted.reading == 12.0


def test_a_single_reading_is_the_reading_but_makes_no_interval() -> None:
    counted = run([(at(0), 10)], counter(profile=mr.PROFILE_MONTHLY))
    assert counted.intervals.empty
    assert counted.reading == 10.0
    assert counted.total == 10.0


def test_an_empty_readings_table_counts_to_nothing() -> None:
    counted = run(table([]))
    assert counted.intervals.empty
    assert counted.readings.empty
    assert counted.reading is None
    assert counted.reading_at is None
    assert counted.total is None
    assert counted.resets == []
    assert counted.set_aside == {}


def test_the_annotated_readings_have_the_schema_columns_in_order() -> None:
    frame = table([(at(0), 10), (at(1), 11)])
    shuffled = frame[list(reversed(READING_COLUMNS))]
    counted = run(shuffled)
    assert list(counted.readings.columns) == list(READING_COLUMNS)
    assert counted.readings["reading"].tolist() == [10.0, 11.0]


# --------------------------------------------------------------------------- count: profiles

DAILY_GAP = 30 * DAY


def monthly_rows() -> list[Row]:
    # 10 a day in January, 1 a day in February; the pair 25 Jan - 5 Feb straddles the two
    return [
        (midnight(2024, 1, 1), 0, "kWh", "hand"),
        (midnight(2024, 1, 25), 240, "kWh", "hand"),
        (midnight(2024, 2, 5), 314, "kWh", "hand"),
        (midnight(2024, 2, 29), 338, "kWh", "hand"),
    ]


def test_a_monthly_profile_keeps_each_pairs_total() -> None:
    profile = counter(cadence_minutes=1440, max_gap_ns=DAILY_GAP, profile=mr.PROFILE_MONTHLY)
    days = by_day(run(monthly_rows(), profile, start=midnight(2024, 1, 1)))
    between = [value for day, value in days.items() if date(2024, 1, 25) <= day < date(2024, 2, 5)]
    assert len(between) == 11
    assert math.fsum(between) == pytest.approx(314 - 240, abs=1e-9)
    assert math.fsum(days.values()) == pytest.approx(338, abs=1e-9)


def test_a_monthly_profile_gives_the_busier_month_more_of_a_straddling_pair() -> None:
    monthly = counter(cadence_minutes=1440, max_gap_ns=DAILY_GAP, profile=mr.PROFILE_MONTHLY)
    linear = counter(cadence_minutes=1440, max_gap_ns=DAILY_GAP)
    shaped = by_day(run(monthly_rows(), monthly, start=midnight(2024, 1, 1)))
    flat = by_day(run(monthly_rows(), linear, start=midnight(2024, 1, 1)))
    assert flat[date(2024, 1, 28)] == pytest.approx(74 / 11)
    assert flat[date(2024, 2, 2)] == pytest.approx(74 / 11)
    assert shaped[date(2024, 1, 28)] > flat[date(2024, 1, 28)]
    assert shaped[date(2024, 2, 2)] < flat[date(2024, 2, 2)]
    assert shaped[date(2024, 1, 28)] > shaped[date(2024, 2, 2)]


def degree_day_rows() -> list[Row]:
    return [
        (midnight(2024, 1, 1), 100, "m³", "hand"),
        (midnight(2024, 1, 5), 164, "m³", "hand"),
    ]


TEMPERATURES = {
    date(2024, 1, 1): 0.0,  # 15.5 degrees below the base
    date(2024, 1, 2): 10.0,  # 5.5
    date(2024, 1, 3): 5.0,  # 10.5
    date(2024, 1, 4): 15.0,  # 0.5
}


def test_degree_days_give_colder_days_more_and_keep_the_pairs_total() -> None:
    gas = counter(
        kind="gas",
        unit="m³",
        cadence_minutes=1440,
        max_gap_ns=DAILY_GAP,
        profile=mr.PROFILE_DEGREE_DAYS,
    )
    counted = run(degree_day_rows(), gas, start=midnight(2024, 1, 1), temperatures=TEMPERATURES)
    days = by_day(counted)
    assert list(days) == [date(2024, 1, d) for d in range(1, 5)]
    # 64 m³ in proportion to 15.5 : 5.5 : 10.5 : 0.5 (of 32)
    assert list(days.values()) == pytest.approx([31.0, 11.0, 21.0, 1.0], abs=1e-9)
    assert math.fsum(days.values()) == pytest.approx(64.0, abs=1e-9)
    coldest_first = sorted(TEMPERATURES, key=TEMPERATURES.__getitem__)
    assert sorted(days, key=days.__getitem__, reverse=True) == coldest_first


def test_degree_days_without_temperatures_spread_linearly() -> None:
    gas = counter(
        kind="gas",
        unit="m³",
        cadence_minutes=1440,
        max_gap_ns=DAILY_GAP,
        profile=mr.PROFILE_DEGREE_DAYS,
    )
    counted = run(degree_day_rows(), gas, start=midnight(2024, 1, 1))
    assert values(counted) == pytest.approx([16.0] * 4, abs=1e-9)


# --------------------------------------------------------------------------- properties


@given(
    first_hour=st.integers(0, 366 * 24),
    steps=st.lists(
        st.tuples(st.integers(1, 5), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=30
    ),
    base=st.floats(0, 1e5, allow_nan=False),
)
@SETTINGS
def test_hourly_intervals_add_up_to_last_minus_first_reading(
    first_hour: int, steps: list[tuple[int, float]], base: float
) -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=first_hour)
    value = base
    rows: list[Row] = [(moment, value)]
    for hours, used in steps:
        moment += timedelta(hours=hours)
        value += used
        rows.append((moment, value))
    counted = run(rows, counter(max_gap_ns=6 * HOUR, tolerance=0.0), start=rows[0][0])
    assert counted.resets == []
    assert len(counted.intervals) == sum(hours for hours, _ in steps)
    assert math.fsum(values(counted)) == pytest.approx(value - base, abs=1e-9)
    assert counted.total == value
    # measured exactly where readings bound the hour, interpolated inside longer pairs
    read = {pd.Timestamp(row[0]) for row in rows}
    for start, end, quality in counted.intervals[["start", "end", "quality"]].itertuples(
        index=False
    ):
        assert quality == ("measured" if start in read and end in read else "interpolated")


@given(
    first_day=st.integers(0, 366),
    steps=st.lists(
        st.tuples(st.integers(1, 20), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=12
    ),
    profile=st.sampled_from([mr.PROFILE_LINEAR, mr.PROFILE_MONTHLY]),
)
@SETTINGS
def test_daily_intervals_add_up_to_last_minus_first_reading_whatever_the_profile(
    first_day: int, steps: list[tuple[int, float]], profile: str
) -> None:
    day = date(2024, 1, 1) + timedelta(days=first_day)
    value = 0.0
    rows: list[Row] = [(datetime(day.year, day.month, day.day, tzinfo=ZONE), value)]
    for days, used in steps:
        day += timedelta(days=days)
        value += used
        rows.append((datetime(day.year, day.month, day.day, tzinfo=ZONE), value))
    daily = counter(cadence_minutes=1440, max_gap_ns=DAILY_GAP, tolerance=0.0, profile=profile)
    counted = run(rows, daily, start=rows[0][0], end=rows[-1][0])
    assert len(counted.intervals) == sum(days for days, _ in steps)
    assert math.fsum(values(counted)) == pytest.approx(value, abs=1e-9)
